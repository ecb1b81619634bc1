"""Sampling: temperature, top-k and top-p (nucleus), reproducible under a seed.

Order as in Hugging Face ``generate``: shared constraints, then temperature, top-k,
top-p, then one draw from the renormalised distribution.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgert.decoding import DecodingOptions, StepModel, constrain, token_by_token
from edgert.errors import InputError
from edgert.hookspecs import hookimpl


@dataclass(frozen=True)
class SamplingOptions(DecodingOptions):
    """Sampling options; each "off" value is stated."""

    temperature: float = 1.0  # > 0; lower is more conservative
    top_k: int = 0  # keep the k most likely tokens; 0 = off
    top_p: float = 1.0  # keep the smallest set with this much probability; 1.0 = off
    seed: int | None = None  # same seed, same model, same input -> same tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise InputError(
                f"temperature must be > 0, got {self.temperature!r}",
                hint="for deterministic output use --decoder greedy",
            )
        if self.top_k < 0:
            raise InputError(f"top_k must be >= 0 (0 = off), got {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1] (1 = off), got {self.top_p!r}")


def warp(logits: np.ndarray, options: SamplingOptions) -> np.ndarray:
    """Probabilities after temperature, top-k and top-p (a new array)."""
    scaled = logits.astype(np.float64) / options.temperature
    if options.top_k and options.top_k < scaled.size:
        kth = np.partition(scaled, -options.top_k)[-options.top_k]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled - np.max(scaled))
    probs /= probs.sum()
    if options.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, options.top_p) + 1)]
        mask = np.zeros_like(probs)
        mask[keep] = probs[keep]
        probs = mask / mask.sum()
    return probs


class SamplingDecoder:
    """Draw each token from the warped distribution."""

    name: ClassVar[str] = "sampling"
    Options: ClassVar[type] = SamplingOptions

    def decode(
        self, model: StepModel, input_ids: Sequence[int], options: SamplingOptions
    ) -> Iterator[int]:
        """Yield sampled tokens until a stop id or ``max_new_tokens``."""
        rng = np.random.default_rng(options.seed)

        def choose(logits: np.ndarray, generated: list[int]) -> int:
            probs = warp(constrain(logits, generated, options), options)
            return int(rng.choice(probs.size, p=probs))

        return token_by_token(model, input_ids, options, choose)


@hookimpl
def register_decoders(register):
    """Register sampling."""
    register(SamplingDecoder)
