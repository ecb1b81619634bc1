"""Correct typos on the device, streaming, with the embedded T5 speller (public API only).

    python apps/speller.py demo-out/speller-auto                 # the shipped samples
    python apps/speller.py BUNDLE "teh cat sat in teh garden" ...    # your sentences
    echo "helo wrold" | python apps/speller.py BUNDLE -           # standard input

Each sentence is corrected twice: with greedy decoding and with input-guided aggressive
decoding, which drafts the copy of the input and verifies it; both give the same text,
and the second needs far fewer decoder calls.
"""

from __future__ import annotations

import sys
import time
from importlib import resources

import edgert


def samples() -> list[str]:
    """The held-out noisy sentences shipped with the model."""
    path = resources.files("edgert.exporters.zoo") / "speller" / "samples.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def correct(model, text: str, decoder: str) -> tuple[str, dict]:
    """Stream the correction to stdout; return it with the run's statistics."""
    stats: dict = {}
    started = time.perf_counter()
    pieces = []
    for piece in model.stream(text, decoder=decoder, stats=stats):
        pieces.append(piece)
        print(piece, end="", flush=True)
    stats["total_ms"] = (time.perf_counter() - started) * 1000
    return "".join(pieces), stats


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    model = edgert.load(argv[0])
    sentences = argv[1:] or samples()
    if sentences == ["-"]:
        sentences = [line.strip() for line in sys.stdin if line.strip()]
    info = model.session_info
    print(f"{model.bundle.path}: device {model.profile.id}, provider {info.active}, "
          f"precision {model.bundle.manifest['precision']}")  # fmt: skip
    totals = {"greedy": [0.0, 0], "aggressive": [0.0, 0]}
    for decoder in totals:  # the first request of each decoder also sets things up (once)
        model.generate(sentences[0], decoder=decoder)
    for text in sentences:
        print(f"\n  input:      {text}")
        outputs = {}
        for decoder in ("greedy", "aggressive"):
            print(f"  {decoder:<11} ", end="")
            outputs[decoder], stats = correct(model, text, decoder)
            calls = stats.get("target_calls", stats.get("new_tokens", 0))
            print(f"   [{stats.get('first_token_ms', 0):.1f} ms first, {stats['total_ms']:.1f} ms, "
                  f"{calls} decoder call{'s' if calls != 1 else ''}]")  # fmt: skip
            totals[decoder][0] += stats["total_ms"]
            totals[decoder][1] += stats.get("new_tokens", 0)
        if outputs["greedy"] != outputs["aggressive"]:
            print("  (outputs differ: please report this)")
    print()
    for decoder, (ms, tokens) in totals.items():
        print(f"{decoder:<11} {tokens / ms * 1000:7.1f} tokens/s over {len(sentences)} sentences "
              "(after one warm-up)")  # fmt: skip
    for note in info.fallback:
        print(f"fallback: {note}")


if __name__ == "__main__":
    main(sys.argv[1:])
