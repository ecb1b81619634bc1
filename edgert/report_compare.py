"""``edgert profile compare``: profile reports side by side, a regression gate, and plots.

Reports come from ``edgert.profiler.load_report`` (version-checked). The table takes the
first report as the reference and shows each other one's ratio to it; the gate compares
each report with a baseline and names every stage slower (or throughput lower) than the
bound allows; the plot draws per-stage p50 bars with p50-p99 whiskers and, for text
models, per-token latency along the sequence (matplotlib; HTML embeds the PNG and the
table).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from edgert.errors import InputError

PERCENTILES = ("p50", "p90", "p99")


def label(report: dict[str, Any], path: Path) -> str:
    """How a report is named in tables and plots: its file, profile and CPU."""
    sim = ", simulated" if report.get("simulated") else ""
    return f"{path.stem} ({report['device']}, {report['host']['cpu']}{sim})"


def unique(labels: list[str]) -> list[str]:
    """``labels`` with a number added to repeats (two ``new.json`` from two folders)."""
    seen: dict[str, int] = {}
    out = []
    for name in labels:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def rows(reports: list[dict[str, Any]]) -> list[tuple[str, list[float | None], str]]:
    """``(metric, value per report, unit)``: every stage's percentiles, throughput, load
    time and peak RSS, in the first report's order, then stages only later ones have."""
    stages: list[str] = []
    for report in reports:
        stages += [name for name in report["stages"] if name not in stages]
    table: list[tuple[str, list[float | None], str]] = []
    for stage in stages:
        for p in PERCENTILES:
            table.append((f"{stage} {p}", [_stage(r, stage, p) for r in reports], "ms"))
    units = {(r.get("throughput") or {}).get("unit") for r in reports} - {None}
    if len(units) == 1:
        table.append(("throughput", [(r.get("throughput") or {}).get("value") for r in reports],
                      units.pop()))  # fmt: skip
    table.append(("load (warm)", [r["load_ms"]["warm"] for r in reports], "ms"))
    table.append(("peak RSS", [r["peak_rss_mb"] for r in reports], "MB"))
    return table


def as_json(labels: list[str], table: list[tuple[str, list[float | None], str]]) -> dict:
    """The comparison as ``compare --json`` prints it and a fleet writes it."""
    return {"reports": labels, "rows": [
        {"metric": m, "unit": u, "values": v, "ratios": [ratio(x, v[0]) for x in v]}
        for m, v, u in table]}  # fmt: skip


def _stage(report: dict[str, Any], stage: str, p: str) -> float | None:
    return (report["stages"].get(stage) or {}).get(p)


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def regressions(report: dict[str, Any], baseline: dict[str, Any], bound: float) -> list[str]:
    """Each way ``report`` is worse than ``baseline`` by more than ``bound`` (0.1 = 10%):
    a stage's p50 slower, or throughput lower. Stages only one of them has are skipped."""
    found = []
    for stage, base in baseline["stages"].items():
        now = report["stages"].get(stage)
        if now and base.get("p50") and now["p50"] > base["p50"] * (1 + bound):
            found.append(f"{stage} p50 {now['p50']:.3f} ms against the baseline's "
                         f"{base['p50']:.3f} ms ({now['p50'] / base['p50'] - 1:+.1%})")  # fmt: skip
    new, old = report.get("throughput") or {}, baseline.get("throughput") or {}
    if (new.get("unit") == old.get("unit") and old.get("value")
            and new.get("value", 0) * (1 + bound) < old["value"]):  # fmt: skip
        found.append(f"throughput {new['value']:.1f} {new['unit']} against the baseline's "
                     f"{old['value']:.1f} ({new['value'] / old['value'] - 1:+.1%})")  # fmt: skip
    return found


def parse_bound(text: str) -> float:
    """``10%`` or ``0.1`` -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not text.endswith("%") and value >= 1:  # "10" is 10% or 1000%: say which
        value = -1.0
    if not 0 <= value < 100:
        raise InputError(f"--max-regression {text!r} is not a bound",
                         hint="give a percentage such as 10% (or a fraction below 1, 0.1)")  # fmt: skip
    return value


def plot(reports: list[dict[str, Any]], labels: list[str], out: Path) -> Path:
    """Per-stage p50 bars with p50-p99 whiskers, and per-token latency over the sequence
    where the reports have it; ``out`` is ``.png`` or ``.html`` (PNG and table inline)."""
    if out.suffix.lower() not in (".png", ".html"):
        raise InputError(f"--plot {out} must end in .png or .html",
                         hint="e.g. --plot latency.png or --plot latency.html")  # fmt: skip
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InputError("--plot needs matplotlib", hint="pip install 'edgert[plot]'") from exc
    stages = [name for name in dict.fromkeys(s for r in reports for s in r["stages"])]
    series = [r.get("per_token_series_ms") or [] for r in reports]
    panels = 2 if any(series) else 1
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels + 2, 4.5), squeeze=False)
    bars = axes[0][0]
    width = 0.8 / max(1, len(reports))
    for i, (report, name) in enumerate(zip(reports, labels, strict=True)):
        x = [j + i * width for j in range(len(stages))]
        p50 = [_stage(report, s, "p50") or 0.0 for s in stages]
        p99 = [_stage(report, s, "p99") or 0.0 for s in stages]
        bars.bar(x, p50, width, label=name,
                 yerr=[[0] * len(stages), [max(0.0, b - a) for a, b in zip(p50, p99, strict=True)]],
                 capsize=3)  # fmt: skip
    bars.set_xticks([j + width * (len(reports) - 1) / 2 for j in range(len(stages))], stages)
    bars.set_ylabel("ms (bar: p50, whisker: p99)")
    bars.set_yscale("log")
    bars.set_title("latency per stage")
    bars.legend(fontsize="small")
    if panels == 2:
        line = axes[0][1]
        for values, name in zip(series, labels, strict=True):
            if values:
                line.plot(range(2, len(values) + 2), values, label=name)
        line.set_xlabel("token")
        line.set_ylabel("ms (median over runs)")
        line.set_title("per-token latency over the sequence")
        line.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    png = buffer.getvalue()
    if out.suffix.lower() == ".png":
        out.write_bytes(png)
    else:
        out.write_text(_html(reports, labels, png), encoding="utf-8")
    return out


def _html(reports: list[dict[str, Any]], labels: list[str], png: bytes) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in labels)
    body = []
    for metric, values, unit in rows(reports):
        cells = []
        for i, value in enumerate(values):
            share = ratio(value, values[0]) if i else None
            text = "—" if value is None else f"{value:.3f} {unit}"
            cells.append(f"<td>{text}{f' ({share:.2f}x)' if share else ''}</td>")
        body.append(f"<tr><th>{html.escape(metric)}</th>{''.join(cells)}</tr>")
    image = base64.b64encode(png).decode("ascii")
    return ("<!doctype html><meta charset='utf-8'><title>edgert profile compare</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style>"
            f"<h1>edgert profile compare</h1><img alt='latency per stage' src='data:image/png;base64,{image}'>"
            f"<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>\n")  # fmt: skip
