"""The verify-and-rollback core and its proposers on pure-numpy step models."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal

import numpy as np
import pytest
from helpers.step_models import CountingModel

from edgert.decoding import ModelInfo, StepModel
from edgert.errors import InputError
from edgert.plugins.decoding.aggressive import AggressiveDecoder, AggressiveOptions
from edgert.plugins.decoding.greedy import GreedyDecoder, GreedyOptions
from edgert.plugins.decoding.lookup import LookupDecoder, LookupOptions, NgramLookup
from edgert.plugins.decoding.speculative import (
    DraftProposer,
    SpeculativeDecoder,
    SpeculativeOptions,
)
from edgert.speculation import FIRST_PAUSE, AdaptiveK, VerifyTolerance


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


def test_options_are_validated():
    with pytest.raises(InputError, match="min_draft_tokens <= draft_tokens"):
        AggressiveOptions(draft_tokens=1, min_draft_tokens=3)


def test_static_models_are_refused_with_a_hint():
    class Static(CountingModel):
        info = ModelInfo(multi_token_step=False)

    with pytest.raises(InputError) as info:
        list(AggressiveDecoder().decode(Static(), [3], AggressiveOptions()))
    assert "unsupported" in str(info.value)
    assert "one token per call" in str(info.value)
    assert "--decoder greedy" in info.value.hint
    assert isinstance(Static(), StepModel)


class StartingTableModel(TableModel):
    """A table model that also verifies a draft in its first call (``start_with``)."""

    def start_with(self, input_ids, new_ids):
        first = self.start(input_ids)
        return np.concatenate([first, self.step(new_ids)]) if len(new_ids) else first


class CopyTableModel(StartingTableModel):
    """Greedy copies ``source`` except where ``edits`` says otherwise: high acceptance."""

    def __init__(self, source, edits, vocab=13):
        super().__init__(0, vocab)
        walk = [edits.get(i, t) for i, t in enumerate(source)]
        self.table = np.full((vocab, vocab), -1.0, np.float32)
        self.first = walk[0]
        for a, b in itertools.pairwise(walk):
            self.table[a, b] = 1.0  # a token-bigram chain; ties go to the lowest id

    def start(self, input_ids):
        self.tokens = []
        logits = np.full((1, self.vocab_size), -1.0, np.float32)
        logits[0, self.first] = 1.0
        return logits


class TableSpeculative(SpeculativeDecoder):
    """Speculative decoding with a numpy draft model instead of a bundle path."""

    def __init__(self, draft):
        super().__init__()
        self.draft = draft

    @contextlib.contextmanager
    def held_draft(self, model, options):
        yield self.draft

    def proposer(self, model, options):
        guess = NgramLookup(LookupOptions()) if options.draft_lookup else None
        return DraftProposer(self.draft, options, guess)


CONSTRAINTS = [
    {"max_new_tokens": 30, "stop_ids": (0,)},
    {"max_new_tokens": 30, "stop_ids": (0,), "repetition_penalty": 1.3, "min_new_tokens": 5},
    {"max_new_tokens": 25, "no_repeat_ngram_size": 2, "forced_first_id": 4},
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("options", CONSTRAINTS)
@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_lossless_when_the_first_call_verifies_a_draft(seed, options, decoder):
    source = [3, 5, 7, 2, 9, 4, 6, 8]
    reference = greedy(StartingTableModel(seed), source, **options)
    strategy = decoder()
    got = list(strategy.decode(StartingTableModel(seed), source, strategy.Options(**options)))
    assert got == reference


@pytest.mark.parametrize("options", CONSTRAINTS)
@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_lossless_and_few_calls_on_a_copy_with_edits(options, decoder):
    source = [3, 5, 7, 2, 9, 4, 6, 8, 11, 12, 0]
    model = CopyTableModel(source, {4: 10})
    reference = greedy(CopyTableModel(source, {4: 10}), source, **options)
    strategy = decoder()
    got = list(strategy.decode(model, source, strategy.Options(**options)))
    assert got == reference
    if options == CONSTRAINTS[0]:
        assert reference == [3, 5, 7, 2, 10, 4, 6, 8, 11, 12, 0]
        assert strategy.stats["target_calls"] <= 3  # the first call already verifies a draft


@pytest.mark.parametrize("draft_lookup", [True, False])
@pytest.mark.parametrize("confidence", [0.0, 0.4])
@pytest.mark.parametrize("options", CONSTRAINTS)
@pytest.mark.parametrize("draft_seed", [None, 1, 2])  # None: the draft is the target itself
def test_speculative_is_lossless_with_any_draft(draft_seed, options, confidence, draft_lookup):
    source = [3, 5, 7, 2, 9, 4, 6, 8]
    target_seed = 7
    draft = StartingTableModel(target_seed if draft_seed is None else draft_seed)
    reference = greedy(StartingTableModel(target_seed), source, **options)
    strategy = TableSpeculative(draft)
    parsed = SpeculativeOptions(draft="table", confidence=confidence, draft_lookup=draft_lookup,
                                **options)  # fmt: skip
    got = list(strategy.decode(StartingTableModel(target_seed), source, parsed))
    assert got == reference
    if draft_seed is None and confidence == 0.0:
        assert strategy.stats["acceptance_rate"] == 1.0
        assert strategy.stats["target_calls"] < len(got)


def test_draft_lookup_saves_draft_calls_without_changing_the_drafts():
    source = [3, 5, 7, 2, 9, 4, 6, 8, 11, 12, 0]
    calls, outputs = {}, {}
    for draft_lookup in (False, True):
        draft = CopyTableModel(source, {4: 10})
        options = SpeculativeOptions(draft="table", confidence=0.0, draft_lookup=draft_lookup,
                                     max_new_tokens=30, stop_ids=(0,))  # fmt: skip
        strategy = TableSpeculative(draft)
        outputs[draft_lookup] = list(
            strategy.decode(CopyTableModel(source, {4: 10}), source, options)
        )
        calls[draft_lookup] = draft.calls
        assert strategy.stats["acceptance_rate"] == 1.0
    assert outputs[True] == outputs[False] == [3, 5, 7, 2, 10, 4, 6, 8, 11, 12, 0]
    assert calls[True] < calls[False]


def test_adaptive_k_grows_shrinks_and_pauses_after_repeated_misses():
    k = AdaptiveK(8, 2, 32, patient=True)
    k.update(8, 8)
    assert k.next() == 16
    k.update(16, 3)  # patient: a partial acceptance keeps K
    assert k.next() == 16
    k.update(16, 0)  # one miss (after a typo, say): halve
    assert k.k == 8
    k.update(8, 0)  # a second miss in a row: the output has left the input
    assert k.k == 2
    # ... so drafting pauses for FIRST_PAUSE calls, then one probe.
    assert [k.next() for _ in range(FIRST_PAUSE + 1)] == [0] * FIRST_PAUSE + [2]
    k.update(2, 0)  # the probe missed too: a four times longer pause
    assert [k.next() for _ in range(4 * FIRST_PAUSE + 1)] == [0] * 4 * FIRST_PAUSE + [2]
    k.update(2, 2)  # a full acceptance ends the back-off
    assert k.pause == FIRST_PAUSE
    assert k.next() == 4


def test_adaptive_k_for_a_draft_model_pauses_after_a_draft_with_nothing_accepted():
    k = AdaptiveK(16, 1, 32)
    k.update(16, 5)  # less than half: halve
    assert k.k == 8
    k.update(8, 0)
    assert k.k == 1
    assert [k.next() for _ in range(FIRST_PAUSE + 1)] == [0] * FIRST_PAUSE + [1]


class WideNoiseModel(StartingTableModel):
    """Multi-token calls move the logits a little, as other kernels do: near-ties flip."""

    noise = 0.1  # how far a multi-token call moves the near-tie

    def __init__(self, tolerance):
        super().__init__(0)
        bound = tolerance if isinstance(tolerance, VerifyTolerance) else VerifyTolerance(tolerance)
        self.info = ModelInfo(verify_tolerance=bound)
        vocab = self.vocab_size
        self.table = np.zeros((vocab, vocab), np.float32)
        for a in range(vocab):
            self.table[a, (a + 1) % vocab] = 1.0  # greedy: count up
            self.table[a, (a + 2) % vocab] = 0.95  # a near-tie, 0.05 behind

    def step(self, new_ids):
        logits = super().step(new_ids)
        if len(new_ids) > 1:
            logits = logits.copy()
            for row, token in enumerate(new_ids):
                logits[row, (token + 2) % self.vocab_size] += self.noise
        return logits

    def start_with(self, input_ids, new_ids):
        first = self.start(input_ids)
        return np.concatenate([first, self.step([input_ids[-1], *new_ids])[1:]])


@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_near_ties_in_multi_token_rows_are_decided_as_greedy_decides_them(decoder):
    source = [4, 5, 6, 7, 8, 9, 10, 11, 12, 3]  # greedy continues 3 with 4, 5, ...: a copy
    reference = greedy(WideNoiseModel(0.5), source, max_new_tokens=12)
    assert reference[:4] == [4, 5, 6, 7]
    for tolerance, equal in ((0.5, True), (0.0, False)):  # 0: trust every row
        strategy = decoder()
        options = strategy.Options(max_new_tokens=12)
        got = list(strategy.decode(WideNoiseModel(tolerance), source, options))
        assert (got == reference) is equal


class CachedNoiseModel(WideNoiseModel):
    """Positions computed in multi-token calls stay a little off in the cache, so every
    later row moves too, one-token calls included (as int8 kernels that round some
    activations differently per call shape do): a one-token recheck is not enough."""

    def __init__(self, tolerance):
        super().__init__(tolerance)
        self.wide: list[bool] = []  # per cached position: computed in a multi-token call
        for a in range(self.vocab_size):  # one near-tie only, after 8: earlier positions
            self.table[a, (a + 2) % self.vocab_size] = 0.95 if a == 8 else 0.0  # are cached

    def start(self, input_ids):
        self.wide = []
        return super().start(input_ids)

    def step(self, new_ids):
        logits = StartingTableModel.step(self, new_ids).copy()
        self.wide.extend([len(new_ids) > 1] * len(new_ids))
        for row, token in enumerate(new_ids):
            if any(self.wide[: len(self.wide) - len(new_ids) + row + 1]):
                logits[row, (token + 2) % self.vocab_size] += self.noise
        return logits

    def rollback(self, length):
        super().rollback(length)
        del self.wide[length:]


@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_near_ties_after_multi_token_calls_are_decided_on_greedys_own_cache(decoder):
    source = [4, 5, 6, 7, 8, 9, 10, 11, 12, 3]
    reference = greedy(CachedNoiseModel(0.5), source, max_new_tokens=12)
    assert reference == greedy(WideNoiseModel(0.5), source, max_new_tokens=12)
    for tolerance, equal in ((0.5, True), (0.0, False)):
        strategy = decoder()
        options = strategy.Options(max_new_tokens=12)
        model = CachedNoiseModel(tolerance)
        got = list(strategy.decode(model, source, options))
        assert (got == reference) is equal
        assert model.length == len(model.wide)
        assert (strategy.stats["replayed"] > 0) is equal  # recomputed, and reported


class LargeLogitsNoiseModel(CachedNoiseModel):
    """``CachedNoiseModel`` with logits 100x larger, and so 100x the rounding drift."""

    noise = 10.0

    def __init__(self, tolerance):
        super().__init__(tolerance)
        self.table *= 100


@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_the_near_tie_bound_grows_with_the_logits(decoder):
    source = [4, 5, 6, 7, 8, 9, 10, 11, 12, 3]
    reference = greedy(LargeLogitsNoiseModel(0.5), source, max_new_tokens=12)
    for tolerance, equal in (
        (VerifyTolerance(absolute=0.5), False),  # an absolute bound that suits small logits
        (VerifyTolerance(absolute=0.5, relative=0.1), True),  # 10% of 100: the flip is caught
    ):
        strategy = decoder()
        got = list(
            strategy.decode(
                LargeLogitsNoiseModel(tolerance), source, strategy.Options(max_new_tokens=12)
            )
        )
        assert (got == reference) is equal


def test_read_only_logits_are_verified_and_left_as_they_are():
    from edgert.speculation import _choices

    logits = np.array([[1.0, 3.0, 2.95], [4.0, 0.0, 1.0]], np.float32)
    logits.flags.writeable = False
    options = AggressiveOptions()
    got = list(_choices(logits, [], options, VerifyTolerance(absolute=0.1)))
    assert got == [(1, True), (0, False)]  # 2.95 is within 0.1 of 3.0
    writable = logits.copy()
    assert list(_choices(writable, [], options, VerifyTolerance(absolute=0.1))) == got
    assert np.array_equal(writable, logits)  # the tops were put back


@pytest.mark.parametrize("seed", range(20))
def test_rows_decided_at_once_match_rows_decided_one_by_one(seed):
    """The vectorized path of ``_choices`` (suppressed ids, stop ids before min_new_tokens)
    against constraining and checking each row on its own."""
    from edgert.decoding import constrained_view
    from edgert.speculation import _choices, _near_tie

    rng = np.random.default_rng(seed)
    logits = np.round(rng.standard_normal((6, 9)) * 3, 1).astype(np.float32)  # ties happen
    options = GreedyOptions(
        max_new_tokens=20, min_new_tokens=int(rng.integers(0, 6)), stop_ids=(1, 2),
        suppress_ids=tuple(int(i) for i in rng.choice(9, int(rng.integers(0, 3)), replace=False)),
    )  # fmt: skip
    generated = [int(t) for t in rng.integers(3, 9, int(rng.integers(0, 4)))]
    bound = VerifyTolerance(absolute=0.2, relative=0.05)
    expected, history = [], list(generated)
    for row in logits:
        scores = constrained_view(row, history, options)
        token = int(np.argmax(scores))
        expected.append((token, _near_tie(scores, token, bound.of(row))))
        history.append(token)
    history = list(generated)
    for (token, near), want in zip(
        _choices(logits, history, options, bound), expected, strict=True
    ):
        assert (token, near) == want
        history.append(token)


def test_verify_tolerance_takes_the_larger_bound_and_scales_with_the_penalty():
    row = np.array([-30.0, 2.0, 12.0], np.float32)
    assert VerifyTolerance(absolute=0.5, relative=0.1).of(row) == pytest.approx(3.0)
    assert VerifyTolerance(absolute=5.0, relative=0.1).of(row) == 5.0
    assert VerifyTolerance(absolute=0.5, relative=0.1).of(row, penalty=2.0) == pytest.approx(6.0)
    assert VerifyTolerance(absolute=0.5).of(row, penalty=0.5) == 1.0  # positives double
    assert not VerifyTolerance()
    masked = np.array([[-np.inf, 2.0, 12.0], [-np.inf, -np.inf, 1.0]], np.float32)
    assert VerifyTolerance(absolute=0.5, relative=0.1).of(masked).tolist() == pytest.approx(
        [1.2, 0.5]
    )  # masked entries are no scale


class PromptNoiseModel(WideNoiseModel):
    """Like a decoder-decoder model: the prompt is the first position, never rolled back."""

    def start(self, input_ids):
        logits = super().start(input_ids)
        self.tokens = [-1]  # the prompt
        return logits

    def start_with(self, input_ids, new_ids):
        first = self.start(input_ids)
        return np.concatenate([first, self.step(new_ids)]) if len(new_ids) else first

    def rollback(self, length):
        if length < 1:
            raise ValueError("the prompt cannot be rolled back")
        super().rollback(length)


@pytest.mark.parametrize("decoder", [AggressiveDecoder, LookupDecoder])
def test_a_near_tie_in_the_first_drafted_row_restarts_without_rolling_back_the_prompt(decoder):
    source = [4, 5, 6, 7, 8, 9, 10, 11, 12, 3]
    reference = greedy(PromptNoiseModel(0.5), source, max_new_tokens=12)
    strategy = decoder()
    got = list(strategy.decode(PromptNoiseModel(0.5), source, strategy.Options(max_new_tokens=12)))
    assert got == reference


def test_history_goes_cold_probes_and_recovers():
    from edgert.speculation import PROBE_EVERY, WARMUP, DraftHistory

    history = DraftHistory()
    for _ in range(WARMUP):
        assert history.hopeful()
        history.update(drafted=20, accepted=0)
    starts = [history.hopeful() for _ in range(3 * PROBE_EVERY)]
    probes = [i for i, start in enumerate(starts) if start]
    assert probes == [PROBE_EVERY - 1, 3 * PROBE_EVERY - 1]  # failed probes: twice the gap
    history.update(drafted=10, accepted=9)  # a probe finds copy-heavy text again
    assert history.hopeful() and history.hopeful()
    for _ in range(3):  # cold again (a moving average): the gap starts over
        history.update(drafted=20, accepted=0)
    starts = [history.hopeful() for _ in range(PROBE_EVERY)]
    assert starts.index(True) == PROBE_EVERY - 1
    history.update(drafted=0, accepted=0)  # a generation that never drafted changes nothing
    assert history.generations == WARMUP + 4


def test_a_model_whose_drafts_keep_failing_is_decoded_without_drafting():
    """Random tables: copies of the input never match. After the warm-up generations the
    decoder starts paused (as many calls as greedy), and the tokens stay greedy's."""
    from edgert.speculation import WARMUP

    options = {"max_new_tokens": 12}
    source = [3, 5, 7, 2, 9, 4]
    model = TableModel(4)
    reference = greedy(TableModel(4), source, **options)
    drafted = []
    for _ in range(WARMUP + 3):
        strategy = AggressiveDecoder()
        assert list(strategy.decode(model, source, AggressiveOptions(**options))) == reference
        drafted.append(strategy.stats["drafted"])
    assert all(drafted[:WARMUP]) and not any(drafted[WARMUP:])
    assert strategy.stats["target_calls"] == len(reference)


