"""The step interface between family runtimes and decoding plugins, and the constraints
every decoder honours.

Text family runtimes implement ``StepModel``; decoders implement
``Decoder`` and see nothing else, so a decoder works on every family. ``step`` takes
several new tokens at once and ``rollback`` forgets cached positions: that pair is what
lets lossless decoders verify K drafted tokens in one call and drop the rejected ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from edgert.errors import InputError


@dataclass(frozen=True)
class VerifyTolerance:
    """How far a model's logits may move when positions are computed in multi-token calls.

    The drift is rounding, so it grows with the logits themselves: measured
    (``benchmarks/verify_drift.py``) on int8 weight-only decoders it stays within 2.5% of a
    row's largest ``|logit|``, which is 0.19 on the speller but 0.93 on a random T5 v1.1
    whose logits reach 54. An absolute bound alone would be too loose for one model and
    too tight for the other, so the bound is the larger of an absolute and a relative one.
    """

    absolute: float = 0.0
    relative: float = 0.0  # of the row's largest |logit|

    def of(self, rows: np.ndarray, penalty: float = 1.0, top: Any = None) -> Any:
        """The bound for a row of raw logits, or one per row of ``(n, vocab)`` logits.

        ``top``: the rows' maxima where the caller has them (one pass less). A repetition
        penalty multiplies or divides scores by ``penalty``, and their drift with them.
        """
        if rows.ndim == 1 and self.relative:  # one row: scalars (it runs once per token)
            high = float(rows.max() if top is None else top)
            low = float(rows.min())
            if math.isfinite(low) and math.isfinite(high):
                scale = max(self.absolute, self.relative * max(high, -low))
                return scale * max(penalty, 1.0 / penalty)
        bound: Any = self.absolute
        if self.relative:
            top = rows.max(axis=-1) if top is None else top
            low = rows.min(axis=-1)
            if not np.isfinite(low).all():  # masked (-inf) entries say nothing of the scale
                low = np.where(np.isfinite(rows), rows, np.inf).min(axis=-1)
                low = np.where(np.isfinite(low), low, 0.0)
            bound = np.maximum(top, -low)
            bound *= self.relative
            np.maximum(bound, self.absolute, out=bound)
        return bound * max(penalty, 1.0 / penalty) if penalty != 1.0 else bound

    def at_least(self, absolute: float, relative: float) -> VerifyTolerance:
        """This bound, raised to ``absolute`` and ``relative`` where they are larger."""
        return VerifyTolerance(max(self.absolute, absolute), max(self.relative, relative))

    def __bool__(self) -> bool:
        return bool(self.absolute or self.relative)


@dataclass(frozen=True)
class ModelInfo:
    """What decoders may know of a step model besides its calls: the one declared place.

    The family runtime fills it once, at load; a decoder reads ``model.info.<field>`` and a
    field it misspells is an ``AttributeError``, not a feature silently turned off. Fields
    a family leaves at their defaults mean "nothing known": no word boundaries, no lexicon,
    exact multi-token logits, no position limit.
    """

    decoder_start: int | None = None  # the decoder's first input id; None: the prompt starts it
    vocab_signature: str = ""  # hash of token -> id: a draft and its target must agree on it
    word_boundaries: frozenset[int] = frozenset()  # ids that do not continue a word
    lexicon: Any = None  # whole-word corrections for input-guided drafts (a ``Lexicon``)
    verify_tolerance: VerifyTolerance = VerifyTolerance()  # multi-token logit drift
    multi_token_step: bool = True  # False: ``step`` costs one decoder call per token (static)
    step_width: int | None = None  # most new tokens one call takes (fixed-width graphs); None: any
    one_token_hint: str = ""  # with ``multi_token_step`` False: how to get multi-token calls
    max_length: int | None = None  # decoder positions the model holds; a draft stops there too
    profile_id: str = ""  # the device profile, for messages
    run_device: str | None = None  # the ``--device`` it was loaded with; a draft follows it
    run_allow_fallback: bool | None = None  # the ``allow_fallback`` it was loaded with


@runtime_checkable
class StepModel(Protocol):
    """What a decoder may call. Logits are float32 ``(n_new, vocab)``.

    Optional calls are the capability protocols below (``StartsWithDrafts``,
    ``PreparesInput``): a decoder checks ``isinstance(model, StartsWithDrafts)`` and falls
    back to ``start`` then ``step`` without it.
    """

    vocab_size: int
    info: ModelInfo

    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Encode the input, reset caches; return logits of the first decoder position."""
        ...

    def step(self, new_ids: Sequence[int]) -> np.ndarray:
        """Append ``new_ids`` (1..K) to the decoder; return logits after each of them."""
        ...

    def rollback(self, length: int) -> None:
        """Forget cached decoder positions ``>= length``."""
        ...

    @property
    def length(self) -> int:
        """Decoder positions cached so far."""
        ...


