"""Whole-word corrections that input-guided drafts use for misspelt input words."""

from __future__ import annotations

import pytest

from edgert.lexicon import Lexicon, _one_edit, _slip, corrected, corrections

VOCAB = {"<pad>": 0, "</s>": 1, "Ġthe": 3, "Ġnervous": 4, "Ġrabbit": 5, "Ġne": 6, "v": 7,
         "rou": 8, "s": 9, "Ġfoll": 10, "ow": 11, "Ġhis": 12, "Ġher": 13, "Ġhs": 14, "i": 15,
         ".": 16, "Ġtheir": 17, "Ġth": 18, "ier": 19, "▁cat": 20, "Ġwee": 21, "Ġwe": 22, "a": 23,
         "Ġweak": 24, "Ġt": 25, "e": 26, "Ġbe": 27, "ee": 28, "Ġkeep": 29, "Ġbeef": 30,
         "Ġbeer": 31}  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "near"),
    [("nevrous", "nervous", True), ("nervus", "nervous", True), ("nervvous", "nervous", True),
     ("nermous", "nervous", True), ("nevrus", "nervous", False), ("abcd", "dcba", False)],
)  # fmt: skip
def test_one_edit_is_a_drop_insertion_substitution_or_adjacent_swap(a, b, near):
    assert _one_edit(a, b) is near
    assert _one_edit(b, a) is near


def test_misspelt_words_get_the_nearest_whole_word():
    lexicon = Lexicon(VOCAB)
    assert lexicon.correction([6, 7, 8, 9]) == 4  # "ne v rou s" -> "nervous"
    assert lexicon.correction([18, 19]) == 17  # "th ier" -> "their"
    assert lexicon.correction([3]) is None  # already a word
    assert lexicon.correction([10, 11]) is None  # "follow": nothing one edit away
    assert lexicon.correction([16]) is None  # punctuation
    assert lexicon.correction([14, 15]) == 12  # "hsi": "his" (swap), not "her"
    assert "cat" in lexicon.words  # SentencePiece's space mark counts too


def test_typing_slips_rank_before_other_edits_then_frequency():
    lexicon = Lexicon(VOCAB)
    assert lexicon.correction([22, 23]) == 24  # "wea": "weak" (forgotten k), not "wee"
    assert lexicon.correction([27, 28]) == 31  # "beee": "beer" (e is next to r), not "beef"
    assert lexicon.correction([25, 26]) == 3  # a two-letter typo: "te" forgot the h of "the"


@pytest.mark.parametrize(
    ("typo", "word", "slip"),
    [("wea", "weak", 0), ("wea", "wee", 1), ("hsi", "his", 0), ("nervvous", "nervous", 0),
     ("nerbous", "nervous", 0), ("nerxous", "nervous", 1), ("nervzous", "nervous", 1),
     ("nervfous", "nervous", 0), ("kxep", "keep", 1), ("bwer", "beer", 0), ("Xat", "Cat", 0)],
)  # fmt: skip
def test_slips_are_forgotten_swapped_doubled_or_neighbouring_keys(typo, word, slip):
    assert _slip(typo, word) == slip


def test_corrections_replace_whole_input_words():
    boundaries = frozenset({1, 3, 4, 5, 6, 10, 12, 13, 14, 16, 17, 18})
    source = [3, 6, 7, 8, 9, 5, 14, 15, 16, 1]  # the ne v rou s rabbit hs i . </s>
    fixes = corrections(source, boundaries, Lexicon(VOCAB))
    assert fixes == {1: (4, 5), 6: (12, 8)}
    assert corrected(source, fixes) == [3, 4, 5, 12, 16, 1]
