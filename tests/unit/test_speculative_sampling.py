"""Speculative sampling draws from the target's distribution, whatever the draft."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import Counter

import numpy as np
import pytest

from edgert.decoding import ModelInfo, constrain
from edgert.errors import InputError
from edgert.plugins.decoding import speculative
from edgert.plugins.decoding.lookup import LookupOptions, NgramLookup
from edgert.plugins.decoding.sampling import warp
from edgert.plugins.decoding.speculative import DraftProposer, SpeculativeOptions
from edgert.plugins.decoding.speculative_sampling import sample_speculatively
from edgert.speculation import AdaptiveK, SpeculationStats

SOURCE = [2, 0, 1]


class PairTableModel:
    """Logits from the last two tokens, so a cache that is rolled back wrong shows up as a
    wrong distribution. The start position holds the input's last token."""

    def __init__(self, seed: int, vocab: int, scale: float = 1.5):
        self.vocab_size = vocab
        self.info = ModelInfo()
        rng = np.random.default_rng(seed)
        self.table = (rng.standard_normal((vocab + 1, vocab, vocab)) * scale).astype(np.float32)
        self.tokens: list[int] = []

    def _row(self, i: int) -> np.ndarray:
        before = self.tokens[i - 1] if i else self.vocab_size
        return self.table[before, self.tokens[i]]

    def start(self, input_ids):
        self.tokens = [input_ids[-1]]
        return self._row(0)[None]

    def step(self, new_ids):
        first = len(self.tokens)
        self.tokens.extend(new_ids)
        return np.stack([self._row(i) for i in range(first, len(self.tokens))])

    def rollback(self, length):
        assert 1 <= length <= len(self.tokens)
        del self.tokens[length:]

    @property
    def length(self):
        return len(self.tokens)


def exact(target: PairTableModel, options, length: int) -> dict[tuple[int, ...], float]:
    """Probability of every output of ``length`` tokens under plain sampling."""
    probs = {}
    for prefix in itertools.product(range(target.vocab_size), repeat=length):
        prob, rows = 1.0, target.start(SOURCE)
        for i, token in enumerate(prefix):
            prob *= warp(constrain(rows[-1], prefix[:i], options), options)[token]
            rows = target.step([token])
        probs[prefix] = prob
    return probs


def pearson(counts: Counter, probs: dict, runs: int) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom over the outputs with p > 0; infinite
    when an output with p = 0 occurs."""
    if any(counts[out] for out, p in probs.items() if p == 0):
        return math.inf, 0
    cells = [(counts[out], p * runs) for out, p in probs.items() if p > 0]
    return sum((seen - want) ** 2 / want for seen, want in cells), len(cells) - 1


def critical(df: int) -> float:
    """Chi-square quantile at 1 - 1e-4 (Wilson-Hilferty): a false alarm once in 10,000 runs."""
    z = 3.719
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def speculative_outputs(target, draft, options, runs: int, guesses: bool = False) -> Counter:
    outputs = Counter()
    for seed in range(runs):
        guess = NgramLookup(LookupOptions()) if guesses else None  # input n-grams, tried first
        proposer = DraftProposer(draft, options, guess)
        k = AdaptiveK(options.draft_tokens, options.min_draft_tokens, options.max_draft_tokens)
        rng = np.random.default_rng(seed)
        stats = SpeculationStats()
        out = sample_speculatively(target, proposer, SOURCE, options, k, stats, rng)
        outputs[tuple(out)] += 1
    return outputs


CASES = [
    ({"max_new_tokens": 3}, 3, False),  # every output possible
    ({"max_new_tokens": 3}, 3, True),  # the draft tries the input's n-grams first
    ({"max_new_tokens": 3, "temperature": 0.7, "top_k": 2}, 3, True),  # some impossible
    ({"max_new_tokens": 2, "top_p": 0.8, "repetition_penalty": 1.3}, 4, False),
]


@pytest.mark.parametrize(("extra", "vocab", "guesses"), CASES)
def test_outputs_follow_the_targets_distribution(extra, vocab, guesses):
    target, draft = PairTableModel(0, vocab), PairTableModel(1, vocab)  # q differs from p
    options = SpeculativeOptions(draft="draft", sample=True, confidence=0.0, draft_tokens=2,
                                 max_draft_tokens=2, **extra)  # fmt: skip
    probs = exact(target, options, options.max_new_tokens)
    runs = 6000
    outputs = speculative_outputs(target, draft, options, runs, guesses)
    statistic, df = pearson(outputs, probs, runs)
    assert statistic < critical(df)
    # The test tells the draft's distribution apart from the target's: drafts kept
    # without the rejection rule would fail it.
    drafts_kept = Counter(
        {out: p * runs for out, p in exact(draft, options, options.max_new_tokens).items()}
    )
    assert pearson(drafts_kept, probs, runs)[0] > critical(df)


@pytest.mark.parametrize("guesses", [False, True])
def test_a_draft_equal_to_the_target_keeps_every_draft(guesses):
    """Also proves the draft's cache right: a draft that drew after a wrong history would
    not draw from the target's distribution, and drafts would be rejected."""
    model = PairTableModel(0, 3)
    options = SpeculativeOptions(draft="d", sample=True, confidence=0.0)
    guess = NgramLookup(LookupOptions()) if guesses else None  # the input's n-grams first
    proposer = DraftProposer(PairTableModel(0, 3), options, guess)
    stats, k = SpeculationStats(), AdaptiveK(4, 1, 8)
    out = list(
        sample_speculatively(model, proposer, SOURCE, options, k, stats, np.random.default_rng(0))
    )
    assert len(out) == options.max_new_tokens
    assert stats.accepted == stats.drafted > 0
    assert stats.target_calls < len(out)


