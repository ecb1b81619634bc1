"""Input-guided proposers on their own: where ``InputAligner`` and ``NgramLookup`` draft
from, how they re-align after a mismatch, and corrections of one token or several."""

from __future__ import annotations

import itertools

from edgert.plugins.decoding.aggressive import InputAligner
from edgert.plugins.decoding.lookup import LookupOptions, NgramLookup


def test_lookup_reuses_repeated_ngrams():
    lookup = NgramLookup(LookupOptions())
    lookup.reset([1, 2, 3, 4])
    assert lookup.propose([7, 1, 2], 3) == [3, 4, 7]
    assert lookup.propose([], 3) == [1, 2, 3]  # before any output: the input's start


def test_aligner_realigns_after_a_mismatch():
    aligner = InputAligner(ngram=2)
    aligner.reset([5, 6, 7, 8, 9, 10])
    assert aligner.propose([], 3) == [5, 6, 7]
    aligner.accepted([5, 6, 7, 8], 3, 3)  # all three drafts, then the target's own 8
    assert aligner.propose([5, 6, 7, 8], 2) == [9, 10]
    aligner.accepted([5, 6, 7, 8, 42], 2, 0)  # the output diverged: nothing matches 42
    assert aligner.propose([5, 6, 7, 8, 42], 2) == [9, 10]
    aligner.accepted([5, 6, 7, 8, 42, 9], 2, 0)  # ... and met the input again at 9
    assert aligner.propose([5, 6, 7, 8, 42, 9], 1) == [10]


def test_aligner_resumes_at_the_next_word_after_a_corrected_word():
    # "_ne v rou s _rabbit </s>" corrected to "_nervous _rabbit </s>": ids 20-23 are the
    # pieces of the misspelt word, 30 is "_nervous", 24 "_rabbit"; word starts are known.
    aligner = InputAligner(ngram=2, boundaries=frozenset({10, 20, 24, 30, 1}))
    aligner.reset([10, 20, 21, 22, 23, 24, 1])
    assert aligner.propose([], 8) == [10, 20, 21, 22, 23, 24, 1]
    aligner.accepted([10, 30], 7, 1)
    assert aligner.propose([10, 30], 8) == [24, 1]
    aligner.accepted([10, 30, 31], 2, 0)  # a word piece (not a word start) keeps the place
    assert aligner.propose([10, 30, 31], 8) == [24, 1]


def test_aligner_drafts_corrected_words_and_copies_the_rest():
    from helpers.vocab import VOCAB

    from edgert.plugins.decoding.lexicon import Lexicon

    boundaries = frozenset({1, 3, 4, 5, 6, 10, 12, 13, 14, 16, 17, 18})
    aligner = InputAligner(ngram=2, boundaries=boundaries, lexicon=Lexicon(VOCAB))
    aligner.reset([3, 6, 7, 8, 9, 5, 14, 15, 16, 1])  # the ne v rou s rabbit hs i . </s>
    assert aligner.propose([], 10) == [3, 4, 5, 12, 16, 1]
    aligner.accepted([3, 4, 5, 13], 6, 3)  # the target wrote "her", not "his"
    assert aligner.propose([3, 4, 5, 13], 10) == [16, 1]  # resumes after the word


def test_aligner_drafts_corrections_of_several_tokens_across_calls():
    from helpers.vocab import VOCAB, speller

    from edgert.plugins.decoding.lexicon import Lexicon

    boundaries = frozenset({1, 3, 4, 5, 6, 10, 12, 13, 14, 16, 17, 18})
    lexicon = Lexicon(VOCAB, ["the", "follow", "rabbit"], speller(VOCAB))
    source = [3, 10, 7, 11, 5, 1]  # the foll v ow rabbit </s>: "follvow" is "foll ow"
    aligner = InputAligner(ngram=2, boundaries=boundaries, lexicon=lexicon)
    aligner.reset(source)
    assert aligner.propose([], 8) == [3, 10, 11, 5, 1]
    assert aligner.propose([], 2) == [3, 10]  # K ends inside the correction
    aligner.accepted([3, 10, 11], 2, 2)  # the target's own token finishes it
    assert aligner.propose([3, 10, 11], 8) == [5, 1]
    aligner.reset(source)
    assert aligner.propose([], 1) == [3]
    aligner.accepted([3, 10], 1, 1)  # the target's own token starts it
    assert aligner.propose([3, 10], 8) == [11, 5, 1]
    aligner.accepted([3, 10, 9], 3, 0)  # ... and spells it otherwise ("folls")
    assert aligner.propose([3, 10, 9], 8) == [5, 1]  # the copy resumes after the word


def test_aligner_copies_a_corrected_input_in_the_fewest_calls():
    """Seeded random inputs with corrections of one to three tokens: when the output is the
    corrected input, every call takes all K drafts plus the target's own token, wherever K
    cuts a correction."""
    import math
    import random

    from edgert.plugins.decoding.lexicon import corrected

    rng = random.Random(5)
    for _ in range(300):
        source, fixes, boundaries = [], {}, set()
        fresh = itertools.count(1000)  # ids of the input's words and of corrections: all distinct
        for _ in range(rng.randint(1, 10)):
            start = len(source)
            word = [next(fresh) for _ in range(rng.randint(1, 4))]
            boundaries.add(word[0])
            source += word
            if rng.random() < 0.4:
                fixes[start] = (tuple(next(fresh) for _ in range(rng.randint(1, 3))), len(source))
        out = [*corrected(source, fixes), 1]  # then a stop id that is not in the input
        for k in (1, 2, 3, 5, 8):
            aligner = InputAligner(ngram=2, boundaries=frozenset(boundaries))
            aligner.reset(source)
            aligner.fixes = fixes
            generated, calls = [], 0
            while len(generated) < len(out):
                draft = aligner.propose(generated, k)
                assert len(draft) <= k
                matched = 0
                for token, expected in zip(draft, out[len(generated) :], strict=False):
                    if token != expected:
                        break
                    matched += 1
                generated += out[len(generated) : len(generated) + matched + 1]  # + its own
                calls += 1
                aligner.accepted(generated, len(draft), matched)
            assert calls == math.ceil(len(out) / (k + 1)), (source, fixes, k)
