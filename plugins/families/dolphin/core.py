"""The step interface over a decoder-decoder's main decoder (``StepModel``).

A prompt reaches ``start`` as token ids in which one ``-1`` marks where the memory
embeddings go; the core looks the other ids up in the embedding table, splices the memory
rows in and runs the whole prompt as one multi-position call. The marker is a single id
whatever the number of memory rows, so a draft model with another memory size takes the
same prompt ids.

Positions are counted as a seq2seq decoder counts them: the prompt is one position (its
last one gives the first logits, like a decoder start token), every token after it one
more. Decoding plugins written for encoder-decoders therefore roll back and verify
decoder-decoders unchanged.
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

MEMORY = -1  # the prompt id that stands for the memory embeddings


@dataclass(frozen=True)
class Layout:
    """Main decoder sizes from the manifest."""

    layers: int
    kv_heads: int
    head_dim: int
    d_model: int
    vocab: int
    slots: int  # memory embeddings per context chunk


class DolphinCore:
    """Main decoder session + embedding table as a ``StepModel`` with batched helpers."""

    def __init__(self, decoder: Any, table: EmbeddingTable, layout: Layout) -> None:
        self.decoder, self.table, self.layout = decoder, table, layout
        self.vocab_size = layout.vocab
        self.info = (
            ModelInfo()
        )  # no start token (the prompt plays its part); the runtime adds the rest
        kv = cache_names(layout.layers)
        self._past_names = kv.past
        self._outputs = [LOGITS, *kv.present]
        self.memory = np.zeros((0, layout.d_model), np.float32)
        self.context: Any = None  # the runtime's ContextMemory: a draft's memory comes from it
        self._context: tuple[str, str] | None = None  # (text, policy) of ``memory``
        self._past: list[np.ndarray] = []
        self._prompt = 0  # cached positions that belong to the prompt
        self._cached = 0

    def use_memory(self, memory: np.ndarray, context: tuple[str, str] | None = None) -> None:
        """Memory embeddings ``[rows, d_model]`` for the next prompts; ``context`` (text,
        policy) is what they were made from, for a decoder-decoder draft (``prepare_draft``)."""
        self.memory = np.asarray(memory, np.float32)
        self._context = context

    def prepare_draft(self, draft: Any) -> None:
        """A decoder-decoder draft encodes the same context with its own context encoder
        (its memory rows have its own width); other drafts need nothing."""
        if isinstance(draft, DolphinCore) and draft.context is not None and self._context:
            text, policy = self._context
            draft.use_memory(draft.context.memory(text, context_policy=policy)[0])

    def prompt_embeddings(self, prompt_ids: Sequence[int]) -> np.ndarray:
        """``[1, P, d_model]``: token rows with the memory spliced in at the marker."""
        ids = np.asarray(prompt_ids, np.int64)
        marks = np.flatnonzero(ids == MEMORY)
        if len(marks) != 1:
            raise InputError(
                f"a prompt needs exactly one memory marker ({MEMORY}), got {len(marks)}"
            )
        cut = int(marks[0])
        rows = [self.table(ids[:cut]), self.memory, self.table(ids[cut + 1 :])]
        return np.concatenate(rows)[None]

    # --- StepModel ----------------------------------------------------------------------
    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Run the prompt; logits ``(1, vocab)`` of its last position."""
        return self.start_batch(input_ids, 1)[:1]

    def start_with(self, input_ids: Sequence[int], new_ids: Sequence[int]) -> np.ndarray:
        """``start`` and ``step(new_ids)`` in one call: logits after the prompt and each token."""
        embeds = self.prompt_embeddings(input_ids)
        prompt = embeds.shape[1]
        if new_ids:
            embeds = np.concatenate([embeds, self.table(np.asarray([new_ids], np.int64))], axis=1)
        self._reset(1)
        logits = self._run(embeds)[0, prompt - 1 :]
        self._prompt = prompt
        return logits

    def step(self, new_ids: Sequence[int]) -> np.ndarray:
        """Append tokens; logits ``(len(new_ids), vocab)`` after each."""
        return self.step_batch(np.asarray(new_ids, dtype=np.int64)[None])[0]

    def rollback(self, length: int) -> None:
        """Forget positions ``>= length`` (the prompt counts as one position)."""
        if not 1 <= length <= self.length:
            raise ValueError(f"cannot roll back to {length}; {self.length} positions cached")
        keep = self._prompt - 1 + length
        if keep < self._cached:
            self._past = [np.ascontiguousarray(p[:, :, :keep]) for p in self._past]
            self._cached = keep

    @property
    def length(self) -> int:
        """Positions cached so far, the prompt counted as one."""
        return self._cached - self._prompt + 1

    # --- batched (beam search) ----------------------------------------------------------
    def start_batch(self, input_ids: Sequence[int], batch: int) -> np.ndarray:
        """Run the prompt once and copy its cache to ``batch`` rows; logits ``(batch, vocab)``."""
        embeds = self.prompt_embeddings(input_ids)
        self._reset(1)
        logits = self._run(embeds)[:, -1]
        self._prompt = self._cached
        if batch > 1:
            self._past = [np.repeat(p, batch, axis=0) for p in self._past]
            logits = np.repeat(logits, batch, axis=0)
        return logits

    def _reset(self, batch: int) -> None:
        shape = (batch, self.layout.kv_heads, 0, self.layout.head_dim)
        self._past = [np.zeros(shape, np.float32) for _ in self._past_names]
        self._cached = 0

    def step_batch(self, ids: np.ndarray) -> np.ndarray:
        """Append ``ids`` ``(batch, K)``; logits ``(batch, K, vocab)``."""
        return self._run(self.table(ids))

    def reorder(self, rows: np.ndarray) -> None:
        """Keep cache rows ``rows`` (beam search picks which hypotheses continue)."""
        self._past = [p[rows] for p in self._past]

    def _run(self, embeds: np.ndarray) -> np.ndarray:
        feed = dict(zip(self._past_names, self._past, strict=True))
        feed[INPUTS_EMBEDS] = embeds
        outputs = self.decoder.run(self._outputs, feed)
        self._past = outputs[1:]
        self._cached += embeds.shape[1]
        return outputs[0]


