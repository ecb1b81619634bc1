"""One verify-and-rollback core for every lossless accelerated decoder.

A proposer drafts up to K tokens; the target checks them all in one multi-token decoder
call; the longest prefix that equals what greedy decoding would pick is accepted, the
target's own token at the first mismatch comes free from the same call, and the cache is
rolled back past the rest. Every emitted token is the constrained argmax of the target's
logits given exactly the same history as in greedy decoding, so the output is identical
to greedy (the proposers only change how many target calls it takes).
"""

from __future__ import annotations

import abc
import contextlib
import functools
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from edgert.decoding import (
    DecodingOptions,
    PreparesInput,
    StartsWithDrafts,
    StepModel,
    VerifyTolerance,
    constrain_rows,
    constrained_view,
    finished,
    position_only,
)
from edgert.errors import InputError


class Proposer(Protocol):
    """Drafts tokens to verify; told how many were accepted.

    ``costly`` (a draft model): its first draft runs while the target encodes the input
    on another thread, where the model offers ``prepare`` (``PreparesInput``).
    """

    costly: ClassVar[bool]

    def reset(self, input_ids: Sequence[int]) -> None:
        """A new input: forget everything."""
        ...

    def propose(self, generated: Sequence[int], k: int) -> list[int]:
        """Up to ``k`` tokens expected to follow ``generated`` (``[]`` before the first)."""
        ...

    def accepted(self, generated: Sequence[int], drafted: int, accepted: int) -> None:
        """``accepted`` of ``drafted`` draft tokens were kept.

        ``generated`` is up to date: it ends with the accepted drafts and then the target's
        own token (the one after the last accepted draft).
        """
        ...


FIRST_PAUSE = 4  # target calls without drafting after K bottoms out and misses again
LONGEST_PAUSE = 64


