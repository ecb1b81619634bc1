"""Whole-word corrections that input-guided drafts use for misspelt input words."""

from __future__ import annotations

import pytest
from helpers.vocab import VOCAB, speller

from edgert.plugins.decoding.lexicon import Lexicon, _one_edit, _slip, corrected, corrections


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
    assert lexicon.correction([6, 7, 8, 9]) == (4,)  # "ne v rou s" -> "nervous"
    assert lexicon.correction([18, 19]) == (17,)  # "th ier" -> "their"
    assert lexicon.correction([3]) is None  # already a word
    assert lexicon.correction([10, 11]) is None  # "follow": nothing one edit away
    assert lexicon.correction([16]) is None  # punctuation
    assert lexicon.correction([14, 15]) == (12,)  # "hsi": "his" (swap), not "her"
    assert "cat" in lexicon.words  # SentencePiece's space mark counts too


def test_typing_slips_rank_before_other_edits_then_frequency():
    lexicon = Lexicon(VOCAB)
    assert lexicon.correction([22, 23]) == (24,)  # "wea": "weak" (forgotten k), not "wee"
    assert lexicon.correction([27, 28]) == (31,)  # "beee": "beer" (e is next to r), not "beef"
    assert lexicon.correction([25, 26]) == (3,)  # two letters: "te" forgot the h of "the"


def test_a_dictionary_decides_what_is_a_word_and_corrects_to_several_tokens():
    # Without a dictionary "follow" (foll + ow) is no word and the fragment "th" is one.
    words = ["the", "follow", "nervous", "his", "nope!"]
    lexicon = Lexicon(VOCAB, words, speller(VOCAB))
    assert lexicon.words == {"the": (3,), "follow": (10, 11), "nervous": (4,), "his": (12,)}
    assert lexicon.correction([10, 11]) is None  # a dictionary word the tokenizer splits
    assert lexicon.correction([10, 7, 11]) == (10, 11)  # "follvow": "follow", two tokens
    assert lexicon.correction([10, 11, 11]) is None  # "followow": no word one edit away
    assert lexicon.correction([18]) == (3,)  # "th": a token, not a word: "the"
    assert Lexicon(VOCAB).correction([18]) is None


def test_with_a_dictionary_fewer_tokens_then_its_order_rank_equal_slips():
    vocab = {**VOCAB, "Ġh": 40}
    hes = [40, 26, 9]  # "hes": "his" and "her" are both a substitution away, neither a slip
    for words, best in ((["his", "her"], (12,)), (["her", "his"], (13,))):
        assert Lexicon(vocab, words, speller(vocab)).correction(hes) == best
    assert Lexicon(vocab).correction(hes) == (12,)  # no dictionary: the lowest id
    tha = [18, 23]  # "tha": "tea" (three tokens, listed first) and "the", neither a slip
    lexicon = Lexicon(vocab, ["tea", "the"], speller(vocab))
    assert lexicon.words["tea"] == (25, 26, 23)
    assert lexicon.correction(tha) == (3,)


def test_a_dictionary_needs_a_speller():
    with pytest.raises(ValueError, match="spell"):
        Lexicon(VOCAB, ["the"])


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
    assert fixes == {1: ((4,), 5), 6: ((12,), 8)}
    assert corrected(source, fixes) == [3, 4, 5, 12, 16, 1]


def test_a_tokenizer_that_adds_no_space_is_given_one():
    plain = speller(VOCAB)

    def spell(words):  # "follow" alone is no word start; " follow" is
        return [plain([w[1:]])[0] if w.startswith(" ") else [7] for w in words]

    assert Lexicon(VOCAB, ["follow", "the"], spell).words == {"follow": (10, 11), "the": (3,)}


def test_from_tokenizer_spells_dictionary_words_as_they_follow_a_space():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=120,
        special_tokens=["<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(["the cat follows the dog"] * 20, trainer)
    tokenizer.enable_padding(pad_id=0, pad_token="<pad>")  # a padded batch: pads are dropped
    lexicon = Lexicon.from_tokenizer(tokenizer, ["follows", "cat", "zebra"])
    for word in ("follows", "cat", "zebra"):
        assert lexicon.words[word] == tuple(tokenizer.encode(" " + word).ids)


def test_capitalised_words_are_known_by_their_lower_case_and_corrected_capitalised():
    vocab = {**VOCAB, "ĠT": 41, "he": 42, "h": 43}
    lexicon = Lexicon(vocab, ["the", "his"], speller(vocab))
    assert lexicon.correction([41, 42]) is None  # "The": a sentence start, not a typo
    assert lexicon.correction([41, 26, 43]) == (41, 42)  # "Teh": "The", spelt as the tokenizer does
    assert lexicon.correction([25, 26, 43]) == (3,)  # "teh": "the"


def test_a_dictionary_the_tokenizer_cannot_spell_leaves_the_vocabulary_words():
    lexicon = Lexicon(VOCAB, ["the\t12", "rabbit 3"], speller(VOCAB))  # not one word a line
    assert lexicon.words == Lexicon(VOCAB).words
    assert lexicon.correction([6, 7, 8, 9]) == (4,)


def test_input_without_word_starts_has_no_corrections():
    assert corrections([7, 8, 9], frozenset({3, 4}), Lexicon(VOCAB)) == {}
