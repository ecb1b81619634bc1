"""CNN latency: torch eager vs bare ONNX Runtime vs edgert (fp32, int8), interleaved.

For the embedded digits CNN and a MobileNetV3-Small-shaped CNN (random weights), batch 1,
at 1 and 2 intra-op threads. Every engine runs the same input; rounds alternate engines so
drift on a shared machine hits all of them alike. Prints a table and writes JSON.

    python benchmarks/cnn.py [--rounds 15] [--calls 40] [--out benchmarks/results/cnn.json]

Targets checked and printed: edgert adds <= 5% over a bare ``InferenceSession.run`` on the
same graph and options; int8 is no slower than fp32.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import edgert
from edgert.catalog import get_catalog
from edgert.exporters.cnn.export import CnnExport, export_cnn
from edgert.host import this_host

MODELS = {"digits": "zoo:digits", "mobilenet-v3-small": "zoo:mobilenet-v3-small"}


def int8_device() -> str:
    """The int8 CPU profile this host runs best (what --device auto picks on x86/Arm)."""
    profile, _ = edgert.resolve_device("auto")
    return profile.id if profile.export.precision == "int8" else "x86-avx2-int8"


def export_all(root: Path) -> dict[tuple[str, str], Path]:
    bundles = {}
    int8 = int8_device()
    for name, source in MODELS.items():
        calibration = None
        if name != "digits":
            calibration = root / f"{name}-calib.npy"
            rng = np.random.default_rng(0)
            np.save(calibration, rng.random((32, 3, 224, 224), dtype=np.float32))
        for precision, device in (("fp32", "cpu-generic"), ("int8", int8)):
            profile, _ = edgert.resolve_device(device)
            out = root / f"{name}-{precision}"
            export_cnn(
                CnnExport(source=source, out=out, calibration=calibration), profile, get_catalog()
            )
            bundles[(name, precision)] = out
    return bundles


def bare_session(bundle: Path, threads: int) -> ort.InferenceSession:
    """What a user writes by hand: same graph, same options edgert uses."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return ort.InferenceSession(str(bundle / "model.onnx"), so, providers=["CPUExecutionProvider"])


def engines(name: str, bundles: dict, threads: int) -> dict:
    from edgert.exporters.cnn.sources import load_source

    x = edgert.load(bundles[(name, "fp32")]).example_input(1)
    model = load_source(MODELS[name]).model
    xt = torch.from_numpy(x)
    out = {}

    def torch_eager():
        with torch.inference_mode():
            model(xt)

    out["torch eager"] = torch_eager
    for precision in ("fp32", "int8"):
        bundle = bundles[(name, precision)]
        session = bare_session(bundle, threads)
        loaded = edgert.load(bundle, threads=threads)
        out[f"bare ORT {precision}"] = lambda s=session: s.run(["logits"], {"input": x})
        out[f"edgert {precision}"] = lambda m=loaded: m.logits(x)
        out[f"edgert classify {precision}"] = lambda m=loaded: m.classify(x, top_k=5)
    return out


def measure(calls: dict, rounds: int, per_round: int) -> dict[str, dict]:
    """Median and p90 over rounds of the mean per-call time of a block of calls.

    Block means, not single calls: a digits call takes ~15 us, where one timer read or
    scheduler tick is already a few percent.
    """
    blocks: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for key, fn in calls.items():
            # Idle ORT/OpenMP workers of the engine that ran before keep spinning for a
            # while and steal the second core: let them park, then re-warm this engine.
            time.sleep(0.05)
            for _ in range(3):
                fn()
            started = time.perf_counter()
            for _ in range(per_round):
                fn()
            blocks[key].append((time.perf_counter() - started) * 1000 / per_round)
    return {
        k: {"p50_ms": float(np.median(v)), "p90_ms": float(np.percentile(v, 90)), "blocks": len(v),
            "calls_per_block": per_round}
        for k, v in blocks.items()
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=400, help="digits calls per block")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cnn.json"))
    args = parser.parse_args()
    results = {"host": {"cpu": this_host().cpu_name, "python": platform.python_version(),
                        "onnxruntime": ort.__version__, "torch": torch.__version__,
                        "int8_profile": int8_device()}, "runs": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        bundles = export_all(Path(tmp))
        for name in MODELS:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                calls = engines(name, bundles, threads)
                per_round = args.calls if name == "digits" else max(4, args.calls // 40)
                stats = measure(calls, args.rounds, per_round)
                del calls
                gc.collect()  # drop this configuration's sessions before the next one
                results["runs"].append({"model": name, "threads": threads, "engines": stats})
                report(name, threads, stats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def report(name: str, threads: int, stats: dict) -> None:
    print(f"\n{name}, batch 1, {threads} thread(s): median per-call latency over blocks")
    print(f"  {'engine':<24} {'p50 ms':>9} {'p90 ms':>9}")
    for key, s in stats.items():
        print(f"  {key:<24} {s['p50_ms']:>9.4f} {s['p90_ms']:>9.4f}")
    for precision in ("fp32", "int8"):
        bare, ours = (
            stats[f"bare ORT {precision}"]["p50_ms"],
            stats[f"edgert {precision}"]["p50_ms"],
        )
        print(f"  edgert {precision} overhead over bare ORT: {100 * (ours / bare - 1):+.1f}%")
    fp32, int8 = stats["edgert fp32"]["p50_ms"], stats["edgert int8"]["p50_ms"]
    print(f"  int8 / fp32 latency: {int8 / fp32:.2f}x   torch eager / edgert fp32: "
          f"{stats['torch eager']['p50_ms'] / fp32:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
