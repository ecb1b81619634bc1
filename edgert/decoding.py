"""The step interface between family runtimes and decoding plugins.

Family runtimes (seq2seq, decoder-decoder) implement ``StepModel``; decoders implement
``Decoder`` and see nothing else, so a decoder works on every family. ``step`` takes
several new tokens at once and ``rollback`` forgets cached positions: that pair is what
lets lossless decoders verify K drafted tokens in one call and drop the rejected ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from edgert.errors import InputError


@runtime_checkable
class StepModel(Protocol):
    """What a decoder may call. Logits are float32 ``(n_new, vocab)``."""

    vocab_size: int

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


@dataclass(frozen=True)
class DecodingOptions:
    """Constraints every decoder honours; plugins subclass this for their own options."""

    max_new_tokens: int = 64  # hard cap on generated tokens
    stop_ids: tuple[int, ...] = ()  # stop after emitting any of these (EOS, ...)

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise InputError(
                f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}"
            )


class Decoder(Protocol):
    """A decoding strategy registered through ``register_decoders``."""

    name: ClassVar[str]
    Options: ClassVar[type[DecodingOptions]]

    def decode(
        self, model: StepModel, input_ids: Sequence[int], options: DecodingOptions
    ) -> Iterator[int]:
        """Yield generated token ids one by one (streaming)."""
        ...
