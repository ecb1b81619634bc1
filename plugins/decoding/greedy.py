"""Greedy decoding: always take the most likely next token. The reference every lossless
decoder must reproduce token for token."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgert.decoding import DecodingOptions, StepModel, constrain, finished
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
        generated: list[int] = []
        while True:
            token = int(np.argmax(constrain(logits, generated, options)))
            generated.append(token)
            yield token
            if finished(token, generated, options):
                return
            logits = model.step([token])[-1]


@hookimpl
def register_decoders(register):
    """Register greedy decoding."""
    register(GreedyDecoder)
