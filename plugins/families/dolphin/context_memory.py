"""A decoder-decoder's context encoder: context text -> memory rows, cached, in windows.

Kept apart from the model object so that a draft model's core can hold its own encoder
without pointing back at the model (no reference cycle keeps sessions and their memory
arenas alive after the model is dropped).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgert.errors import InputError
from edgert.plugins.families.dolphin.core import memory_rows
from edgert.plugins.families.dolphin.memory_cache import DEFAULT_BYTES, MemoryCache, context_key

POLICIES = ("reject", "chunk")


class ContextMemory:
    """Memory rows of contexts through one memory-graph session, with an LRU in front."""

    def __init__(
        self, session: Any, tokenizer: Any, memory_ids: list[int], *, window: int,
        max_chunks: int, static: bool = False, cache_bytes: int = DEFAULT_BYTES,
    ) -> None:  # fmt: skip
        self.session, self.tokenizer, self.memory_ids = session, tokenizer, list(memory_ids)
        self.window, self.max_chunks = window, max_chunks
        self.static_length = window + len(self.memory_ids) if static else None
        self.cache = MemoryCache(cache_bytes)

    def memory(
        self, context: str, *, context_policy: str = "reject"
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Rows ``[chunks * slots, d_model]`` of ``context`` and how they were made."""
        if not isinstance(context, str) or not context.strip():
            raise InputError(
                "the context is empty",
                hint="pass the long text as context=... (--context FILE); the question goes "
                "in the text argument",
            )
        if context_policy not in POLICIES:
            raise InputError(
                f"unknown context_policy {context_policy!r}",
                hint=f"choose one of: {', '.join(POLICIES)}",
            )
        ids = self.tokenizer.encode(context).ids
        chunks = self.chunks(ids, context_policy)
        key = context_key(ids, len(chunks))
        started = time.perf_counter()
        rows = self.cache.get(key)
        hit = rows is not None
        if rows is None:
            rows = np.concatenate(
                [
                    memory_rows(self.session, chunk, self.memory_ids, self.static_length)
                    for chunk in chunks
                ]
            )
            self.cache.put(key, rows)
        return rows, {
            "context_tokens": len(ids),
            "context_chunks": len(chunks),
            "memory_cache_hit": hit,
            "memory_ms": (time.perf_counter() - started) * 1000,
        }

    def chunks(self, ids: list[int], policy: str) -> list[list[int]]:
        """The context as one window, or as consecutive windows under ``"chunk"``."""
        window, limit = self.window, self.max_chunks
        if len(ids) <= window:
            return [ids]
        if policy == "reject":
            raise InputError(
                f"the context has {len(ids)} tokens; the context encoder takes at most {window}",
                hint="shorten the context, or pass context_policy='chunk' "
                f"(--context-policy chunk) to encode it in windows of {window} tokens",
            )
        chunks = [ids[i : i + window] for i in range(0, len(ids), window)]
        if len(chunks) > limit:
            raise InputError(
                f"the context has {len(ids)} tokens: {len(chunks)} windows of {window}, more "
                f"than the {limit} this bundle's prompt holds",
                hint=f"shorten the context to at most {window * limit} tokens",
            )
        return chunks
