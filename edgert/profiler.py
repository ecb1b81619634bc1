"""``edgert profile``: load time, latency percentiles, throughput, memory and placement.

One report schema for every family and provider. Timings taken on a simulator (the QNN HTP
backend on x86-64) are labelled ``simulated``: they prove the graph runs, not how fast.
"""

from __future__ import annotations

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
from edgert.speculation import STAT_KEYS


@dataclass(frozen=True)
class ProfileOptions:
    """Options of one profiling run."""

    runs: int = 100  # timed runs after warm-up (generations for text models)
    warmup: int = 10
    batch: int = 1  # images per run (cnn); ignored by fixed-batch graphs
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

    Args:
        bundle: bundle directory.
        options: runs, warm-up, batch, device override.
        tick: called after each timed run (progress bars).
    """
    bundle = Path(bundle)
    model, first_ms = _timed_load(bundle, options)
    del model
    model, warm_ms = _timed_load(bundle, options)
    if model.bundle.family != "cnn":
        report = _profile_generation(model, options, tick)
        report["load_ms"] = {"first": first_ms, "warm": warm_ms}
        return report
    x = model.example_input(options.batch)
    for _ in range(options.warmup):
        model.logits(x)
    samples = []
    for _ in range(options.runs):
        started = time.perf_counter()
        model.logits(x)
        samples.append((time.perf_counter() - started) * 1000)
        if tick:
            tick()
    stats = percentiles(samples)
    report = _common(model)
    report.update(
        threads=options.threads if options.threads is not None else model.profile.runtime.threads,
        batch=int(x.shape[0]),
        runs=options.runs,
        warmup=options.warmup,
        load_ms={"first": first_ms, "warm": warm_ms},
        latency_ms=stats,
        throughput_per_s=float(x.shape[0] * 1000 / stats["mean"]),
    )
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


def _profile_generation(
    model: Any, options: ProfileOptions, tick: Callable[[], None] | None
) -> dict:
    """Time to first token and per-token latency over ``runs`` generations."""
    if options.text:
        kwargs: dict[str, Any] = {"text": options.text}
    else:
        rng = np.random.default_rng(0)
        vocab = model.core.vocab_size
        ids = [int(t) for t in rng.integers(min(4, vocab - 1), vocab, options.input_tokens - 1)]
        kwargs = {"input_ids": [*ids, *model.defaults["eos_token_ids"][:1]]}
    kwargs.update(dict(options.decoder_options), decoder=options.decoder,
                  max_new_tokens=options.new_tokens, min_new_tokens=options.new_tokens)  # fmt: skip
    cache = getattr(model, "memory_cache", None)
    if cache is not None:  # decoder-decoder: a question about a seeded random context
        kwargs.update(_context_prompt(model, kwargs, options))
    for _ in range(options.warmup):
        model.generate(**kwargs)
    first, steps, rates, decoder_stats, memory = [], [], [], [], []
    for _ in range(options.runs):
        if cache is not None:
            cache.clear()  # time the context encoder on every run, as for a new document
        result = model.generate(**kwargs)
        if "memory_ms" in result.stats:
            memory.append(result.stats["memory_ms"])
        first.append(result.stats["first_token_ms"] + result.stats.get("memory_ms", 0.0))
        steps.extend(result.stats["per_token_ms"])
        rates.append(result.stats["tokens_per_s"])
        decoder_stats.append({k: v for k, v in result.stats.items() if k in STAT_KEYS})
        if tick:
            tick()
    report = _common(model)
    report.update(
        runs=options.runs, warmup=options.warmup, decoder=options.decoder,
        decoder_options=dict(options.decoder_options),
        threads=options.threads if options.threads is not None else model.profile.runtime.threads,
        new_tokens=options.new_tokens,
        encoder_placement=model.encoder_info.placement,
        first_token_ms=percentiles(first),
        per_token_ms=percentiles(steps) if steps else None,
        tokens_per_s=float(np.median(rates)),
        decoder_stats=_mean(decoder_stats),
    )  # fmt: skip
    if memory:
        report.update(context_tokens=min(options.context_tokens, model.context_window),
                      memory_ms=percentiles(memory))  # fmt: skip
    return report


def _context_prompt(model: Any, kwargs: dict[str, Any], options: ProfileOptions) -> dict[str, Any]:
    """A seeded context of ``context_tokens`` tokens (at most the encoder's window) and the
    question as a prompt with the memory marker; first-token times include encoding it."""
    from edgert.plugins.families.dolphin.core import MEMORY

    rng = np.random.default_rng(1)
    tokenizer = model.context_tokenizer
    memory_ids = set(model.settings["memory_ids"])
    target = min(options.context_tokens, model.context_window)
    ids = [int(t) for t in rng.integers(0, tokenizer.get_vocab_size(), 2 * target)]
    ids = [t for t in ids if t not in memory_ids][:target]
    for _ in range(4):  # decoding and re-encoding may merge or split tokens: trim to fit
        context = tokenizer.decode(ids, skip_special_tokens=True)
        ids = tokenizer.encode(context).ids
        if len(ids) <= target:
            break
        ids = ids[:target]
    question = kwargs.pop("input_ids", None) or model.encode_text(kwargs.pop("text"))
    if MEMORY not in question:
        question = [MEMORY, *question[: model.defaults["max_input_length"] - 1]]
    return {"input_ids": question, "context": context}


def _mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = {k for row in rows for k in row}
    return {k: float(np.mean([row[k] for row in rows if k in row])) for k in sorted(keys)}


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
