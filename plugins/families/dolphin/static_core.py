"""The step interface over static-shape (NPU) decoder-decoder graphs.

The main decoder keeps fixed-size K/V buffers that the runtime fills one position per call
(the prompt too), and an additive mask input hides the unused slots: rollback moves a
pointer, nothing is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgert.decoding import ModelInfo
from edgert.errors import InputError
from edgert.plugins.families.dolphin.core import STATIC_MASKED, DolphinCore, Layout
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable
from edgert.plugins.families.seq2seq.names import INPUTS_EMBEDS, LOGITS, cache_names


class StaticDolphinCore(DolphinCore):
    """Batch-1 ``StepModel`` over static graphs: one position per decoder call into
    fixed-size K/V buffers; the mask input hides unused slots, so rollback moves a pointer."""

    def __init__(self, decoder: Any, table: EmbeddingTable, layout: Layout, max_total: int) -> None:
        super().__init__(decoder, table, layout)
        self.max_total = max_total
        self.info = ModelInfo(multi_token_step=False)  # K tokens cost K calls here
        self._outputs = [LOGITS, *cache_names(layout.layers).new]
        self._buffers: list[np.ndarray] = []
        self._feed: dict[str, np.ndarray] = {}

    def start_batch(self, input_ids: Sequence[int], batch: int) -> np.ndarray:
        if batch != 1:
            raise InputError(
                "static (NPU) bundles decode one hypothesis at a time",
                hint="use greedy or sampling on this profile",
            )
        embeds = self.prompt_embeddings(input_ids)[0]
        shape = (1, self.layout.kv_heads, self.max_total, self.layout.head_dim)
        self._buffers = [np.zeros(shape, np.float32) for _ in self._past_names]
        # One feed for the whole generation, updated in place per token: the mask opens
        # each slot as it is written (``rollback`` masks again what it forgets).
        mask = np.full((1, 1, 1, self.max_total + 1), STATIC_MASKED, np.float32)
        mask[..., self.max_total] = 0.0  # the new position itself
        self._feed = dict(zip(self._past_names, self._buffers, strict=True))
        self._feed.update(attention_mask=mask, position_ids=np.zeros((1, 1), np.int64))
        self._cached = 0
        logits = self._run_rows(embeds)[-1:]
        self._prompt = self._cached
        return logits

    def step_batch(self, ids: np.ndarray) -> np.ndarray:
        return self._run_rows(self.table(ids[0]))[None]

    def rollback(self, length: int) -> None:
        if not 1 <= length <= self.length:
            raise ValueError(f"cannot roll back to {length}; {self.length} positions cached")
        self._cached = self._prompt - 1 + length
        self._feed["attention_mask"][..., self._cached : self.max_total] = STATIC_MASKED

    def reorder(self, rows: np.ndarray) -> None:
        raise InputError("static (NPU) bundles do not run beam search", hint="use greedy")

    def _run_rows(self, rows: np.ndarray) -> np.ndarray:
        out = []
        feed = self._feed
        mask, positions = feed["attention_mask"], feed["position_ids"]
        for row in rows:
            position = self._cached
            if position >= self.max_total:
                raise InputError(
                    f"the decoder's K/V buffers hold {self.max_total} positions (prompt "
                    "included); generation went past them",
                    hint="lower max_new_tokens or shorten the question",
                )
            feed[INPUTS_EMBEDS] = row[None, None].astype(np.float32)
            positions[0, 0] = position
            outputs = self.decoder.run(self._outputs, feed)
            for buffer, new in zip(self._buffers, outputs[1:], strict=True):
                buffer[:, :, position] = new[:, :, 0]
            mask[..., position] = 0.0  # cached from now on
            self._cached += 1
            out.append(outputs[0][0, -1])
        return np.stack(out)
