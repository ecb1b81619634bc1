"""``edgert profile``: latency, load time, memory and placement of a bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgert.cli.options import allow_fallback_option, json_option


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1), help="Timed runs.")
@click.option(
    "--warmup", default=10, show_default=True, type=click.IntRange(0), help="Untimed runs first."
)
@click.option(
    "--batch", default=1, show_default=True, type=click.IntRange(1), help="Inputs per run."
)
@click.option("--device", "-d", help="Run with this profile's providers instead of the bundle's.")
@click.option("--threads", type=int, help="Intra-op threads (default: the profile's).")
@click.option("--output", type=click.Path(path_type=Path), help="Also write the JSON report here.")
@allow_fallback_option
@json_option
def profile(
    bundle: Path,
    runs: int,
    warmup: int,
    batch: int,
    device,
    threads,
    output,
    allow_fallback,
    as_json,
) -> None:
    """Profile BUNDLE: load time, latency p50/p90/p99, throughput, peak RSS, placement.

    \b
    Examples:
      edgert profile digits-bundle
      edgert profile digits-npu --runs 50 --json --output npu.json
    """
    from rich.console import Console
    from rich.progress import Progress

    from edgert.profiler import ProfileOptions, profile_bundle

    options = ProfileOptions(
        runs=runs,
        warmup=warmup,
        batch=batch,
        device=device,
        threads=threads,
        allow_fallback=allow_fallback,
    )
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=as_json or runs < 200) as progress:
        task = progress.add_task("profiling", total=runs)
        report = profile_bundle(bundle, options, tick=lambda: progress.advance(task))
    if output:
        output.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    lat = report["latency_ms"]
    sim = " [yellow](simulated: not device timings)[/]" if report["simulated"] else ""
    table = Table(title=f"{report['bundle']} on {report['device']}{sim}", show_header=False)
    table.add_column("metric")
    table.add_column("value")
    rows = [
        ("provider", report["provider"] + (" (simulated)" if report["simulated"] else "")),
        (
            "nodes per provider",
            ", ".join(f"{k}: {v}" for k, v in report["placement"].items()) or "n/a",
        ),
        ("fallback", "; ".join(report["fallback"]) or "none"),
        ("precision", report["precision"]),
        (
            "load first / warm",
            f"{report['load_ms']['first']:.1f} / {report['load_ms']['warm']:.1f} ms",
        ),
        ("latency p50 / p90 / p99", f"{lat['p50']:.3f} / {lat['p90']:.3f} / {lat['p99']:.3f} ms"),
        ("throughput", f"{report['throughput_per_s']:.1f} inputs/s (batch {report['batch']})"),
        ("peak RSS", f"{report['peak_rss_mb']:.1f} MB"),
        ("bundle size", f"{report['bundle_bytes'] / 1024:.1f} KiB"),
        ("runs", f"{report['runs']} after {report['warmup']} warm-up"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
