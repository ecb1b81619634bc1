"""Lossless decoding on static-shape (NPU) bundles: the fixed-width verify graph vs greedy.

Static graphs take a fixed number of new tokens per call. A bundle exported for a static
profile carries, beside the one-token step graph, a verify graph of width K
(``export.verify_width``) that the lossless decoders use to check K - 1 drafted tokens in one
call. This measures, on the embedded speller (a copy-heavy task) and its draft model, for
each K given:

- ``cost``: ms per call of the step graph and of the verify graph (after warm-up, the
  median of ``--calls`` calls at mid-window), and their ratio: what one verify call costs in
  one-token steps; and the encoder's call, once per input over the padded fixed-length
  window, which every decoder pays alike (it bounds the tokens/s ratio on short outputs);
- per decoder: whether every output equals greedy's on the same bundle, decoder calls per
  token (greedy: 1), positions recomputed alone (``replayed``), tokens/s and its ratio to
  greedy.

Two targets, the same graphs: ``cpu-static`` (``cpu-generic`` with static shapes forced,
fp32, on this CPU) and ``snapdragon-8-gen3-npu`` (QDQ on the QNN HTP). On a host without the
Hexagon NPU the QNN HTP backend is an x86-64 simulator: its placement and its tokens are
real, its timings are NOT device timings (a simulated call costs what simulating it costs
on this CPU). The default K (4) was chosen from the simulator's calls per token and cost
ratio, the only NPU measure available here; on a device, rerun this with ``--targets
snapdragon-8-gen3-npu`` there.

    python benchmarks/static_verify.py [--widths 4,8] [--inputs 24] [--calls 30]
        [--targets cpu-static,snapdragon-8-gen3-npu] [--workdir DIR]
        [--out benchmarks/results/static_verify.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DECODERS = ("greedy", "aggressive", "lookup", "speculative")
CPU_STATIC = """
id = "cpu-static-k{k}"
name = "cpu-generic with static shapes forced (the NPU graphs, fp32 on CPU)"
class = "cpu"
[runtime]
providers = ["ort-cpu"]
[export]
precision = "fp32"
static_shapes = true
max_input_length = 128
max_total_length = 256
verify_width = {k}
steps = ["optimize", "fix-shapes", "validate"]
"""


def profile_file(target: str, k: int, work: Path) -> Path:
    """The target's profile with ``export.verify_width = k``, written into ``work``."""
    import edgert

    path = work / f"{target}-k{k}.toml"
    if target == "cpu-static":
        path.write_text(CPU_STATIC.format(k=k))
        return path
    shipped, _ = edgert.resolve_device(target)
    text = Path(shipped.source).read_text(encoding="utf-8")
    text = text.replace(f'id = "{target}"', f'id = "{target}-k{k}"')
    text = re.sub(r"(?m)^verify_width = .*\n", "", text)
    text = text.replace("static_shapes = true", f"static_shapes = true\nverify_width = {k}")
    path.write_text(text)
    return path


def export(source: Path, out: Path, profile: Path) -> Path:
    """``edgert export`` of ``source`` for ``profile``, unless ``out`` holds it already."""
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    if not (out / "manifest.json").exists():
        print(f"exporting {source.name} for {profile.stem} ...", flush=True)
        resolved, _ = edgert.resolve_device(str(profile))
        export_seq2seq(Seq2SeqExport(source=str(source), out=out, force=True), resolved,
                       get_catalog())  # fmt: skip
    return out


def call_cost(model: Any, calls: int) -> dict[str, float]:
    """Median ms of one step-graph call and of one verify-graph call at mid-window."""
    core = model.core
    ids = model.tokenizer.encode("the quick brown fox jumps over the lazy dog").ids
    width, middle = core.width, core.max_total // 2
    core.start(ids)
    core.step([5] * (middle - core.length))
    timings: dict[str, list[float]] = {"step": [], "verify": []}
    for _ in range(calls + 3):  # three warm-up calls of each
        for name, tokens in (("step", [5]), ("verify", [5] * width)):
            started = time.perf_counter()
            core.step(tokens)
            timings[name].append((time.perf_counter() - started) * 1000)
            core.rollback(middle)
    step, verify = (statistics.median(timings[n][3:]) for n in ("step", "verify"))
    encoder = []
    for _ in range(calls + 3):
        started = time.perf_counter()
        core.encode(ids)
        encoder.append((time.perf_counter() - started) * 1000)
    return {"step_ms": step, "verify_ms": verify, "verify_in_steps": verify / step,
            "encoder_ms": statistics.median(encoder[3:])}  # fmt: skip


