"""Per-token cost of the runtime's own loop: text streaming, stop strings, static feeds.

Three models: the embedded speller (``zoo:speller``, fp32 on ``cpu-generic``), the same
speller exported with static shapes (the NPU graph layout: fixed K/V buffers and masks,
run on the CPU), and a T5-small-shaped int8 model (``benchmarks/seq2seq.py``'s seeded random
checkpoint, on the int8 profile this CPU runs best). For each, one process measures, over
interleaved rounds (medians, ms per token after the first):

* ``generate``: decoder calls and the decoding loop; the text is decoded once at the end;
* ``stream``: the same with the text decoded incrementally per token;
* ``stream+stop``: streamed with two stop strings that never occur (searched per token).

``stream - generate`` is what streaming costs per token, ``stop - stream`` what stop strings
cost. A second table times the text loop alone (no model: the speller's tokenizer over
N generated-looking ids, streamed with stop strings) at N = 64 to 4096: a loop that
rescans the text per token grows with N there.

To compare two versions of edgert, run this script under each (``--label`` names the run;
``PYTHONPATH`` chooses the code) and pass the JSON of the first with ``--before``: the
tables then show both and the ratio. Exports are reused from ``--workdir``.

    python benchmarks/hot_loop.py [--rounds 7] [--label after] [--before before.json]
                                  [--workdir DIR] [--out benchmarks/results/hot_loop.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
STATIC = """
id = "speller-static-cpu"
name = "speller, static shapes (NPU layout), fp32 on CPU"
class = "cpu"
[runtime]
providers = ["ort-cpu"]
[export]
precision = "fp32"
static_shapes = true
max_input_length = 48
max_total_length = 64
steps = ["optimize", "fix-shapes", "validate"]
"""
STOPS = ("<<never-a>>", "never-b")
LENGTHS = (64, 256, 1024, 4096)


def export(source: str, out: Path, device: str) -> Path:
    """``edgert export SOURCE --device DEVICE --out OUT``, unless ``out`` holds a bundle."""
    from edgert.cli import main

    if not (out / "manifest.json").exists():
        print(f"exporting {source} for {device} ...", flush=True)
        try:
            main(["export", source, "--device", device, "--out", str(out), "--force"])
        except SystemExit as exc:
            if exc.code:
                raise
    return out


def prepare(work: Path) -> dict[str, dict[str, Any]]:
    """Bundles and inputs: name -> {bundle, inputs (texts or id lists), new_tokens}."""
    from _peers import has_vnni
    from seq2seq import INPUT_TOKENS, build_model

    from edgert.exporters.zoo import speller

    work.mkdir(parents=True, exist_ok=True)
    texts = [
        line.strip()
        for line in (Path(speller.__file__).parent / "samples.txt").read_text().splitlines()
        if line.strip()
    ]
    (work / "speller-static-cpu.toml").write_text(STATIC)
    t5 = work / "t5-small-shaped"
    if not (t5 / "config.json").exists():
        print("building the T5-small-shaped model ...", flush=True)
        build_model(t5)
    rng = np.random.default_rng(0)
    ids = [[int(i) for i in rng.integers(3, 32000, INPUT_TOKENS - 1)] + [1] for _ in range(2)]
    int8 = "x86-avx512-vnni-int8" if has_vnni() else "x86-avx2-int8"
    return {
        "speller": {
            "bundle": export("zoo:speller", work / "speller", "cpu-generic"),
            "inputs": texts, "new_tokens": 40,
        },
        "speller-static": {
            "bundle": export("zoo:speller", work / "speller-static", str(work / "speller-static-cpu.toml")),
            "inputs": texts, "new_tokens": 40,
        },
        "t5-small-int8": {
            "bundle": export(str(t5), work / f"t5-small-{int8}", int8),
            "inputs": ids, "new_tokens": 64,
        },
    }  # fmt: skip


def per_token(model: Any, item: Any, mode: str, new_tokens: int) -> float:
    """Median ms per token (after the first) of one call in ``mode``."""
    kwargs: dict[str, Any] = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    kwargs["input_ids" if isinstance(item, list) else "text"] = item
    stats: dict[str, Any] = {}
    if mode == "generate":
        stats = model.generate(**kwargs).stats
    else:
        stop = STOPS if mode == "stream+stop" else ()
        for _ in model.stream(stop=stop, stats=stats, **kwargs):
            pass
    return float(statistics.median(stats["per_token_ms"]))


def measure_models(cases: dict[str, dict[str, Any]], rounds: int) -> dict[str, Any]:
    import edgert

    modes = ("generate", "stream", "stream+stop")
    models = {name: edgert.load(case["bundle"], threads=1) for name, case in cases.items()}
    samples: dict[str, dict[str, list[float]]] = {n: {m: [] for m in modes} for n in cases}
    for name, model in models.items():  # warm-up
        per_token(model, cases[name]["inputs"][0], "generate", cases[name]["new_tokens"])
    for r in range(rounds):
        for name, model in models.items():
            case = cases[name]
            order = modes[r % 3 :] + modes[: r % 3]  # rotate: drift hits every mode alike
            for mode in order:
                runs = [per_token(model, x, mode, case["new_tokens"]) for x in case["inputs"]]
                samples[name][mode].append(statistics.median(runs))
    return {
        name: {mode: statistics.median(v) for mode, v in by_mode.items()}
        for name, by_mode in samples.items()
    }


class Replay:
    """A decoder that emits preset ids without calling the model: the runtime's text loop
    runs alone. Registered like any decoder plugin."""

    name: ClassVar[str] = "replay-ids"
    ids: ClassVar[list[int]] = []

    def decode(self, _model: Any, _input_ids: Any, _options: Any) -> Any:
        yield from Replay.ids


def measure_text_loop(bundle: Path, rounds: int) -> dict[str, float]:
    """µs per token of streaming N ids through the runtime's text loop, no model."""
    import edgert
    from edgert.catalog import get_catalog
    from edgert.decoding import DecodingOptions

    Replay.Options = DecodingOptions  # type: ignore[attr-defined]
    get_catalog().decoders(Replay)
    model = edgert.load(bundle, threads=1)
    vocab = model.tokenizer.get_vocab_size()
    rng = np.random.default_rng(1)
    out = {}
    for n in LENGTHS:
        Replay.ids = [int(i) for i in rng.integers(3, vocab, n)]
        best = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in model.stream("x", decoder=Replay.name, stop=STOPS, max_new_tokens=1):
                pass
            best.append((time.perf_counter() - start) / n * 1e6)
        out[str(n)] = min(best)
    return out


