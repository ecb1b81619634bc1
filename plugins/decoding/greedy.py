"""Greedy decoding: always take the most likely next token. The reference every lossless
decoder must reproduce token for token."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgert.decoding import DecodingOptions, StepModel, constrained_argmax, token_by_token
from edgert.hookspecs import hookimpl


@dataclass(frozen=True)
class GreedyOptions(DecodingOptions):
    """Greedy has only the shared constraints."""


class GreedyDecoder:
    """Argmax at every position."""

    name: ClassVar[str] = "greedy"
    Options: ClassVar[type] = GreedyOptions

    def decode(
        self, model: StepModel, input_ids: Sequence[int], options: GreedyOptions
    ) -> Iterator[int]:
        """Yield argmax tokens until a stop id or ``max_new_tokens``."""

        def choose(logits: np.ndarray, generated: list[int]) -> int:
            return constrained_argmax(logits, generated, options)

        return token_by_token(model, input_ids, options, choose)


@hookimpl
def register_decoders(register):
    """Register greedy decoding."""
    register(GreedyDecoder)