@dataclass
class AdaptiveK:
    """Draft length that grows after full acceptance and shrinks after a miss.

    ``patient`` suits proposers whose drafts cost nothing to make (copied from the
    input): a long draft then only costs a slightly wider target call, and on copy-heavy
    text a partial acceptance is a local difference (one corrected word) followed by more
    copying, so K shrinks only when nothing was accepted. Otherwise K halves when less than
    half the draft was accepted, which suits a draft model whose every token costs a call.

    A miss at the smallest K (for a draft model: any draft with nothing accepted) pauses
    drafting for a number of target calls that grows fourfold with every further miss (up
    to ``LONGEST_PAUSE``) and resets after a full acceptance: on text where drafts keep
    failing (open-ended output) a draft model's calls would otherwise cost on every token,
    while one probe per pause still finds the stretches where drafting pays again.
    """

    k: int
    low: int
    high: int
    patient: bool = False
    pause: int = FIRST_PAUSE  # length of the next pause
    idle: int = 0  # target calls left in the current pause
    missed: bool = False  # the last draft had nothing accepted
    declines: int = 0  # empty drafts that cost a draft call (see ``declined``)

    def next(self) -> int:
        """Draft length for the coming target call (0 while paused)."""
        if self.idle:
            self.idle -= 1
            return 0
        return self.k

    def update(self, drafted: int, accepted: int) -> None:
        """Double on full acceptance; shrink on a miss (see ``patient``); pause at the floor."""
        if not drafted:
            return
        missed, self.missed = self.missed, accepted == 0
        if accepted == drafted:
            self.k = min(self.high, self.k * 2)
            self.pause = FIRST_PAUSE
        elif accepted == 0 if self.patient else accepted * 2 < drafted:
            # A draft model that got nothing right is likely lost, and so is a copy that
            # got nothing right twice in a row: pause, then retry small.
            lost = accepted == 0 and (missed or not self.patient)
            if self.k == self.low or lost:
                self.idle, self.pause = self.pause, min(LONGEST_PAUSE, self.pause * 4)
            self.k = self.low if lost else max(self.low, self.k // 2)

    def declined(self) -> None:
        """A draft came back empty. From a copy that is free, and nothing changes; a draft
        model spent a call to find its first token doubtful. Once, that is a doubtful spot
        (a typo); right after another miss it is text where the draft is never sure, and
        drafting pauses instead of costing a call per token."""
        if self.patient:
            return
        self.declines += 1
        if self.missed:
            self.update(1, 0)
        self.missed = True


COLD_RATE = 0.1  # acceptance below this over recent generations: start without drafting
WARMUP = 2  # generations measured before the history may say "cold"
PROBE_EVERY = 8  # a cold decoder still drafts from the start in one generation out of this,
LONGEST_PROBE_GAP = 32  # and out of twice as many after each probe that found it still cold


@dataclass
class DraftHistory:
    """Acceptance over a model's recent generations, for one decoder.

    Within one generation ``AdaptiveK`` backs off after misses, but each generation starts
    hopeful and pays for a first wide call (and, for a draft model, its encoder and first
    steps). On a model whose drafts keep failing (open-ended output) that up-front cost is
    lost every time, so a decoder whose recent acceptance is below ``COLD_RATE`` starts the
    next generation paused, and still drafts from the start once every ``PROBE_EVERY``
    generations so it notices when the text turns copy-heavy again. Each probe that finds
    it still cold doubles the gap to the next (up to ``LONGEST_PROBE_GAP``): on open-ended
    text the probes were measured to cost about 5% of the decoding time at one in 8.
    """

    rate: float | None = None  # moving average of accepted / drafted
    generations: int = 0
    skipped: int = 0
    gap: int = PROBE_EVERY  # generations from one probe to the next while cold

    def hopeful(self) -> bool:
        """Whether the coming generation should draft from its first call."""
        if self.rate is None or self.generations < WARMUP or self.rate >= COLD_RATE:
            self.gap = PROBE_EVERY
            return True
        self.skipped += 1
        if self.skipped >= self.gap:
            self.skipped = 0
            self.gap = min(LONGEST_PROBE_GAP, self.gap * 2)  # reset if the probe finds it warm
            return True
        return False

    def update(self, drafted: int, accepted: int) -> None:
        """Fold in one generation that drafted something."""
        if not drafted:
            return
        rate = accepted / drafted
        self.rate = rate if self.rate is None else 0.5 * self.rate + 0.5 * rate
        self.generations += 1


_HISTORIES: weakref.WeakKeyDictionary[Any, dict[str, DraftHistory]] = weakref.WeakKeyDictionary()
_HISTORIES_LOCK = threading.Lock()


def draft_history(model: Any, decoder: str) -> DraftHistory:
    """The history of ``decoder`` on ``model`` (kept while the model lives, created on
    first use; threads sharing the model share it)."""
    with _HISTORIES_LOCK:
        return _HISTORIES.setdefault(model, {}).setdefault(decoder, DraftHistory())


STAT_KEYS = ("target_calls", "drafted", "accepted", "acceptance_rate", "mean_accepted", "replayed")


@dataclass
class SpeculationStats:
    """Counters every lossless decoder reports."""

    target_calls: int = 0
    drafted: int = 0
    accepted: int = 0
    replayed: int = 0  # one-token calls that recomputed positions to settle a near-tie
    draft_s: float = 0.0
    verify_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Stats with the derived rates, for ``Generation.stats``."""
        return {
            "target_calls": self.target_calls,
            "drafted": self.drafted,
            "accepted": self.accepted,
            "acceptance_rate": self.accepted / self.drafted if self.drafted else 0.0,
            "mean_accepted": self.accepted / self.target_calls if self.target_calls else 0.0,
            "replayed": self.replayed,
            "draft_ms": self.draft_s * 1000,
            "verify_ms": self.verify_s * 1000,
        }


def check_model(model: Any, decoder: str) -> None:
    """Refuse models whose step cannot verify several tokens in one call (static graphs
    without a verify graph).

    Such a ``step`` runs one decoder call per token, so drafting cannot save a call; the
    error names the bundle's profile and what to do instead: the family's own advice
    (``info.one_token_hint``, e.g. how to re-export with a verify graph) where it has one.
    """
    if not model.info.multi_token_step:
        profile = model.info.profile_id
        where = f" (profile {profile!r})" if profile else ""
        raise InputError(
            f"decoder {decoder!r} is unsupported on this bundle's static (NPU) graph{where}: "
            "it verifies drafts several tokens per call, and this graph takes one token per call",
            hint=model.info.one_token_hint
            or "use --decoder greedy (or sampling) on this profile, or export for a CPU/GPU "
            "profile (e.g. --device x86-avx2-int8) to use lossless accelerated decoding",
        )


def fit_width(k: AdaptiveK, width: int | None) -> AdaptiveK:
    """Draft lengths cut to what one call of a fixed-width graph verifies: ``width`` fed
    tokens, the last emitted one and ``width - 1`` drafted."""
    if not width:
        return k
    most = max(1, width - 1)
    k.k, k.low, k.high = min(k.k, most), min(k.low, most), min(k.high, most)
    return k


def speculate(
    model: StepModel, input_ids: Sequence[int], options: DecodingOptions, proposer: Proposer,
    k: AdaptiveK, stats: SpeculationStats,
) -> Iterator[int]:  # fmt: skip
    """Greedy-identical decoding with drafts from ``proposer``.

    Each target call feeds the last emitted token followed by the draft; its logits give
    the greedy token after each fed token, so the call yields every matching draft token
    plus one token of the target's own. Where the model offers ``start_with``, the first
    call (the one that also runs the encoder) verifies a draft too: on short outputs that
    first call is a large share of all calls.

    A model's ``info.verify_tolerance`` (see ``VerifyTolerance``) says how far its logits can
    move when positions are computed in multi-token calls instead of one at a time (kernels
    pick other code paths for other shapes: weight-only int8 with int8 compute rounds some
    activations differently, which moves the logits by up to ~2.5% of their largest
    magnitude, in the verified rows and through the cached keys and values in every later
    one). Greedy decoding computes each position alone, so a row is exact only where every
    position before it was computed that way too. An inexact row whose top two scores are
    closer than the tolerance is not trusted: the positions after the last exact one are
    computed again one token per call (``_replay``), and the token comes from greedy's own
    logits.
    """
    generated: list[int] = []
    started = time.perf_counter()
    proposer.reset(input_ids)
    start_with = model.start_with if isinstance(model, StartsWithDrafts) else None
    tolerance = model.info.verify_tolerance
    if start_with:
        ahead = encoding_ahead(model, proposer, input_ids)
        drafts = _propose(proposer, generated, k, options, model.vocab_size, ahead)
    else:  # the first call cannot verify a draft; it still counts against a pause
        drafts, _ = [], k.next()
    stats.draft_s += time.perf_counter() - started
    started = time.perf_counter()
    logits = start_with(input_ids, drafts) if drafts else model.start(input_ids)
    base = model.length - len(drafts)  # positions the start takes (before any token)
    exact = 0 if drafts else base  # leading positions computed as greedy computes them
    while True:
        stats.verify_s += time.perf_counter() - started
        stats.target_calls += 1
        matched, done, unsure = 0, False, False
        trusted = exact == model.length  # every position behind these rows is greedy's own
        bound = tolerance if tolerance and not trusted else None
        # Row i holds the logits after the i-th fed token: the greedy token there is
        # emitted, and drafting continues while it equals the draft that was fed next.
        for token, near_tie in _choices(logits, generated, options, bound):
            if near_tie:
                unsure = True  # decided on greedy's own logits, computed again
                break
            generated.append(token)
            yield token
            hit = matched < len(drafts) and token == drafts[matched]
            matched += hit
            done = finished(token, generated, options)
            if done or not hit:
                break
        stats.drafted += len(drafts)
        stats.accepted += matched
        if done:
            return
        k.update(len(drafts), matched)
        started = time.perf_counter()
        if unsure:  # proposers re-align from ``generated`` on their next draft
            logits, exact, calls = _replay(model, input_ids, generated, exact, base)
            stats.target_calls += calls - 1  # the loop counts one
            stats.replayed += calls
            drafts = []
            continue
        unused = len(logits) - matched - 1  # fed tokens whose rows were not used
        if unused:
            model.rollback(model.length - unused)
            exact = min(exact, model.length)
        proposer.accepted(generated, len(drafts), matched)
        drafts = _propose(proposer, generated, k, options, model.vocab_size)
        stats.draft_s += time.perf_counter() - started
        started = time.perf_counter()
        alone = not drafts and exact == model.length  # one token on an exact prefix
        logits = model.step([generated[-1], *drafts])
        if alone:
            exact = model.length


@functools.cache
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgert-prepare")


if hasattr(os, "register_at_fork"):  # a forked child has no worker thread: start a new one
    os.register_at_fork(after_in_child=_worker.cache_clear)


def encoding_ahead(model: Any, proposer: Proposer, input_ids: Sequence[int]) -> Any:
    """The target's encoding of ``input_ids``, to run while a ``costly`` proposer makes its
    first draft (``meanwhile``); None for other proposers and models, and on a single
    core, where the two would only take turns. Only around a draft being made: a paused
    draft leaves the encoding to ``start`` on this thread."""
    if not isinstance(model, PreparesInput) or not proposer.costly or _cores() < 2:
        return None
    return functools.partial(model.prepare, input_ids)


@functools.cache
def _cores() -> int:
    """Cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


@contextlib.contextmanager
def meanwhile(task: Callable[..., Any] | None, *args: Any) -> Iterator[None]:
    """Run ``task(*args)`` on a worker thread while the body runs; wait for it at the end.

    ONNX Runtime releases the GIL while a session runs, so the target's encoder and the
    draft model's first calls overlap on two cores. The body never leaves the task running
    behind; the task's error is raised after the body, unless the body raised its own.
    """
    if task is None:
        yield
        return
    pending = _worker().submit(task, *args)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the body's error is the one to report
            pending.result()
        raise
    pending.result()


def next_draft(
    make: Callable[[int], tuple[list[int], Sequence[Any]]], k: AdaptiveK,
    options: DecodingOptions, produced: int, ahead: Callable[[], Any] | None = None,
) -> tuple[list[int], Sequence[Any]]:  # fmt: skip
    """The next draft, ``make(room)``: its tokens and what goes with them (a sampled
    draft's distributions); nothing while drafting pauses, and an empty one is
    ``k.declined``.
    ``ahead``: work that runs alongside the drafting (``meanwhile``), if it happens."""
    room = draft_room(k, options, produced)
    if not room:
        return [], ()
    with meanwhile(ahead):
        drafts, extras = make(room)
    if not drafts:
        k.declined()
    return drafts, extras


def _propose(
    proposer: Proposer, generated: list[int], k: AdaptiveK, options: DecodingOptions,
    vocab: int, ahead: Callable[[], Any] | None = None,
) -> list[int]:  # fmt: skip
    """``next_draft`` from a greedy proposer, cut before the first id the model has no
    token for (a proposer copying the input may copy a placeholder id that a family
    replaces before the decoder sees it)."""
    drafts = next_draft(
        lambda room: (proposer.propose(generated, room), ()), k, options, len(generated), ahead
    )[0]
    return known_prefix(drafts, vocab)


def known_prefix(ids: list[int], vocab: int) -> list[int]:
    """``ids`` up to the first one a model with ``vocab`` tokens has no token for."""
    for i, token in enumerate(ids):
        if not 0 <= token < vocab:
            return ids[:i]
    return ids


def _replay(
    model: StepModel, input_ids: Sequence[int], generated: list[int], exact: int, base: int
) -> tuple[np.ndarray, int, int]:
    """Greedy's logits for the token after ``generated``, the new exact length, the calls.

    Positions from ``exact`` on came from multi-token calls: they are computed again one
    token per call, as greedy decoding computes them, from the start when even that came
    from a multi-token call. The start takes ``base`` positions; position ``base + i``
    holds ``generated[i]``.
    """
    calls = 0
    if exact < base or exact - base >= len(generated):
        logits = _restart(model, input_ids)
        exact, calls = model.length, 1
    else:
        model.rollback(exact)
    for token in generated[exact - base :]:
        logits = model.step([token])
        calls += 1
    return logits[-1:], model.length, calls


def _restart(model: StepModel, input_ids: Sequence[int]) -> np.ndarray:
    """The first position again, alone: without encoding again where the start id is known."""
    start = model.info.decoder_start
    if start is None:
        return model.start(input_ids)
    model.rollback(0)
    return model.step([start])


def _choices(
    logits: np.ndarray, generated: list[int], options: DecodingOptions,
    bound: VerifyTolerance | None,
) -> Iterator[tuple[int, bool]]:  # fmt: skip
    """Greedy's token after each row of ``logits``, and whether it is a near-tie under
    ``bound`` (None: rows are exact). The caller appends each token to ``generated``
    before asking for the next row, whose constraints may depend on it.

    Where the constraints depend on the position alone (none at all, suppressed ids, stop
    ids before ``min_new_tokens``) all rows are decided at once: a call verifies a dozen
    rows, and one vectorized pass costs less than a dozen small ones.
    """
    if len(logits) > 1 and position_only(options, len(generated)):
        scores = constrain_rows(logits, len(generated), options)
        tokens = scores.argmax(axis=1)
        if bound is None:
            yield from zip(tokens.tolist(), itertools.repeat(False))
            return
        rows = np.arange(len(tokens))
        top = scores[rows, tokens]
        bounds = bound.of(logits, top=top if scores is logits else None)  # of the raw logits
        others = scores if scores is not logits or logits.flags.writeable else logits.copy()
        others[rows, tokens] = -np.inf  # the runner-up in one pass; the tops are put back
        near = others.max(axis=1) > top - bounds
        others[rows, tokens] = top
        yield from zip(tokens.tolist(), near.tolist(), strict=True)
        return
    for row in logits:  # one row (a call without drafts) or constraints on the history
        scores = constrained_view(row, generated, options)
        token = int(scores.argmax())
        near_tie = bound is not None and _near_tie(
            scores,
            token,
            bound.of(row, options.repetition_penalty, scores[token] if scores is row else None),
        )
        yield token, near_tie


def _near_tie(scores: np.ndarray, top: int, tolerance: float) -> bool:
    """Whether another score is within ``tolerance`` of the top one."""
    return int(np.count_nonzero(scores > scores[top] - tolerance)) > 1


def draft_room(k: AdaptiveK, options: DecodingOptions, produced: int) -> int:
    """Draft length: ``k``, but never past ``max_new_tokens`` (one token comes free)."""
    return max(0, min(k.next(), options.max_new_tokens - produced - 1))


class DraftingDecoder(abc.ABC):
    """Base of the lossless decoders: they differ only in their proposer.

    ``Options`` must define ``draft_tokens``, ``min_draft_tokens`` and ``max_draft_tokens``.
    """

    name: ClassVar[str]
    Options: ClassVar[type]
    patient: ClassVar[bool] = False  # see AdaptiveK

    def __init__(self) -> None:
        self.stats: dict[str, Any] = {}

    @abc.abstractmethod
    def proposer(self, model: Any, options: Any) -> Proposer:
        """A fresh proposer for one generation."""

    def decode(self, model: Any, input_ids: Sequence[int], options: Any) -> Iterator[int]:
        """Greedy-identical tokens, drafted by ``self.proposer``; stats kept in ``self.stats``."""
        check_model(model, self.name)
        proposer = self.proposer(model, options)
        counters = SpeculationStats()
        k = AdaptiveK(
            options.draft_tokens, options.min_draft_tokens, options.max_draft_tokens, self.patient
        )
        fit_width(k, model.info.step_width)
        history = draft_history(model, self.history_key(options))
        if not history.hopeful():
            k.idle = LONGEST_PAUSE  # drafts kept failing on this model: start as greedy does
        try:
            yield from self.core(model, input_ids, options, proposer, k, counters)
        finally:
            history.update(counters.drafted + k.declines, counters.accepted)
            self.stats = counters.as_dict()

    def history_key(self, options: Any) -> str:
        """Which history a generation with ``options`` learns from and adds to."""
        return self.name

    def core(
        self, model: Any, input_ids: Sequence[int], options: Any, proposer: Proposer,
        k: AdaptiveK, stats: SpeculationStats,
    ) -> Iterator[int]:  # fmt: skip
        """The draft-and-verify loop: ``speculate``, greedy's tokens exactly."""
        return speculate(model, input_ids, options, proposer, k, stats)
