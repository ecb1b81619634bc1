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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from edgert.decoding import DecodingOptions, StepModel, constrain, finished
from edgert.errors import InputError


class Proposer(Protocol):
    """Drafts tokens to verify; told how many were accepted."""

    def reset(self, input_ids: Sequence[int]) -> None:
        """A new input: forget everything."""
        ...

    def propose(self, generated: Sequence[int], k: int) -> list[int]:
        """Up to ``k`` tokens expected to follow ``generated``."""
        ...

    def accepted(self, generated: Sequence[int], drafted: int, accepted: int) -> None:
        """``accepted`` of ``drafted`` draft tokens were kept; ``generated`` is up to date."""
        ...


@dataclass
class AdaptiveK:
    """Draft length that grows after full acceptance and shrinks after a miss."""

    k: int
    low: int
    high: int

    def update(self, drafted: int, accepted: int) -> None:
        """Double on full acceptance, halve when less than half was accepted."""
        if drafted and accepted == drafted:
            self.k = min(self.high, self.k * 2)
        elif accepted * 2 < drafted:
            self.k = max(self.low, self.k // 2)


@dataclass
class SpeculationStats:
    """Counters every lossless decoder reports."""

    target_calls: int = 0
    drafted: int = 0
    accepted: int = 0
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
            "draft_ms": self.draft_s * 1000,
            "verify_ms": self.verify_s * 1000,
        }


def check_model(model: Any, decoder: str) -> None:
    """Refuse models whose step cannot verify several tokens in one call (static NPU graphs)."""
    if getattr(model, "multi_token_step", True) is False:
        raise InputError(
            f"decoder {decoder!r} needs a decoder graph that verifies several tokens per call; "
            "this bundle's static (NPU) graph takes one token per call",
            hint="use --decoder greedy on this profile, or export for a CPU/GPU profile "
            "(e.g. --device x86-avx2-int8) to use lossless accelerated decoding",
        )


def speculate(
    model: StepModel, input_ids: Sequence[int], options: DecodingOptions, proposer: Proposer,
    k: AdaptiveK, stats: SpeculationStats,
) -> Iterator[int]:  # fmt: skip
    """Greedy-identical decoding with drafts from ``proposer``."""
    started = time.perf_counter()
    pending = model.start(input_ids)[-1]
    stats.verify_s += time.perf_counter() - started
    stats.target_calls += 1
    proposer.reset(input_ids)
    generated: list[int] = []
    while True:
        started = time.perf_counter()
        room = options.max_new_tokens - len(generated) - 1
        drafts = proposer.propose(generated, min(k.k, room)) if room > 0 else []
        stats.draft_s += time.perf_counter() - started
        token = int(np.argmax(constrain(pending, generated, options)))
        generated.append(token)
        yield token
        if finished(token, generated, options):
            return
        feed = [token, *drafts[1:]] if drafts and drafts[0] == token else [token]
        started = time.perf_counter()
        base = model.length
        logits = model.step(feed)
        stats.verify_s += time.perf_counter() - started
        stats.target_calls += 1
        kept = 1
        for position in range(1, len(feed)):
            nxt = int(np.argmax(constrain(logits[position - 1], generated, options)))
            if nxt != feed[position]:
                break
            generated.append(nxt)
            kept += 1
            yield nxt
            if finished(nxt, generated, options):
                return
        drafted = len(drafts)
        accepted = min(drafted, kept) if drafts and drafts[0] == token else 0
        stats.drafted += drafted
        stats.accepted += accepted
        k.update(drafted, accepted)
        proposer.accepted(generated, drafted, accepted)
        if kept < len(feed):
            model.rollback(base + kept)
        pending = logits[kept - 1]


class DraftingDecoder(abc.ABC):
    """Base of the lossless decoders: they differ only in their proposer.

    ``Options`` must define ``draft_tokens``, ``min_draft_tokens`` and ``max_draft_tokens``.
    """

    name: ClassVar[str]
    Options: ClassVar[type]

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
        k = AdaptiveK(options.draft_tokens, options.min_draft_tokens, options.max_draft_tokens)
        try:
            yield from speculate(model, input_ids, options, proposer, k, counters)
        finally:
            self.stats = counters.as_dict()
