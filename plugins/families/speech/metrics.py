"""Word error rate, the figure a transcript is judged by: word-level edit distance
(substitutions, insertions, deletions) over the reference's words, after lowercasing and
dropping punctuation, so "Turn on the light." and "turn on the light" agree."""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """The normalized words of ``text``."""
    return _WORD.findall(text.lower())


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two word lists."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Total word edits over total reference words, across all pairs."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    edits = sum(
        edit_distance(words(r), words(h)) for h, r in zip(hypotheses, references, strict=True)
    )
    total = sum(len(words(r)) for r in references)
    return edits / total if total else 0.0