def test_work_done_meanwhile_is_finished_and_its_error_raised_after_the_body():
    import threading

    from edgert.speculation import meanwhile

    done, order = threading.Event(), []

    def task(value):
        order.append(("task", value, threading.current_thread() is threading.main_thread()))
        done.set()

    with meanwhile(task, 3):
        order.append(("body",))
    assert done.is_set() and ("task", 3, False) in order  # ran, on another thread

    def fails():
        raise ValueError("encoder failed")

    with pytest.raises(ValueError, match="encoder failed"), meanwhile(fails):
        order.append(("body again",))
    assert order[-1] == ("body again",)


def test_a_draft_never_runs_past_the_positions_it_holds():
    """A draft may hold fewer positions than the target allows new tokens (another
    architecture with the same tokenizer): it drafts up to its end, never past it."""

    class Bounded(StartingTableModel):
        info = ModelInfo(
            max_length=20
        )  # positions, the start token's included (as a real core counts them)

        @property
        def length(self):
            return 1 + len(self.tokens)

        def rollback(self, length):
            del self.tokens[length - 1 :]

        def step(self, new_ids):
            assert self.length + len(new_ids) <= self.info.max_length, "past the position table"
            return super().step(new_ids)

    source = [*range(11)] * 3  # n-gram guesses too: the draft is fed some after each token
    options = {"max_new_tokens": 40}
    reference = greedy(StartingTableModel(7), source, **options)
    for draft_lookup in (True, False):
        strategy = TableSpeculative(Bounded(7))
        parsed = SpeculativeOptions(draft="table", confidence=0.0, draft_lookup=draft_lookup,
                                    **options)  # fmt: skip
        assert list(strategy.decode(StartingTableModel(7), source, parsed)) == reference
        assert strategy.stats["acceptance_rate"] == 1.0  # drafted while it could


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_worker_thread():
    """A server that decodes, then forks workers: the child must not wait on a thread that
    only exists in the parent."""
    from edgert.speculation import meanwhile

    with meanwhile(lambda: None):  # the parent's worker thread exists now
        pass
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        signal.alarm(10)  # a hang would be killed, and the status would say so
        done = []
        with meanwhile(done.append, 1):
            pass
        os._exit(0 if done == [1] else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