@runtime_checkable
class StartsWithDrafts(Protocol):
    """A model that verifies a first draft in the call that starts decoding (on short
    outputs that first call is a large share of all calls)."""

    def start_with(self, input_ids: Sequence[int], new_ids: Sequence[int]) -> np.ndarray:
        """``start`` followed by ``step(new_ids)`` in one decoder call: the logits after
        the start token and after each new id."""
        ...


@runtime_checkable
class PreparesInput(Protocol):
    """A model whose input encoding can run on another thread while a draft model drafts."""

    def prepare(self, input_ids: Sequence[int]) -> None:
        """The part of ``start_with`` that needs no new ids (encoding the input)."""
        ...


@runtime_checkable
class PreparesDraft(Protocol):
    """A target whose draft model needs per-generation state from it (e.g. an input the
    target encoded before decoding, which the draft must encode its own way)."""

    def prepare_draft(self, draft: StepModel) -> None:
        """Give ``draft`` what this generation needs, while the decoder holds it."""
        ...


@dataclass(frozen=True)
class DecodingOptions:
    """Constraints every decoder honours; plugins subclass this for their own options.

    The runtime fills model-specific defaults (EOS, forced and suppressed tokens) from the
    bundle; users override any of them.
    """

    max_new_tokens: int = 64  # hard cap on generated tokens
    min_new_tokens: int = 0  # stop ids are suppressed until this many tokens exist
    stop_ids: tuple[int, ...] = ()  # stop after emitting any of these (EOS, ...)
    suppress_ids: tuple[int, ...] = ()  # never generate these (e.g. Marian's pad)
    forced_first_id: int | None = None  # token forced at the first position (mBART language)
    forced_last_id: int | None = None  # token forced when max_new_tokens is reached
    repetition_penalty: float = 1.0  # > 1 discourages tokens already generated; 1 = off
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size; 0 = off
    prefix_ids: tuple[int, ...] = ()  # decoder tokens before the first generated one
    # The model's own rules, applied last: ``rules(scores, generated)`` masks one position's
    # scores in place from the tokens generated so far (Whisper's timestamp grammar). Set by
    # the family runtime, not by users; None: none.
    rules: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise InputError(
                f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}"
            )
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise InputError(
                f"min_new_tokens must be between 0 and max_new_tokens ({self.max_new_tokens}), "
                f"got {self.min_new_tokens!r}"
            )
        if self.repetition_penalty <= 0:
            raise InputError(
                f"repetition_penalty must be > 0, got {self.repetition_penalty!r}",
                hint="1.0 turns it off; values like 1.2 discourage repeats",
            )
        if self.no_repeat_ngram_size < 0:
            raise InputError(
                f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size!r}"
            )


def constrain(logits: np.ndarray, generated: Sequence[int], options: DecodingOptions) -> np.ndarray:
    """Logits of the next position after the shared constraints (a new array).

    Same order and semantics as the processors of Hugging Face ``generate``: repetition
    penalty, no-repeat n-grams, forced tokens, min length, suppressed ids. The history the
    penalties see starts with ``options.prefix_ids`` (the decoder start token); the model's
    own ``rules`` come last, as a family's processors come after the generic ones there.
    """
    out = np.array(logits, dtype=np.float32, copy=True)
    history = (*options.prefix_ids, *generated)
    if options.repetition_penalty != 1.0 and history:
        seen = np.unique(np.asarray(history))
        scores = out[seen]
        out[seen] = np.where(
            scores < 0, scores * options.repetition_penalty, scores / options.repetition_penalty
        )
    n = options.no_repeat_ngram_size
    if n and len(history) + 1 >= n:
        prefix = tuple(history[len(history) - n + 1 :]) if n > 1 else ()
        banned = [
            history[i + n - 1]
            for i in range(len(history) - n + 1)
            if tuple(history[i : i + n - 1]) == prefix
        ]
        out[banned] = -np.inf
    step = len(generated)
    if step == 0 and options.forced_first_id is not None:
        return _only(out, options.forced_first_id)
    if step == options.max_new_tokens - 1 and options.forced_last_id is not None:
        return _only(out, options.forced_last_id)
    if step < options.min_new_tokens and options.stop_ids:
        out[list(options.stop_ids)] = -np.inf
    if options.suppress_ids:
        out[list(options.suppress_ids)] = -np.inf
    if options.rules is not None:
        options.rules(out, generated)
    return out


