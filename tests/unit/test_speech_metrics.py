"""Word error rate: edits over reference words, case and punctuation ignored."""

from __future__ import annotations

import pytest

from edgert.plugins.families.speech.metrics import edit_distance, word_error_rate, words


def test_words_ignore_case_and_punctuation():
    assert words("Turn ON the light, please.") == ["turn", "on", "the", "light", "please"]


def test_edit_distance_counts_substitutions_insertions_and_deletions():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert edit_distance([], ["a", "b"]) == 2


def test_word_error_rate_pools_all_pairs():
    refs = ["turn on the light", "stop"]
    hyps = ["turn off the light", "stop now"]
    assert word_error_rate(hyps, refs) == pytest.approx(2 / 5)
    assert word_error_rate(refs, refs) == 0.0
    with pytest.raises(ValueError, match="2 references"):
        word_error_rate(["a"], refs)
