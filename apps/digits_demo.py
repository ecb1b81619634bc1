"""Classify the held-out digits with one or more bundles, using only edgert's public API.

Prints accuracy, per-image latency (batch 1) and the provider that really ran, for each
bundle given on the command line:

    python apps/digits_demo.py demo-out/digits-auto demo-out/digits-npu
"""

from __future__ import annotations

import sys
import time
from importlib import resources

import numpy as np

import edgert


def test_split() -> tuple[np.ndarray, np.ndarray]:
    """The digits test split that ships with edgert, preprocessed as in training."""
    resource = resources.files("edgert.exporters.zoo") / "digits_test.npz"
    with resources.as_file(resource) as path, np.load(path, allow_pickle=False) as data:
        x = data["x"].astype(np.float32).reshape(-1, 1, 8, 8) / 16.0
        return x, data["y"].astype(np.int64)


def evaluate(bundle: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy over the split and batch-1 latency percentiles."""
    started = time.perf_counter()
    model = edgert.load(bundle)
    load_ms = (time.perf_counter() - started) * 1000
    predicted = np.array([int(p.label) for p in model.classify(x, top_k=1)])
    latencies = []
    for image in x:
        t = time.perf_counter()
        model.classify(image[None], top_k=1)
        latencies.append((time.perf_counter() - t) * 1000)
    info = model.session_info
    return {
        "bundle": bundle,
        "device": model.profile.id,
        "precision": model.bundle.manifest["precision"],
        "provider": info.active + (" (simulated)" if info.simulated else ""),
        "accuracy": float(np.mean(predicted == y)),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p90_ms": float(np.percentile(latencies, 90)),
        "load_ms": load_ms,
        "fallback": "; ".join(info.fallback) or "none",
    }


def main(bundles: list[str]) -> None:
    """Evaluate every bundle and print one table."""
    x, y = test_split()
    rows = [evaluate(bundle, x, y) for bundle in bundles]
    print(f"digits test split: {len(y)} images, 8x8 grayscale")
    header = (
        f"{'device':<24} {'precision':<9} {'provider':<22} {'accuracy':>8} {'p50 ms':>8} "
        f"{'p90 ms':>8} {'load ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['device']:<24} {r['precision']:<9} {r['provider']:<22} {r['accuracy']:>8.2%} "
            f"{r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} {r['load_ms']:>8.1f}"
        )
        if r["fallback"] != "none":
            print(f"  fallback: {r['fallback']}")
    if any("simulated" in r["provider"] for r in rows):
        print("simulated: the QNN HTP backend runs as an x86-64 simulator here; its latency")
        print("proves the bundle runs wholly on the NPU graph, not how fast a phone runs it.")


if __name__ == "__main__":
    main(sys.argv[1:] or ["demo-out/digits-auto"])
