"""The verify-and-rollback core and its proposers on pure-numpy step models."""

from __future__ import annotations

import numpy as np
import pytest
from test_decoding import CountingModel

from edgert.decoding import StepModel
from edgert.errors import InputError
from edgert.plugins.decoding.aggressive import AggressiveDecoder, AggressiveOptions, InputAligner
from edgert.plugins.decoding.greedy import GreedyDecoder, GreedyOptions
from edgert.plugins.decoding.lookup import LookupDecoder, LookupOptions, NgramLookup


class TableModel(CountingModel):
    """Next token from a random table of (last token) -> logits: greedy is a fixed walk."""

    def __init__(self, seed: int, vocab: int = 13):
        super().__init__()
        self.vocab_size = vocab
        self.table = np.random.default_rng(seed).standard_normal((vocab, vocab)).astype(np.float32)
        self.calls = 0

    def _logits(self, ids):
        return self.table[np.asarray(ids)]


def greedy(model, ids, **options):
    return list(GreedyDecoder().decode(model, ids, GreedyOptions(**options)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_lossless_on_random_tables(seed, decoder):
    options = {"max_new_tokens": 30, "stop_ids": (0,), "repetition_penalty": 1.1}
    reference = greedy(TableModel(seed), [3, 5, 7, 2, 9, 4], **options)
    strategy = decoder()
    got = list(strategy.decode(TableModel(seed), [3, 5, 7, 2, 9, 4], strategy.Options(**options)))
    assert got == reference


def test_aggressive_accepts_everything_when_the_output_copies_the_input():
    class Counting(CountingModel):
        vocab_size = 50

    source = [*range(10, 30), 9]  # greedy continues 9 with 10, 11, ...: a copy of the input
    reference = greedy(Counting(), source, max_new_tokens=20)
    strategy = AggressiveDecoder()
    got = list(strategy.decode(Counting(), source, AggressiveOptions(max_new_tokens=20)))
    assert got == reference == list(range(10, 30))
    assert strategy.stats["acceptance_rate"] == 1.0
    assert strategy.stats["target_calls"] <= 5


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


def test_options_are_validated():
    with pytest.raises(InputError, match="min_draft_tokens <= draft_tokens"):
        AggressiveOptions(draft_tokens=1, min_draft_tokens=3)


def test_static_models_are_refused_with_a_hint():
    class Static(CountingModel):
        multi_token_step = False

    with pytest.raises(InputError) as info:
        list(AggressiveDecoder().decode(Static(), [3], AggressiveOptions()))
    assert "one token per call" in str(info.value)
    assert "--decoder greedy" in info.value.hint
    assert isinstance(Static(), StepModel)
