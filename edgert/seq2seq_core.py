"""The step interface over an encoder and a decoder session (``StepModel``).

Hot path: one ``session.run`` per step with a feed dict whose cross-attention entries are
built once per input. The self-attention cache is the previous step's ``present_*``
outputs passed straight back (no Python-side copy); ``rollback`` slices them, which only
costs a copy on the next step after a rejection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgert.embeddings import EmbeddingTable
from edgert.errors import InputError


@dataclass(frozen=True)
class Layout:
    """Decoder sizes from the manifest."""

    layers: int
    heads: int
    head_dim: int
    d_model: int
    vocab: int


class Seq2SeqCore:
    """Encoder + decoder sessions as a ``StepModel`` (batch 1) with batched helpers (beams)."""

    def __init__(
        self,
        encoder: Any,
        decoder: Any,
        tables: tuple[EmbeddingTable, EmbeddingTable],
        layout: Layout,
        decoder_start: int,
    ) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.encoder_table, self.decoder_table = tables
        self.layout = layout
        self.vocab_size = layout.vocab
        self.decoder_start = decoder_start
        n = layout.layers
        pairs = [f"{kind}_{i}" for i in range(n) for kind in ("k", "v")]
        self._past_names = [f"past_{p}" for p in pairs]
        self._cross_names = [f"cross_{p}" for p in pairs]
        self._outputs = ["logits"] + [f"present_{p}" for p in pairs]
        self._feed: dict[str, np.ndarray] = {}
        self._past: list[np.ndarray] = []
        self._length = 0

    # --- encoding ---------------------------------------------------------------------
    def encode(self, input_ids: Sequence[int], batch: int = 1) -> None:
        """Run the encoder once; the cross K/V are reused by every decoder step."""
        ids = np.asarray(input_ids, dtype=np.int64)[None]
        if ids.shape[1] == 0:
            raise InputError("the input is empty after tokenization", hint="pass some text")
        mask = np.ones_like(ids)
        cross = self.encoder.run(
            None, {"inputs_embeds": self.encoder_table(ids), "attention_mask": mask}
        )
        if batch > 1:
            cross = [np.repeat(c, batch, axis=0) for c in cross]
            mask = np.repeat(mask, batch, axis=0)
        self._feed = {
            "encoder_attention_mask": mask,
            **dict(zip(self._cross_names, cross, strict=True)),
        }
        self.reset(batch)

    def reset(self, batch: int = 1) -> None:
        """Forget all decoder positions (keeps the encoded input)."""
        shape = (batch, self.layout.heads, 0, self.layout.head_dim)
        self._past = [np.zeros(shape, np.float32) for _ in self._past_names]
        self._length = 0

    # --- StepModel ----------------------------------------------------------------------
    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Encode ``input_ids`` and return the logits after the decoder start token."""
        self.encode(input_ids)
        return self.step([self.decoder_start])

    def start_with(self, input_ids: Sequence[int], new_ids: Sequence[int]) -> np.ndarray:
        """``start`` and ``step(new_ids)`` in one decoder call: logits after each fed token."""
        self.encode(input_ids)
        return self.step([self.decoder_start, *new_ids])

    def step(self, new_ids: Sequence[int]) -> np.ndarray:
        """Append tokens; logits ``(len(new_ids), vocab)`` after each."""
        return self.step_batch(np.asarray(new_ids, dtype=np.int64)[None])[0]

    def rollback(self, length: int) -> None:
        """Forget decoder positions ``>= length``."""
        if not 0 <= length <= self._length:
            raise ValueError(f"cannot roll back to {length}; {self._length} positions cached")
        if length < self._length:
            self._past = [np.ascontiguousarray(p[:, :, :length]) for p in self._past]
            self._length = length

    @property
    def length(self) -> int:
        """Decoder positions cached so far (the start token included)."""
        return self._length

    # --- batched (beam search) ----------------------------------------------------------
    def start_batch(self, input_ids: Sequence[int], batch: int) -> np.ndarray:
        """Encode once for ``batch`` hypotheses; logits ``(batch, vocab)`` after the start token."""
        self.encode(input_ids, batch)
        return self.step_batch(np.full((batch, 1), self.decoder_start, np.int64))[:, -1]

    def step_batch(self, ids: np.ndarray) -> np.ndarray:
        """Append ``ids`` ``(batch, K)``; logits ``(batch, K, vocab)``."""
        feed = self._feed
        feed["inputs_embeds"] = self.decoder_table(ids)
        feed.update(zip(self._past_names, self._past, strict=True))
        outputs = self.decoder.run(self._outputs, feed)
        self._past = outputs[1:]
        self._length += ids.shape[1]
        return outputs[0]

    def reorder(self, rows: np.ndarray) -> None:
        """Keep cache rows ``rows`` (beam search picks which hypotheses continue)."""
        self._past = [p[rows] for p in self._past]
