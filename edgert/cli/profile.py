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


class _ProfileGroup(click.Group):
    """``edgert profile BUNDLE ...`` measures; ``edgert profile compare A.json ...`` compares.

    Anything but a subcommand's name goes to the measuring command, so a bundle is named
    as before (a bundle folder called ``compare`` or ``measure`` is reached as
    ``./compare``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["measure", *args]
        return super().parse_args(ctx, args)


class _Measure(click.Command):
    """The measuring command, named in its usage as the user types it."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        path = ctx.parent.command_path if ctx.parent else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))
        formatter.write_usage(path, "compare [OPTIONS] REPORTS...", prefix="   or: ")


@click.group(cls=_ProfileGroup)
def profile() -> None:
    """Profile a bundle, or compare profile reports."""


@profile.command("measure", hidden=True, cls=_Measure)
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
@click.option("--ops", default=0, type=click.IntRange(0),
              help="Also list the N costliest operators of each graph (ONNX Runtime's profiler, "
                   "in a pass of its own).")  # fmt: skip
@click.option("--target", metavar="ssh://USER@HOST[:PORT]",
              help="Profile on that device (edgert installed there): the bundle is copied once "
                   "by content, the report comes back.")  # fmt: skip
@click.option("--accept-new-host-key", is_flag=True,
              help="With --target/--fleet: accept and save a host key not in known_hosts.")  # fmt: skip
@click.option("--fleet", type=click.Path(path_type=Path),
              help="A TOML file of targets: profile on all of them in parallel (Ray).")  # fmt: skip
@click.option("--ray-address", help="With --fleet: an existing Ray cluster [default: a local one].")
@click.option("--fleet-out", type=click.Path(path_type=Path),
              help="With --fleet: where each target's report goes [default: fleet-<bundle>/].")  # fmt: skip