def report(results: dict[str, Any], before: dict[str, Any] | None) -> None:
    label = results["label"]
    print(f"\nms per token (median), {results['host']['cpu']}, 1 thread")
    head = f"{'model':<16}{'mode':<13}{label:>10}"
    if before:
        head += f"{before['label']:>10}{'ratio':>8}"
    print(head)
    for name, by_mode in results["models"].items():
        for mode, ms in by_mode.items():
            row = f"{name:<16}{mode:<13}{ms:>10.3f}"
            if before and name in before["models"]:
                old = before["models"][name][mode]
                row += f"{old:>10.3f}{old / ms:>7.2f}x"
            print(row)
    print("\ntext loop alone (speller tokenizer, stop strings on), µs per token")
    for n, us in results["text_loop"].items():
        row = f"N={n:<6}{us:>10.1f}"
        if before and n in before.get("text_loop", {}):
            old = before["text_loop"][n]
            row += f"{old:>10.1f}{old / us:>7.2f}x"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--label", default="this")
    parser.add_argument("--before", type=Path, help="JSON of a run to compare with")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgert-hot-loop"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hot_loop.json")
    args = parser.parse_args()
    from _peers import cpu_flags, cpu_name

    import edgert

    cases = prepare(args.workdir)
    results = {
        "label": args.label,
        "edgert": str(Path(edgert.__file__).resolve().parent),
        "host": {
            "cpu": cpu_name(), "machine": platform.machine(),
            "avx512_vnni": "avx512_vnni" in cpu_flags(), "avx2": "avx2" in cpu_flags(),
        },
        "models": measure_models(cases, args.rounds),
        "text_loop": measure_text_loop(cases["speller"]["bundle"], args.rounds),
    }  # fmt: skip
    before = json.loads(args.before.read_text()) if args.before else None
    if before:
        results["before"] = before
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results, before)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
