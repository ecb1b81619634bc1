"""The typo model and the held-out split of the real-English speller corpus (tools/)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import speller_corpus as corpus


@pytest.mark.parametrize("kind", corpus.KINDS)
def test_each_kind_changes_one_word_and_keeps_its_case(kind):
    rng = random.Random(1)
    written, got = corpus.misspell("Receive", rng, kind)
    assert got == kind
    assert written != "Receive"
    assert written[0] == "R" or kind == "neighbour"
    assert written[1:].islower()
    assert abs(len(written) - len("Receive")) <= 2


def test_kinds_are_the_errors_they_name():
    rng = random.Random(0)
    assert len(corpus.misspell("library", rng, "omission")[0]) == 6
    assert len(corpus.misspell("library", rng, "doubling")[0]) == 8
    swapped = corpus.misspell("library", rng, "transposition")[0]
    assert sorted(swapped) == sorted("library") and swapped != "library"
    near = corpus.misspell("cat", rng, "neighbour")[0]
    assert sum(a != b for a, b in zip(near, "cat", strict=True)) == 1
    changed = next(c for c, ch in zip(near, "cat", strict=True) if c != ch)
    assert changed in corpus.NEIGHBOURS[dict(zip(near, "cat", strict=True))[changed]]
    phonetic = {
        corpus.misspell("possible", random.Random(seed), "phonetic")[0] for seed in range(30)
    }
    assert {"possable", "posible"} <= phonetic  # -ible/-able, a double consonant undoubled


def test_corrupt_keeps_punctuation_spacing_and_other_words():
    sentence = "However, the Interpreter reads it twice; nothing else changes."
    for seed in range(20):
        noisy, typos = corpus.corrupt(sentence, random.Random(seed), typos=2)
        assert len(typos) >= 1
        assert [ch for ch in noisy if not ch.isalpha()] == [
            ch for ch in sentence if not ch.isalpha()
        ]
        original, damaged = corpus.WORD.findall(sentence), corpus.WORD.findall(noisy)
        assert len(original) == len(damaged)
        changed = {i for i, (a, b) in enumerate(zip(original, damaged, strict=True)) if a != b}
        assert changed == {t.index for t in typos}
        assert all(original[t.index] == t.meant and damaged[t.index] == t.written for t in typos)


def test_the_held_out_split_is_stable_and_disjoint():
    train, held = corpus.split()
    assert len(held) > 50 and len(train) > 10 * len(held)
    assert not set(train) & set(held)
    assert all(corpus.held_out(s) for s in held[:20])
    assert all(s[0].isupper() and s[-1] in ".!?" for s in held)