@allow_fallback_option
@json_option
def measure(bundle: Path, runs, warmup, batch, text, input_tokens, new_tokens, decoder, draft,
            extra, context_tokens, device, threads, output, ops, target, accept_new_host_key,
            fleet, ray_address, fleet_out, allow_fallback, as_json) -> None:  # fmt: skip
    """Profile BUNDLE: load time, latency percentiles, throughput, peak RSS, placement.

    Text models report time to first token, per-token p50/p90/p99, tokens/s and the
    decoder's statistics (target calls, acceptance) for the chosen --decoder. The JSON
    report follows a versioned schema (edgert/profile_report.schema.json); `edgert profile
    compare A.json B.json` compares reports, plots them and gates regressions.

    \b
    Examples:
      edgert profile digits-bundle
      edgert profile digits-npu --runs 50 --json --output npu.json
      edgert profile speller-bundle --decoder aggressive --text "teh cat sat in teh garden"
      edgert profile speller-bundle --decoder speculative --draft speller-draft -O confidence=0.2
      edgert profile speller-bundle --ops 10
      edgert profile compare vnni.json avx2.json --plot latency.html
      edgert profile compare new.json --baseline base.json --max-regression 10%
    """
    from rich.console import Console

    from edgert.profiler import ProfileOptions

    chosen = ({"draft": str(draft)} if draft else {}) | decoder_options(extra, RESERVED)
    options = ProfileOptions(runs=runs, warmup=warmup, batch=batch, device=device, threads=threads,
                             allow_fallback=allow_fallback, text=text, input_tokens=input_tokens,
                             new_tokens=new_tokens, decoder=decoder,
                             decoder_options=tuple(chosen.items()),
                             context_tokens=context_tokens)  # fmt: skip
    forwarded = _forwarded(runs=runs, warmup=warmup, batch=batch, text=text,
                           input_tokens=input_tokens, new_tokens=new_tokens, decoder=decoder,
                           extra=extra, context_tokens=context_tokens, device=device,
                           threads=threads, ops=ops, allow_fallback=allow_fallback)  # fmt: skip
    if fleet:
        _fleet(bundle, fleet, forwarded, draft, ray_address, accept_new_host_key,
               fleet_out or Path(f"fleet-{bundle.resolve().name}"), as_json)  # fmt: skip
        return
    console = Console(stderr=True)
    if target:
        from edgert.remote import parse_target, profile_remote

        console.print(f"profiling on {target} ...")
        report = profile_remote(bundle, parse_target(target), forwarded, draft=draft,
                                accept_new_host_key=accept_new_host_key)  # fmt: skip
    else:
        report = _local(bundle, options, ops, runs, console, as_json)
    if output:
        output.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _local(bundle: Path, options, ops: int, runs, console, as_json: bool) -> dict:
    """The report of this machine: a progress bar on a terminal, a line per tenth of the
    runs otherwise (a log shows it is alive)."""
    from rich.progress import Progress

    from edgert.profiler import profile_bundle

    if as_json or console.is_terminal:
        with Progress(console=console, transient=True, disable=as_json or not runs) as progress:
            task = progress.add_task("profiling", total=runs)
            return profile_bundle(bundle, options, tick=lambda: progress.advance(task), ops=ops)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if runs and (done[0] == runs or done[0] % max(1, runs // 10) == 0):
            console.print(f"profiling: {done[0]}/{runs} runs", highlight=False)

    return profile_bundle(bundle, options, tick=tick, ops=ops)


def _forwarded(**given) -> list[str]:
    """The flags given, as the device's ``edgert profile`` takes them."""
    flags = []
    for key, value in given.items():
        if key == "extra":
            flags += [f for option in value for f in ("-O", option)]
        elif key == "allow_fallback":
            flags += ["--allow-fallback"] if value else []
        elif value is not None and not (key == "ops" and not value):
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def _fleet(bundle: Path, fleet: Path, forwarded: list[str], draft, ray_address,
           accept_new: bool, out: Path, as_json: bool) -> None:  # fmt: skip
    """Every target's report into ``out``, then the comparison of those that ran."""
    import dataclasses

    from edgert import report_compare as rc
    from edgert.fleet import load_fleet, run_fleet

    targets = load_fleet(fleet)
    if accept_new:
        targets = [dataclasses.replace(t, accept_new_host_key=True) for t in targets]
    results = run_fleet(targets, bundle, forwarded, out, draft=draft, ray_address=ray_address,
                        progress=lambda line: click.echo(line, err=True))  # fmt: skip
    ran = {name: r for name, r in results.items() if "error" not in r}
    failed = {name: r for name, r in results.items() if "error" in r}
    labels = [f"{name} ({r['device']}, {r['host']['cpu']})" for name, r in ran.items()]
    table = rc.rows(list(ran.values())) if ran else []
    comparison = rc.as_json(labels, table) | {"failed": sorted(failed)}
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif ran:
        _print_compare(labels, table)
    for name, r in failed.items():
        click.secho(f"{name} failed: {r['error']}", fg="red", err=True)
        if r.get("hint"):
            click.echo(f"hint: {r['hint']}", err=True)
    click.echo(f"wrote {len(results)} reports to {out}/", err=True)
    if failed:
        raise SystemExit(1)


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
    if "ops" in report:
        _print_ops(report["ops"])


def _print_ops(ops: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    for graph, found in ops["graphs"].items():
        table = Table(title=f"{graph}: top {ops['top']} operators, {ops['warmup']} warm-up + {ops['runs']} runs "
                            f"({found['total_ms']:.1f} ms in all)")  # fmt: skip
        for column in ("operator", "provider", "ms", "calls", "share"):
            table.add_column(
                column, justify="left" if column in ("operator", "provider") else "right"
            )
        for op in found["ops"]:
            table.add_row(op["op"], op["provider"], f"{op['ms']:.2f}", str(op["calls"]),
                          f"{op['share']:.1%}")  # fmt: skip
        Console().print(table)


@profile.command("compare")
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Path(path_type=Path),
              help="Gate: exit 1 when a report is slower than this one by more than --max-regression.")  # fmt: skip
@click.option("--max-regression", default="10%", show_default=True,
              help="The gate's bound: a stage's p50 slower, or throughput lower, by more than this.")  # fmt: skip
@click.option("--plot", type=click.Path(path_type=Path),
              help="Draw per-stage latency and per-token latency into a .png or .html file.")  # fmt: skip
@json_option
def compare(reports: tuple[Path, ...], baseline, max_regression, plot, as_json) -> None:
    """Compare profile REPORTS (from `edgert profile --output`) side by side: ratios against
    the first (or against --baseline), an optional plot, and a regression gate for CI.

    \b
    Examples:
      edgert profile compare vnni.json avx2.json --plot latency.png
      edgert profile compare new.json --baseline main.json --max-regression 5%
    """
    from edgert import report_compare as rc
    from edgert.profiler import load_report

    loaded = [load_report(path) for path in reports]
    labels = [rc.label(r, p) for r, p in zip(loaded, reports, strict=True)]
    bound = rc.parse_bound(max_regression)
    base = load_report(baseline) if baseline else None
    if base is not None:
        loaded, labels = [base, *loaded], [rc.label(base, baseline) + " [baseline]", *labels]
    labels = rc.unique(labels)  # the gate's results are named by label: no two alike
    table = rc.rows(loaded)
    failures = {name: rc.regressions(r, base, bound) for r, name in zip(loaded[1:], labels[1:], strict=True)} if base else {}  # fmt: skip
    if plot:
        rc.plot(loaded, labels, plot)
    if as_json:
        click.echo(json.dumps(rc.as_json(labels, table) | {"regressions": failures}, indent=2))
    else:
        _print_compare(labels, table)
        if plot:
            click.echo(f"wrote {plot}")
    bad = {name: found for name, found in failures.items() if found}
    for name, found in bad.items():
        for line in found:
            click.secho(f"regression in {name}: {line} (bound {bound:.0%})", fg="red", err=True)
    if bad:
        raise SystemExit(1)


def _print_compare(labels: list[str], table: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgert.report_compare import ratio

    out = Table(title="profile reports (ratios against the first)")
    out.add_column("metric")
    for name in labels:
        out.add_column(name, justify="right")
    for metric, values, unit in table:
        cells = []
        for i, value in enumerate(values):
            share = ratio(value, values[0]) if i else None
            cells.append(
                "—"
                if value is None
                else f"{value:.3f} {unit}" + (f" ({share:.2f}x)" if share else "")
            )
        out.add_row(metric, *cells)
    Console().print(out)