MARKER = "<context>"  # where a prompt template puts the memory embeddings


def prompt_ids(tokenizer: Any, template: str, question: str) -> list[int]:
    """Prompt ids for ``question``: the template's text around ``MARKER`` tokenized on
    either side (special tokens such as BOS only at the start), the marker as ``MEMORY``."""
    before, _, after = template.replace("{question}", question).partition(MARKER)
    head = tokenizer.encode(before).ids
    tail = tokenizer.encode(after, add_special_tokens=False).ids if after else []
    return [*head, MEMORY, *tail]


def memory_rows(
    session: Any, context: Sequence[int], memory_ids: Sequence[int], static_len: int | None = None
) -> np.ndarray:
    """Run the memory graph on one context chunk: ``[slots, d_model]``.

    Static graphs (NPUs) take a fixed length: the chunk is left-padded so the memory tokens
    stay last, and the causal mask and positions are inputs that keep padding invisible.
    """
    ids = [*context, *memory_ids]
    if static_len is None:
        return session.run(None, {"input_ids": np.asarray([ids], np.int64)})[0][0]
    n = len(ids)
    if n > static_len:
        raise InputError(f"the context chunk has {n - len(memory_ids)} tokens; this static "
                         f"bundle takes at most {static_len - len(memory_ids)}")  # fmt: skip
    pad = static_len - n
    padded = np.zeros((1, static_len), np.int64)
    padded[0, pad:] = ids
    positions = np.zeros((1, static_len), np.int64)
    positions[0, pad:] = np.arange(n)
    keys = np.arange(static_len)
    allowed = (keys[None, :] <= keys[:, None]) & (keys[None, :] >= pad)
    mask = np.where(allowed, 0.0, STATIC_MASKED).astype(np.float32)[None, None]
    feed = {"input_ids": padded, "attention_mask": mask, "position_ids": positions}
    return session.run(None, feed)[0][0]


STATIC_MASKED = -1.0e3  # zeroes a softmax weight; a 16-bit mask input keeps 0.015 steps
