"""Greedy decoding: always take the most likely next token. The reference every lossless
decoder must reproduce token for token."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgert.decoding import DecodingOptions, StepModel
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
        logits = model.start(input_ids)[-1]
        for produced in range(options.max_new_tokens):
            token = int(np.argmax(logits))
            yield token
            if token in options.stop_ids or produced + 1 == options.max_new_tokens:
                return
            logits = model.step([token])[-1]


@hookimpl
def register_decoders(register):
    """Register greedy decoding."""
    register(GreedyDecoder)
