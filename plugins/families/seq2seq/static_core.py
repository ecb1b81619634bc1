"""The step interface over static-shape (NPU) seq2seq graphs.

Inputs are padded to the encoder's fixed length; the decoder keeps fixed-size K/V buffers
that the runtime fills slot by slot, and a bias input masks the unused slots. Rollback is a
length change: slots past it are masked on the next step, nothing is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgert.decoding import ModelInfo
from edgert.errors import InputError
from edgert.plugins.families.seq2seq.core import Layout
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable
from edgert.plugins.families.seq2seq.names import INPUTS_EMBEDS, LOGITS, cache_names

MASKED = -1.0e4  # zeroes a softmax weight; small enough for 16-bit QDQ activation ranges


class StaticSeq2SeqCore:
    """Batch-1 ``StepModel`` over static graphs (one new token per decoder call)."""

    def __init__(
        self, encoder: Any, decoder: Any, tables: tuple[EmbeddingTable, EmbeddingTable],
        layout: Layout, decoder_start: int, source_len: int, max_total: int, bias_table: np.ndarray,
    ) -> None:  # fmt: skip
        self.encoder, self.decoder = encoder, decoder
        self.encoder_table, self.decoder_table = tables
        self.layout, self.vocab_size = layout, layout.vocab
        self.decoder_start, self.source_len, self.max_total = decoder_start, source_len, max_total
        self.bias_table = bias_table
        # K tokens cost K calls: drafting cannot save calls here
        self.info = ModelInfo(decoder_start=decoder_start, multi_token_step=False)
        kv = cache_names(layout.layers)
        self._past_names, self._cross_names = kv.past, kv.cross
        self._outputs = [LOGITS, *kv.new]
        self._buffers: list[np.ndarray] = []
        self._feed: dict[str, np.ndarray] = {}
        self._length = 0

    def encode(self, input_ids: Sequence[int]) -> None:
        """Pad to the encoder bucket, run it once, reset the K/V buffers."""
        n = len(input_ids)
        if not 0 < n <= self.source_len:
            raise InputError(
                f"the input has {n} tokens; this static bundle takes 1..{self.source_len}",
                hint="shorten the input or pass truncate=True",
            )
        ids = np.zeros((1, self.source_len), np.int64)
        ids[0, :n] = input_ids
        mask = (np.arange(self.source_len) < n).astype(np.int64)[None]
        embeds = self.encoder_table(ids) * mask[..., None]
        cross = self.encoder.run(
            None, {INPUTS_EMBEDS: embeds.astype(np.float32), "attention_mask": mask}
        )
        bias = np.full((1, 1, 1, self.source_len), MASKED, np.float32)
        bias[..., :n] = 0.0
        shape = (1, self.layout.heads, self.max_total, self.layout.head_dim)
        self._buffers = [np.zeros(shape, np.float32) for _ in self._past_names]
        self._feed = {"cross_bias": bias, **dict(zip(self._cross_names, cross, strict=True))}
        self._feed.update(zip(self._past_names, self._buffers, strict=True))
        # One self-attention bias buffer, updated in place per token: positions past the
        # current one stay masked (``rollback`` masks again what it forgets).
        self._bias = np.full((1, self.layout.heads, 1, self.max_total + 1), MASKED, np.float32)
        self._feed["self_bias"] = self._bias
        self._token = np.zeros((1, 1), np.int64)
        self._length = 0

    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Encode and return logits after the decoder start token."""
        self.encode(input_ids)
        return self.step([self.decoder_start])

    def step(self, new_ids: Sequence[int]) -> np.ndarray:
        """Append tokens (one decoder call each); logits ``(len(new_ids), vocab)``."""
        rows = []
        for token in new_ids:
            position = self._length
            if position >= self.max_total:
                raise InputError(
                    f"the decoder's K/V buffers hold {self.max_total} positions; generation went past them",
                    hint="lower max_new_tokens, or export with a larger max_total_length",
                )
            feed = self._feed
            self._token[0, 0] = token
            feed[INPUTS_EMBEDS] = self.decoder_table(self._token)
            self._set_bias(position)
            outputs = self.decoder.run(self._outputs, feed)
            for buffer, new in zip(self._buffers, outputs[1:], strict=True):
                buffer[:, :, position] = new[:, :, 0]
            self._length += 1
            rows.append(outputs[0][0, -1])
        return np.stack(rows)

    def _set_bias(self, position: int) -> None:
        """The bias row of query ``position``: over the cached positions and the new one
        (the last slot); slots at ``position`` and after stay masked."""
        bias = self._bias
        bias[0, :, 0, :position] = self.bias_table[:, position, :position]
        bias[0, :, 0, self.max_total] = self.bias_table[:, position, position]

    def rollback(self, length: int) -> None:
        """Forget positions ``>= length`` (they are masked from now on)."""
        if not 0 <= length <= self._length:
            raise ValueError(f"cannot roll back to {length}; {self._length} positions cached")
        self._bias[0, :, 0, length : self.max_total] = MASKED
        self._length = length

    @property
    def length(self) -> int:
        """Decoder positions cached so far."""
        return self._length
