"""Ask questions about a document on the device, with a decoder-decoder bundle (public API).

    python apps/ask.py BUNDLE document.txt "Who wrote it?" "When?"   # questions as arguments
    python apps/ask.py BUNDLE document.txt                           # one question per line

The document is encoded once into memory embeddings; every further question about it is
answered from the cached memory, so only its first answer pays for reading the document.
"""

from __future__ import annotations

import sys
from pathlib import Path

import edgert


def answer(model, document: str, question: str) -> dict:
    """Stream one answer to stdout; return its statistics."""
    stats: dict = {}
    print(f"Q: {question}\nA: ", end="", flush=True)
    for piece in model.stream(question, context=document, stats=stats, context_policy="chunk"):
        print(piece, end="", flush=True)
    return stats


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    model = edgert.load(argv[0])
    document = Path(argv[1]).read_text(encoding="utf-8")
    questions = argv[2:] or (line.strip() for line in sys.stdin if line.strip())
    for question in questions:
        stats = answer(model, document, question)
        source = "cached memory" if stats["memory_cache_hit"] else "read the document"
        first = stats["memory_ms"] + stats.get("first_token_ms", 0.0)
        print(f"\n   [{source}: {stats['context_tokens']} tokens; first token {first:.0f} ms; "
              f"{stats.get('tokens_per_s') or 0:.0f} tokens/s on {model.provider}]")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