def test_sampling_options_without_sample_are_refused():
    with pytest.raises(InputError, match="speculative sampling only") as info:
        SpeculativeOptions(draft="d", temperature=0.7)
    assert "sample=true" in info.value.hint
    assert SpeculativeOptions(draft="d", sample=True, temperature=0.7, seed=3).top_p == 1.0


class Loaded:
    """A loaded bundle's two members the speculative decoder uses: the core and its lock."""

    def __init__(self, core):
        self.core = core

    def exclusive(self):
        return contextlib.nullcontext()


def test_the_decoder_dispatches_on_sample(monkeypatch):
    target, draft = PairTableModel(0, 3), PairTableModel(1, 3)
    monkeypatch.setattr(speculative, "load_draft", lambda path, *settings: Loaded(draft))
    decoder = speculative.SpeculativeDecoder()
    options = SpeculativeOptions(draft="d", sample=True, seed=5, max_new_tokens=6)
    first = list(decoder.decode(target, SOURCE, options))
    assert first == list(decoder.decode(target, SOURCE, options))  # seeded
    assert decoder.stats["target_calls"] >= 1 and "drafted" in decoder.stats


class CountingDraft(PairTableModel):
    """Counts the draft's calls."""

    calls = 0

    def start(self, input_ids):
        self.calls += 1
        return super().start(input_ids)

    def step(self, new_ids):
        self.calls += 1
        return super().step(new_ids)


@pytest.mark.parametrize("sample", [False, True])
def test_a_draft_that_is_never_sure_stops_costing_a_call_per_token(sample, monkeypatch):
    """Below ``confidence`` the draft drafts nothing, but its call is spent: counted as a
    miss, so drafting pauses (within the generation and, once cold, across them)."""
    target, draft = PairTableModel(0, 3), CountingDraft(1, 3, scale=0.05)  # flat: never sure
    monkeypatch.setattr(speculative, "load_draft", lambda path, *settings: Loaded(draft))
    decoder = speculative.SpeculativeDecoder()
    extra = {"sample": True, "seed": 1} if sample else {}
    options = SpeculativeOptions(draft="d", max_new_tokens=40, **extra)
    out = list(decoder.decode(target, SOURCE, options))
    assert len(out) == 40 and decoder.stats["drafted"] == 0
    assert draft.calls <= 6  # one per pause (4, 16, 64 calls), not one per token
    for _ in range(3):  # the history goes cold: later generations start paused
        list(decoder.decode(target, SOURCE, options))
    before = draft.calls
    list(decoder.decode(target, SOURCE, options))
    assert draft.calls == before