def run_decoders(model: Any, draft: Path, texts: list[str]) -> dict[str, dict[str, Any]]:
    """Every decoder on every text, in rotating order; compared with greedy's tokens."""
    reference = {text: model.generate(text).token_ids for text in texts}  # warm-up too
    totals = {name: {"tokens": 0, "calls": 0, "replayed": 0, "s": 0.0, "identical": True}
              for name in DECODERS}  # fmt: skip
    for index, text in enumerate(texts):
        order = DECODERS[index % len(DECODERS) :] + DECODERS[: index % len(DECODERS)]
        for name in order:
            extra = {"draft": str(draft)} if name == "speculative" else {}
            started = time.perf_counter()
            result = model.generate(text, decoder=name, **extra)
            total = totals[name]
            total["s"] += time.perf_counter() - started
            total["tokens"] += len(result.token_ids)
            total["calls"] += result.stats.get("target_calls", len(result.token_ids))
            total["replayed"] += result.stats.get("replayed", 0)
            total["identical"] &= result.token_ids == reference[text]
    greedy_rate = totals["greedy"]["tokens"] / totals["greedy"]["s"]
    return {
        name: {
            "identical": t["identical"],
            "calls_per_token": t["calls"] / t["tokens"],
            "replayed": t["replayed"],
            "tokens_per_s": t["tokens"] / t["s"],
            "vs_greedy": t["tokens"] / t["s"] / greedy_rate,
        }
        for name, t in totals.items()
    }


def measure(target: str, k: int, work: Path, texts: list[str], calls: int) -> dict[str, Any]:
    import edgert

    zoo = Path(str(resources.files("edgert.exporters.zoo") / "speller"))
    profile = profile_file(target, k, work)
    model_dir = export(zoo / "model", work / f"{target}-k{k}" / "model", profile)
    draft_dir = export(zoo / "draft", work / f"{target}-k{k}" / "draft", profile)
    model = edgert.load(model_dir, threads=1)
    return {
        "target": target, "verify_width": k,
        "simulated": bool(model.verify_info.simulated),
        "placement": {"decoder": model.session_info.placement,
                      "verify": model.verify_info.placement},
        "verify_drift": model.bundle.manifest["validation"]["verify_drift"],
        "cost": call_cost(model, calls),
        "decoders": run_decoders(model, draft_dir, texts),
    }  # fmt: skip


def report(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        cost = row["cost"]
        where = ", ".join(f"{p} {n}" for p, n in row["placement"]["verify"].items())
        note = " (SIMULATED: not device timings)" if row["simulated"] else ""
        print(f"\n{row['target']}, K = {row['verify_width']}{note}; verify graph on {where}")
        print(f"  one call: step {cost['step_ms']:.3f} ms, verify {cost['verify_ms']:.3f} ms "
              f"= {cost['verify_in_steps']:.2f} steps; the encoder, once per input (padded to "
              f"its fixed length): {cost['encoder_ms']:.3f} ms")  # fmt: skip
        print(f"  {'decoder':<12} {'identical':>9} {'calls/token':>11} {'replayed':>8} "
              f"{'tokens/s':>9} {'vs greedy':>9}")  # fmt: skip
        for name, r in row["decoders"].items():
            print(f"  {name:<12} {r['identical']!s:>9} {r['calls_per_token']:>11.3f} "
                  f"{r['replayed']:>8} {r['tokens_per_s']:>9.1f} {r['vs_greedy']:>8.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--widths", default="4,8")
    parser.add_argument("--inputs", type=int, default=24)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--targets", default="cpu-static,snapdragon-8-gen3-npu")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgert-static-verify"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "static_verify.json")
    args = parser.parse_args()
    from _peers import cpu_flags, cpu_name

    from edgert.catalog import get_catalog
    from edgert.exporters.zoo.speller.data import heldout_pairs

    args.workdir.mkdir(parents=True, exist_ok=True)
    texts = [noisy for noisy, _ in heldout_pairs(args.inputs, seed=7)]
    rows = []
    for target in args.targets.split(","):
        provider = "ort-qnn" if target.startswith("snapdragon") else "ort-cpu"
        if not get_catalog().providers.get(provider)().is_available():
            print(f"skipping {target}: {provider} is not available here", flush=True)
            continue
        for k in (int(w) for w in args.widths.split(",")):
            rows.append(measure(target, k, args.workdir, texts, args.calls))
    results = {
        "host": {"cpu": cpu_name(), "machine": platform.machine(),
                 "avx512_vnni": "avx512_vnni" in cpu_flags(), "avx2": "avx2" in cpu_flags()},
        "inputs": len(texts),
        "note": "simulated rows ran on the QNN HTP simulator: their timings are not device timings",
        "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\n{results['host']['cpu']}, 1 thread, {len(texts)} held-out speller inputs")
    report(rows)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
