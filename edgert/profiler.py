"""``edgert profile``: load time, latency percentiles, throughput, memory and placement.

One report schema for every family and provider. Timings taken on a simulator (the QNN HTP
backend on x86-64) are labelled ``simulated``: they prove the graph runs, not how fast.
"""

from __future__ import annotations

import dataclasses
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import edgert
from edgert.host import this_host


@dataclass(frozen=True)
class ProfileOptions:
    """Options of one profiling run."""

    runs: int | None = None  # timed runs after warm-up; None: the family's default
    warmup: int | None = None
    batch: int = 1  # images per run (classifiers); ignored by fixed-batch graphs
    device: str | None = None  # profile id to run with instead of the bundle's
    threads: int | None = None
    allow_fallback: bool | None = None
    text: str | None = None  # text models: the input; default: seeded random tokens
    input_tokens: int = 32  # text models without --text: input length
    new_tokens: int = 32  # text models: tokens generated per run (EOS suppressed)
    decoder: str = "greedy"  # text models: decoding plugin
    decoder_options: tuple[tuple[str, Any], ...] = ()  # its options (draft, confidence, ...)
    context_tokens: int = 512  # decoder-decoder models: length of the seeded context


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99, mean, min and max of latencies in milliseconds."""
    a = np.asarray(samples_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _timed_load(bundle: Path, options: ProfileOptions) -> tuple[Any, float]:
    started = time.perf_counter()
    model = edgert.load(
        bundle,
        device=options.device,
        allow_fallback=options.allow_fallback,
        threads=options.threads,
    )
    return model, (time.perf_counter() - started) * 1000


def profile_bundle(
    bundle: str | Path,
    options: ProfileOptions,
    tick: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Profile a bundle and return the report (JSON-ready).

    Load times are the core's; the timed workload is the family's (``Family.commands``:
    batches for a classifier, generations for a text model), so a family plugin is profiled
    like the built-in ones. ``options.runs`` / ``warmup`` of None take the family's defaults.

    Args:
        bundle: bundle directory.
        options: runs, warm-up, batch, device override.
        tick: called after each timed run (progress bars).
    """
    from edgert.catalog import get_catalog

    bundle = Path(bundle)
    model, first_ms = _timed_load(bundle, options)
    del model
    model, warm_ms = _timed_load(bundle, options)
    commands = get_catalog().families.get(model.bundle.family).cli()
    runs, warmup = commands.default_runs
    options = dataclasses.replace(
        options,
        runs=runs if options.runs is None else options.runs,
        warmup=warmup if options.warmup is None else options.warmup,
    )
    workload = commands.profile(model, options, tick)
    report = _common(model)
    report.update(
        runs=options.runs,
        warmup=options.warmup,
        threads=options.threads if options.threads is not None else model.profile.runtime.threads,
        load_ms={"first": first_ms, "warm": warm_ms},
    )
    report.update(workload)
    return report


def _common(model: Any) -> dict[str, Any]:
    info = model.session_info
    host = this_host()
    return {
        "bundle": str(model.bundle.path),
        "family": model.bundle.family,
        "device": model.profile.id,
        "precision": model.bundle.manifest["precision"],
        "provider": info.active,
        "requested_providers": info.requested,
        "placement": info.placement,
        "fallback": info.fallback,
        "simulated": info.simulated,
        "host": {
            "arch": host.arch,
            "os": host.os,
            "cpu": host.cpu_name,
            "python": platform.python_version(),
        },
        "peak_rss_mb": _peak_rss_mb(),
        "bundle_bytes": _bundle_bytes(model.bundle),
        "versions": {"edgert": edgert.__version__, "onnxruntime": _ort_version()},
    }


def _bundle_bytes(bundle: Any) -> int:
    if "files" in bundle.manifest:
        return bundle.size_bytes()
    return sum(p.stat().st_size for p in Path(bundle.path).iterdir() if p.is_file())


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
