"""``edgert profile``: load time, latency percentiles, throughput, memory and placement.

One report schema for every family and provider, versioned (``schema_version``) and written
down as a JSON Schema shipped with the package (``profile_report.schema.json``):
``load_report`` refuses a report of another version instead of misreading it. Timings
taken on a simulator (the QNN HTP backend on x86-64) are labelled ``simulated``: they prove
the graph runs, not how fast.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import edgert
from edgert.errors import InputError
from edgert.host import this_host

SCHEMA_VERSION = 1
SCHEMA_FILE = "profile_report.schema.json"
OPS_RUNS = 3  # timed runs of the workload in the ``--ops`` pass (after one warm-up)
# The instruction-set flags a report names (those kernels pick code paths by).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "neon", "asimd",
             "asimddp", "i8mm", "sve", "bf16")  # fmt: skip


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
    ops: int = 0,
) -> dict[str, Any]:
    """Profile a bundle and return the report (JSON-ready).

    Load times are the core's; the timed workload is the family's (``Family.commands``:
    batches for a classifier, generations for a text model), so a family plugin is profiled
    like the built-in ones. ``options.runs`` / ``warmup`` of None take the family's defaults.

    Args:
        bundle: bundle directory.
        options: runs, warm-up, batch, device override.
        tick: called after each timed run (progress bars).
        ops: keep the top ``ops`` operators of each graph (``edgert.op_profile``), from a
            pass of its own after the timed runs (the profiler slows sessions down).
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
    report["stages"] = _checked_stages(workload.get("stages", {}))
    report["throughput"] = workload.get("throughput")
    if ops:
        report["ops"] = _op_pass(bundle, options, commands, ops)
    return report


def _checked_stages(stages: Any) -> dict[str, Any]:
    """The family's ``stages``: name -> percentiles (a family that gives none: {})."""
    if not isinstance(stages, dict) or not all(
        isinstance(v, dict) and {"p50", "p90", "p99"} <= set(v) for v in stages.values()
    ):
        raise TypeError(f"a family's profile stages must map names to percentiles, got {stages!r}")
    return stages


def _op_pass(bundle: Path, options: ProfileOptions, commands: Any, top: int) -> dict[str, Any]:
    """The workload again, a few runs, on sessions with ONNX Runtime's profiler on."""
    from edgert.catalog import get_catalog
    from edgert.op_profile import top_operators
    from edgert.providers import recording_ops

    runs = min(options.runs or OPS_RUNS, OPS_RUNS)
    with tempfile.TemporaryDirectory(prefix="edgert-ops-") as tmp:
        with recording_ops(Path(tmp)) as sessions:
            model, _ = _timed_load(bundle, options)
        commands.profile(model, dataclasses.replace(options, runs=runs, warmup=1), None)
        graphs = top_operators(sessions, top, get_catalog())
    return {"top": top, "runs": runs, "warmup": 1, "graphs": graphs}


def _common(model: Any) -> dict[str, Any]:
    info = model.session_info
    host = this_host()
    return {
        "schema_version": SCHEMA_VERSION,
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
            "os_release": platform.platform(),
            "cpu": host.cpu_name,
            "cpu_flags": sorted(f for f in host.cpu_flags if f in ISA_FLAGS),
            "cores": _cores(),
            "memory_bytes": _memory_bytes(),
            "python": platform.python_version(),
        },
        "peak_rss_mb": _peak_rss_mb(),
        "bundle_bytes": _bundle_bytes(model.bundle),
        "versions": {
            "edgert": edgert.__version__,
            "onnxruntime": _ort_version(),
            "packages": _runtime_packages(),
        },
    }


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


@functools.cache
def _runtime_packages() -> dict[str, str]:
    """Installed ONNX Runtime builds and provider libraries (``onnxruntime-qnn``, ...)."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("onnxruntime"):
            found[name] = dist.version
    return dict(sorted(found.items()))


@functools.cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema of profile reports (shipped with the package)."""
    from importlib import resources

    return json.loads((resources.files("edgert") / SCHEMA_FILE).read_text(encoding="utf-8"))


def load_report(path: str | Path) -> dict[str, Any]:
    """A profile report written by ``edgert profile --output`` (or ``--json``), refused
    with a clear error when it is not one, or of a schema version this edgert does not
    read (its fields may mean something else)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the profile report {path}: {exc}",
                         hint="pass a file written by edgert profile --output") from exc  # fmt: skip
    version = data.get("schema_version") if isinstance(data, dict) else None
    again = "profile the bundle again with this edgert: edgert profile BUNDLE --output REPORT.json"
    if version is None:
        raise InputError(f"{path} is not a versioned edgert profile report (no schema_version; "
                         "reports before version 1 carry none)", hint=again)  # fmt: skip
    if version != SCHEMA_VERSION:
        raise InputError(
            f"{path} is a profile report of schema version {version!r}; edgert "
            f"{edgert.__version__} reads version {SCHEMA_VERSION}",
            hint=f"compare it with the edgert that wrote it, or {again}",
        )
    missing = [key for key in report_schema()["required"] if key not in data]
    if missing:
        raise InputError(f"{path} lacks {', '.join(missing)}, which version {SCHEMA_VERSION} "
                         "reports carry", hint=again)  # fmt: skip
    return data


def _bundle_bytes(bundle: Any) -> int:
    if "files" in bundle.manifest:
        return bundle.size_bytes()
    return sum(p.stat().st_size for p in Path(bundle.path).iterdir() if p.is_file())


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