def constrained_view(
    logits: np.ndarray, generated: Sequence[int], options: DecodingOptions
) -> np.ndarray:
    """``constrain(...)``, or ``logits`` itself (not to be modified) when nothing applies.

    Most positions have no constraint in force, and this runs for every emitted or
    verified token: the copy that ``constrain`` makes is then saved.
    """
    if constraints_idle(options, len(generated)):
        return logits
    return constrain(logits, generated, options)


def position_only(options: DecodingOptions, produced: int) -> bool:
    """Whether the constraints at position ``produced`` and later depend on the position
    alone (suppressed ids, stop ids before ``min_new_tokens``), not on the tokens before
    it: then the rows of a multi-token call are constrained at once (``constrain_rows``)."""
    return (
        options.repetition_penalty == 1.0
        and options.rules is None
        and not options.no_repeat_ngram_size
        and (options.forced_first_id is None or produced > 0)
        and options.forced_last_id is None
    )


def constrain_rows(logits: np.ndarray, produced: int, options: DecodingOptions) -> np.ndarray:
    """``constrain`` for every row where ``position_only`` holds (row i is position
    ``produced + i``): ``logits`` itself when nothing is masked, else a masked copy."""
    early = max(0, min(len(logits), options.min_new_tokens - produced)) if options.stop_ids else 0
    if not early and not options.suppress_ids:
        return logits
    out = np.array(logits, dtype=np.float32, copy=True)
    if early:
        out[:early, list(options.stop_ids)] = -np.inf
    if options.suppress_ids:
        out[:, list(options.suppress_ids)] = -np.inf
    return out


def constraints_idle(options: DecodingOptions, produced: int) -> bool:
    """Whether ``constrain`` leaves the logits as they are at position ``produced`` and at
    every later one: position-only constraints with nothing left to mask."""
    return (
        position_only(options, produced)
        and not options.suppress_ids
        and (produced >= options.min_new_tokens or not options.stop_ids)
    )


def constrained_argmax(
    logits: np.ndarray, generated: Sequence[int], options: DecodingOptions
) -> int:
    """The greedy token: ``argmax(constrain(logits, generated, options))``."""
    return int(np.argmax(constrained_view(logits, generated, options)))


def _only(logits: np.ndarray, token: int) -> np.ndarray:
    forced = np.full_like(logits, -np.inf)
    forced[token] = 0.0
    return forced


def finished(token: int, generated: Sequence[int], options: DecodingOptions) -> bool:
    """Whether generation ends after ``token`` (stop id or length cap)."""
    return token in options.stop_ids or len(generated) >= options.max_new_tokens


def token_by_token(
    model: StepModel,
    input_ids: Sequence[int],
    options: DecodingOptions,
    choose: Callable[[np.ndarray, list[int]], int],
) -> Iterator[int]:
    """The one-call-per-token loop: ``choose(logits, generated)`` picks each token."""
    logits = model.start(input_ids)[-1]
    generated: list[int] = []
    while True:
        token = choose(logits, generated)
        generated.append(token)
        yield token
        if finished(token, generated, options):
            return
        logits = model.step([token])[-1]


class Decoder(Protocol):
    """A decoding strategy registered through ``register_decoders``."""

    name: ClassVar[str]
    Options: ClassVar[type[DecodingOptions]]

    def decode(
        self, model: StepModel, input_ids: Sequence[int], options: DecodingOptions
    ) -> Iterator[int]:
        """Yield generated token ids one by one (streaming)."""
        ...
