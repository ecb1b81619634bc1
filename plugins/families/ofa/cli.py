"""``edgert ofa nets | table``: published supernets, and latency tables measured here."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgert.cli.options import devices_dir_option, devices_dirs, json_option


@click.group()
def ofa() -> None:
    """Once-for-All supernets: latency tables measured with edgert on a device profile."""


@ofa.command("nets")
@json_option
def nets(as_json: bool) -> None:
    """List the published supernet ids (use them as ofa:<id>)."""
    from edgert.exporters.ofa.supernets import published_nets

    rows = published_nets()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for name, spec in rows.items():
        pinned = "sha256 pinned" if spec.get("sha256") else "no sha256 pin (needs --sha256)"
        click.echo(f"{name:36s} {spec['supernet']:20s} {pinned}")


@ofa.command("table")
@click.option(
    "--supernet", "-s", required=True, help="Net id or spec .json (ofa: prefix optional)."
)
@click.option(
    "--device", "-d", default="auto", show_default=True, help="Profile id, .toml path, or auto."
)
@click.option(
    "--resolution", "-r", type=int, multiple=True, help="Input resolution (repeatable) [224]."
)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Table JSON.")
@click.option("--runs", type=int, default=40, show_default=True, help="Timed runs per unit.")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed runs per unit.")
@click.option(
    "--fit-subnets",
    type=int,
    default=0,
    show_default=True,
    help="Also time this many whole random subnets; their median measured/predicted ratio "
    "corrects predictions. Only on a quiet machine: a busy one skews the ratio.",
)
@devices_dir_option
@json_option
def table(supernet, device, resolution, out, runs, warmup, fit_subnets, devices_dir,
          as_json) -> None:  # fmt: skip
    """Time every candidate unit of a supernet on a device profile and save the table.

    Each unit (stem, every block choice, head) is exported through the profile's own steps
    and timed on its provider, precision and thread count, so the table predicts what a
    subnet costs where it will run.

    \b
    Examples:
      edgert ofa table -s ofa_mbv3_d234_e346_k357_w1.0 -d cpu-generic -r 160 -o mbv3.json
      edgert ofa table -s my-supernet.json -d snapdragon-8-gen3-npu -r 128 -r 160 -o npu.json
    """
    from edgert import resolve_device
    from edgert.catalog import get_catalog
    from edgert.exporters.ofa import latency
    from edgert.exporters.ofa.supernets import load_spec

    profile, reason = resolve_device(device, devices_dirs=devices_dirs(devices_dir))
    if reason and not as_json:
        click.echo(f"device auto -> {profile.id} ({reason})")
    spec = load_spec(supernet)
    options = latency.TableOptions(
        resolutions=tuple(resolution) or (224,),
        timing=latency.TimingOptions(runs=runs, warmup=warmup),
        fit_subnets=fit_subnets,
    )

    def progress(done: int, total: int) -> None:
        if not as_json and (done == total or done % 10 == 0):
            click.echo(f"  measured {done}/{total} units", err=True)

    data = latency.build_table(spec, profile, get_catalog(), options, progress)
    digest = latency.save_table(data, out)
    summary = {k: data[k] for k in ("device", "provider", "precision", "threads", "simulated",
                                    "edgert_version", "resolutions", "overhead_ms",
                                    "correction")}  # fmt: skip
    summary.update(table=str(out), sha256=digest, units=len(data["units"]), supernet=spec.name)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    where = f"{data['provider']}, {data['precision']}, threads {data['threads']}"
    click.echo(f"wrote {out}: {len(data['units'])} units of {spec.name} on {data['device']} "
               f"({where}{', simulated' if data['simulated'] else ''})")  # fmt: skip
