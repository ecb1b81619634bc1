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

from edgert.decoding import ModelInfo
from edgert.errors import InputError
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable
from edgert.plugins.families.seq2seq.names import INPUTS_EMBEDS, LOGITS, cache_names


@dataclass(frozen=True)
class Layout:
    """Decoder sizes from the manifest."""

    layers: int
    heads: int
    head_dim: int
    d_model: int
    vocab: int


MASKED = np.float32(-1e9)  # a masked position's score: its softmax weight is exactly 0


class PositionBias:
    """T5's relative position bias and masks, built from per-distance vectors.

    The lean T5 graphs (``exporters/seq2seq_t5.py``) take the bias as an input instead of
    bucketing positions themselves. The vectors cover every distance up to the model's
    maximum one, past which all distances share the last bucket, so longer distances are
    clamped to the last entry. The decoder's table for every (query, key) pair is built
    once per 64 positions it grows by; a step slices its rows.
    """

    def __init__(self, encoder: np.ndarray, decoder: np.ndarray) -> None:
        self.encoder_vector = np.asarray(encoder, np.float32)  # [H, 2N - 1], key - query
        self.decoder_vector = np.asarray(decoder, np.float32)  # [H, M], query - key >= 0
        self._encoder: dict[int, np.ndarray] = {}
        self._decoder = np.zeros((len(self.decoder_vector), 0, 0), np.float32)

    def encoder(self, length: int) -> np.ndarray:
        """Bias ``[1, H, S, S]`` of an unpadded input of ``length`` tokens."""
        bias = self._encoder.get(length)
        if bias is None:
            reach = (self.encoder_vector.shape[1] - 1) // 2
            positions = np.arange(length)
            distance = np.clip(positions[None, :] - positions[:, None], -reach, reach)
            bias = np.ascontiguousarray(self.encoder_vector[:, distance + reach][None])
            if len(self._encoder) < 32:  # the usual input lengths
                self._encoder[length] = bias
        return bias

    def decoder(self, past: int, new: int) -> np.ndarray:
        """Bias ``[1, H, new, past + new]``: new token i sees keys up to ``past + i``."""
        total = past + new
        if total > self._decoder.shape[1]:
            self._decoder = self._table(-(-total // 64) * 64)
        return np.ascontiguousarray(self._decoder[None, :, past:total, :total])

    def _table(self, length: int) -> np.ndarray:
        positions = np.arange(length)
        distance = positions[:, None] - positions[None, :]
        last = self.decoder_vector.shape[1] - 1
        table = self.decoder_vector[:, np.clip(distance, 0, last)]
        table[:, distance < 0] = MASKED
        return table


class Seq2SeqCore:
    """Encoder + decoder sessions as a ``StepModel`` (batch 1) with batched helpers (beams)."""

    def __init__(
        self,
        encoder: Any,
        decoder: Any,
        tables: tuple[EmbeddingTable, EmbeddingTable],
        layout: Layout,
        decoder_start: int,
        bias: PositionBias | None = None,
    ) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.bias = bias  # lean T5 graphs: position bias and masks are inputs
        self.encoder_table, self.decoder_table = tables
        self.layout = layout
        self.vocab_size = layout.vocab
        self.decoder_start = decoder_start
        self.info = ModelInfo(decoder_start=decoder_start)  # the runtime adds the rest
        kv = cache_names(layout.layers)
        self._past_names, self._cross_names = kv.past, kv.cross
        self._outputs = [LOGITS, *kv.present]
        self._feed: dict[str, np.ndarray] = {}
        self._past: list[np.ndarray] = []
        self._length = 0
        self._prepared: tuple[int, ...] | None = None  # input encoded by ``prepare``

    # --- encoding ---------------------------------------------------------------------
    def encode(self, input_ids: Sequence[int], batch: int = 1) -> None:
        """Run the encoder once; the cross K/V are reused by every decoder step."""
        self._prepared = None
        ids = np.asarray(input_ids, dtype=np.int64)[None]
        if ids.shape[1] == 0:
            raise InputError("the input is empty after tokenization", hint="pass some text")
        embeds = self.encoder_table(ids)
        if self.bias is None:
            mask = np.ones_like(ids)
            cross = self.encoder.run(None, {INPUTS_EMBEDS: embeds, "attention_mask": mask})
            context = {"encoder_attention_mask": np.repeat(mask, batch, axis=0)}
        else:  # no padding: the cross-attention bias is all zeros
            bias = self.bias.encoder(ids.shape[1])
            cross = self.encoder.run(None, {INPUTS_EMBEDS: embeds, "attention_bias": bias})
            context = {"cross_bias": np.zeros((1, 1, 1, ids.shape[1]), np.float32)}
        if batch > 1:
            cross = [np.repeat(c, batch, axis=0) for c in cross]
        self._feed = {**context, **dict(zip(self._cross_names, cross, strict=True))}
        self.reset(batch)

    def reset(self, batch: int = 1) -> None:
        """Forget all decoder positions (keeps the encoded input)."""
        shape = (batch, self.layout.heads, 0, self.layout.head_dim)
        self._past = [np.zeros(shape, np.float32) for _ in self._past_names]
        self._length = 0

    # --- StepModel ----------------------------------------------------------------------
    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Encode ``input_ids`` (unless ``prepare`` did) and return the logits after the
        decoder start token."""
        return self.start_with(input_ids, [])

    def start_with(self, input_ids: Sequence[int], new_ids: Sequence[int]) -> np.ndarray:
        """``start`` and ``step(new_ids)`` in one decoder call: logits after each fed token."""
        if self._prepared != tuple(input_ids):
            self.encode(input_ids)
        self._prepared = None
        return self.step([self.decoder_start, *new_ids])

    def prepare(self, input_ids: Sequence[int]) -> None:
        """Encode ``input_ids`` ahead of a ``start_with`` on them (see ``StepModel``)."""
        self.encode(input_ids)
        self._prepared = tuple(input_ids)

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
        feed[INPUTS_EMBEDS] = self.decoder_table(ids)
        if self.bias is not None:
            feed["self_bias"] = self.bias.decoder(self._length, ids.shape[1])
        feed.update(zip(self._past_names, self._past, strict=True))
        outputs = self.decoder.run(self._outputs, feed)
        self._past = outputs[1:]
        self._length += ids.shape[1]
        return outputs[0]

    def reorder(self, rows: np.ndarray) -> None:
        """Keep cache rows ``rows`` (beam search picks which hypotheses continue)."""
        self._past = [p[rows] for p in self._past]
