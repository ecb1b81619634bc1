"""``edgert profile``: latency, load time, memory and placement of a bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgert.cli.options import (
    allow_fallback_option,
    decoder_options,
    decoder_options_option,
    draft_option,
    json_option,
)

# Generation settings that profile sets from its own flags.
RESERVED = {"decoder": "--decoder", "max_new_tokens": "--new-tokens",
            "min_new_tokens": "--new-tokens (EOS is suppressed until then)",
            "text": "--text", "input_ids": "--text or --input-tokens",
            "context": "--context-tokens"}  # fmt: skip


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--runs", default=None, type=click.IntRange(1),
              help="Timed runs [default: the family's: 100 inferences, 10 generations].")  # fmt: skip
@click.option("--warmup", default=None, type=click.IntRange(0), help="Untimed runs first [10 / 2].")
@click.option(
    "--batch",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Classifiers: inputs per run.",
)
@click.option("--text", help="Text models: the input [default: seeded random tokens].")
@click.option(
    "--input-tokens",
    default=32,
    show_default=True,
    help="Text models without --text: input length.",
)
@click.option(
    "--new-tokens",
    default=32,
    show_default=True,
    help="Text models: tokens per run (EOS suppressed).",
)
@click.option(
    "--decoder", default="greedy", show_default=True, help="Text models: decoding plugin."
)
@draft_option
@decoder_options_option
@click.option(
    "--context-tokens",
    default=512,
    show_default=True,
    type=click.IntRange(1),
    help="Decoder-decoder models: length of the seeded context (at most the encoder's window).",
)
@click.option("--device", "-d", help="Run with this profile's providers instead of the bundle's.")
@click.option("--threads", type=int, help="Intra-op threads (default: the profile's).")
@click.option("--output", type=click.Path(path_type=Path), help="Also write the JSON report here.")
@allow_fallback_option
@json_option
def profile(bundle: Path, runs, warmup, batch, text, input_tokens, new_tokens, decoder, draft,
            extra, context_tokens, device, threads, output, allow_fallback, as_json) -> None:  # fmt: skip
    """Profile BUNDLE: load time, latency percentiles, throughput, peak RSS, placement.

    Text models report time to first token, per-token p50/p90/p99, tokens/s and the
    decoder's statistics (target calls, acceptance) for the chosen --decoder.

    \b
    Examples:
      edgert profile digits-bundle
      edgert profile digits-npu --runs 50 --json --output npu.json
      edgert profile speller-bundle --decoder aggressive --text "teh cat sat in teh garden"
      edgert profile speller-bundle --decoder speculative --draft speller-draft -O confidence=0.2
    """
    from rich.console import Console
    from rich.progress import Progress

    from edgert.profiler import ProfileOptions, profile_bundle

    chosen = ({"draft": str(draft)} if draft else {}) | decoder_options(extra, RESERVED)
    options = ProfileOptions(runs=runs, warmup=warmup, batch=batch, device=device, threads=threads,
                             allow_fallback=allow_fallback, text=text, input_tokens=input_tokens,
                             new_tokens=new_tokens, decoder=decoder,
                             decoder_options=tuple(chosen.items()),
                             context_tokens=context_tokens)  # fmt: skip
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=as_json or not runs) as progress:
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

    from edgert.catalog import get_catalog

    sim = " [yellow](simulated: not device timings)[/]" if report["simulated"] else ""
    table = Table(title=f"{report['bundle']} on {report['device']}{sim}", show_header=False)
    table.add_column("metric")
    table.add_column("value")
    placement = ", ".join(f"{k}: {v}" for k, v in report["placement"].items()) or "n/a"
    rows = [
        ("provider", report["provider"] + (" (simulated)" if report["simulated"] else "")),
        ("nodes per provider", placement),
        ("fallback", "; ".join(report["fallback"]) or "none"),
        ("precision", report["precision"]),
        (
            "load first / warm",
            f"{report['load_ms']['first']:.1f} / {report['load_ms']['warm']:.1f} ms",
        ),
    ]
    rows += get_catalog().families.get(report["family"]).cli().profile_rows(report)
    rows += [
        ("peak RSS", f"{report['peak_rss_mb']:.1f} MB"),
        ("bundle size", f"{report['bundle_bytes'] / 1024:.1f} KiB"),
        ("runs", f"{report['runs']} after {report['warmup']} warm-up"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
