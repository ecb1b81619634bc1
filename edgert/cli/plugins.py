"""``edgert plugins list``: every registered thing, its kind and where it came from."""

from __future__ import annotations

import json

import click

from edgert.cli.options import json_option


@click.group()
def plugins() -> None:
    """Installed plugins and what they register."""


@plugins.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List decoders, providers, export steps, families and device folders.

    \b
    Examples:
      edgert plugins list
      EDGERT_DISABLE_PLUGINS=edgert.plugins.providers.ort_qnn edgert plugins list --json
    """
    from edgert.catalog import get_catalog

    catalog = get_catalog()
    rows = []
    for kind, registry in (
        ("provider", catalog.providers),
        ("decoder", catalog.decoders),
        ("export-step", catalog.export_steps),
        ("family", catalog.families),
    ):
        for name, item in registry.items():
            row = {"kind": kind, "name": name, "source": registry.source(name)}
            if kind == "provider":
                provider = item()
                row.update(
                    available=provider.is_available(),
                    simulated=provider.simulated(),
                    capabilities=sorted(item.capabilities),
                    ort_name=item.ort_name,
                )
            rows.append(row)
    for path, source in catalog.device_dirs.paths:
        rows.append({"kind": "device-dir", "name": str(path), "source": source})
    dists = {
        name: f"{dist.project_name} {dist.version}"
        for name, dist in (
            (p_name, d)
            for p_name, d in (
                (catalog.pm.get_name(p), d) for p, d in catalog.pm.list_plugin_distinfo()
            )
        )
    }
    blocked = [name for name, plugin in catalog.pm.list_name_plugin() if plugin is None]
    if as_json:
        click.echo(
            json.dumps({"items": rows, "entry_point_plugins": dists, "blocked": blocked}, indent=2)
        )
        return
    for row in rows:
        extra = ""
        if row["kind"] == "provider":
            extra = " available" if row["available"] else " unavailable"
            extra += " (simulated)" if row["simulated"] else ""
        click.echo(f"{row['kind']:<12} {row['name']:<24} {row['source']}{extra}")
    for name, dist in dists.items():
        click.echo(f"entry point  {name:<24} {dist}")
    for name in blocked:
        click.echo(f"blocked      {name}")
