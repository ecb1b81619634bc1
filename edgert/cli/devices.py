"""``edgert devices list | show | validate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgert.cli.options import devices_dir_option, devices_dirs, json_option


@click.group()
def devices() -> None:
    """Device profiles: list, show and validate them."""


def _profiles(devices_dir: tuple[Path, ...]):
    from edgert.catalog import get_catalog
    from edgert.profiles import ProfileSet

    return ProfileSet(get_catalog(), devices_dirs(devices_dir))


@devices.command("list")
@devices_dir_option
@json_option
def list_(devices_dir: tuple[Path, ...], as_json: bool) -> None:
    """List every profile and whether this host can run it (what `--device auto` would pick).

    \b
    Examples:
      edgert devices list
      edgert devices list --json --devices-dir ./my-devices
    """
    from edgert.autoselect import host_mismatch, pick_auto, provider_problem
    from edgert.host import this_host

    profiles = _profiles(devices_dir)
    host = this_host()
    rows = []
    for profile in profiles.all():
        problem = host_mismatch(profile, host) or provider_problem(profile, profiles.catalog)
        rows.append(
            {
                "id": profile.id,
                "name": profile.name,
                "class": profile.device_class,
                "providers": list(profile.runtime.providers),
                "precision": profile.export.precision,
                "static_shapes": profile.export.static_shapes,
                "runnable_here": problem is None,
                "why_not": problem,
                "source": profile.source,
            }
        )
    try:
        choice = pick_auto(profiles, host)
        auto = {"id": choice.profile.id, "reason": choice.reason}
    except Exception as exc:  # no runnable profile: still list them
        auto = {"id": None, "reason": str(exc)}
    if as_json:
        click.echo(json.dumps({"auto": auto, "devices": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="device profiles")
    for column in ("id", "class", "providers", "precision", "here"):
        table.add_column(column)
    for row in rows:
        here = "[green]yes[/]" if row["runnable_here"] else f"[dim]no: {row['why_not']}[/]"
        marker = " *" if row["id"] == auto["id"] else ""
        table.add_row(
            row["id"] + marker, row["class"], ", ".join(row["providers"]), row["precision"], here
        )
    console = Console()
    console.print(table)
    console.print(f"* --device auto -> {auto['id']}: {auto['reason']}")


@devices.command()
@click.argument("device")
@devices_dir_option
@json_option
def show(device: str, devices_dir: tuple[Path, ...], as_json: bool) -> None:
    """Show one profile, resolved (defaults filled in). DEVICE is an id, a .toml path or auto."""
    from edgert import resolve_device

    profile, reason = resolve_device(device, devices_dirs=devices_dirs(devices_dir))
    data = {"source": profile.source, **profile.to_dict()}
    if reason:
        data["auto_reason"] = reason
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"{key}: {json.dumps(value) if isinstance(value, dict | list) else value}")


@devices.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check profile TOML files (schema, provider names and options, steps).

    \b
    Example:
      edgert devices validate my-devices/jetson-nano.toml
    """
    from edgert.catalog import get_catalog
    from edgert.profiles import check_against_catalog, load_profile_file

    for path in paths:
        profile = check_against_catalog(load_profile_file(path), get_catalog())
        click.echo(f"ok: {path} ({profile.id})")
