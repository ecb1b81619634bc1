"""A long run of one loaded model, sampling its process's RSS: does memory stay flat?

Run in a process of its own (``python tests/helpers/long_run.py BUNDLE``) so the RSS is the
runtime's alone, not that of torch or the test session. Torch-free. Prints one JSON object:
the RSS after warm-up and at each sample, the largest drift from warm-up, and what the
caches hold at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

WORDS = ["the", "context", "encoder", "reads", "a", "long", "document", "once", "memory", "embeddings", "replace", "placeholder", "tokens", "in", "the", "prompt", "a", "small", "model", "answers", "questions", "about", "the", "text", "on", "the", "phone", "who", "wrote", "the", "report", "and", "when", "was", "it", "published"]  # fmt: skip
QUESTIONS = ["who wrote the report", "when was it published", "what does the cache keep"]
DECODERS = ["greedy", "beam", "lookup", "aggressive", "sampling"]


def texts(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct word salads of 10-40 words (contexts, or inputs)."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        out[" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40)))] = None
    return list(out)


def long_run(
    bundle: str, *, generations: int = 1000, distinct: int = 100, samples: int = 10,
    cache_bytes: int | None = None, max_new_tokens: int = 16,
) -> dict[str, Any]:  # fmt: skip
    """``generations`` calls over ``distinct`` inputs (contexts for a decoder-decoder, with
    its questions; else inputs under each decoder in turn, every fifth one streamed). The
    first ``generations // samples`` calls, which see every input once, are the warm-up."""
    import psutil

    import edgert

    process = psutil.Process()
    model = edgert.load(bundle)
    decoder_decoder = model.bundle.manifest["family"] == "dolphin"
    cache = model.memory_cache if decoder_decoder else None
    if cache is not None and cache_bytes is not None:
        cache.max_bytes = cache_bytes
    inputs = texts(distinct)
    step = next(s for s in (7, 11, 13, 1) if distinct % s)  # visits every input once per cycle
    every = max(1, generations // samples)
    rss: list[float] = []
    started = time.perf_counter()
    for i in range(generations):
        text = inputs[(i * step) % distinct]
        if cache is not None:
            model.generate(QUESTIONS[i % 3], context=text, max_new_tokens=max_new_tokens)
        elif i % 5 == 4:
            "".join(model.stream(text, max_new_tokens=max_new_tokens))
        else:
            options = {"seed": i} if DECODERS[i % 5] == "sampling" else {}
            model.generate(text, decoder=DECODERS[i % 5], max_new_tokens=max_new_tokens,
                           **options)  # fmt: skip
        if (i + 1) % every == 0:
            rss.append(process.memory_info().rss / 2**20)
    warm = rss[0]
    report = {
        "bundle": bundle,
        "family": model.bundle.manifest["family"],
        "generations": generations,
        "distinct_inputs": distinct,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_warm_mib": round(warm, 1),
        "rss_mib": [round(r, 1) for r in rss],
        "max_drift": round(max(abs(r - warm) for r in rss) / warm, 4),
    }
    if cache is not None:
        report["cache"] = {"entries": len(cache), "bytes": cache.bytes,
                           "max_bytes": cache.max_bytes, "hits": cache.hits,
                           "misses": cache.misses}  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--generations", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=100)
    parser.add_argument("--cache-bytes", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(long_run(args.bundle, generations=args.generations,
                              distinct=args.distinct, cache_bytes=args.cache_bytes)))  # fmt: skip


if __name__ == "__main__":
    main()
