"""An LRU of memory embeddings, bounded by bytes, keyed by a hash of the context tokens.

Encoding a long context is the expensive part of a decoder-decoder's first token; asking
several questions about one document should pay for it once. Keys are sha256 digests of
the token ids (and the chunking that produced the rows), so equal texts hit regardless
of where they came from, and nothing of the text itself is kept.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

DEFAULT_BYTES = 64 * 2**20  # the profile's runtime.cache_mib sets it per device


def context_key(ids: Sequence[int], *parts: object) -> str:
    """Digest of the context token ids plus anything else that changes the rows."""
    digest = hashlib.sha256(np.asarray(ids, np.int64).tobytes())
    for part in parts:
        digest.update(repr(part).encode())
    return digest.hexdigest()


class MemoryCache:
    """Least-recently-used memory rows up to ``max_bytes`` (0 turns caching off).

    Safe to share between threads: ``model.memory()`` may run outside a generation's lock.
    """

    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        """The rows for ``key`` (now the most recently used), or None."""
        with self._lock:
            rows = self._items.get(key)
            if rows is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return rows

    def put(self, key: str, rows: np.ndarray) -> None:
        """Keep ``rows``, evicting the least recently used until the total fits.

        Rows larger than the whole budget are not kept (they would evict everything).
        """
        if rows.nbytes > self.max_bytes:
            return
        rows = np.array(rows, copy=True)
        rows.setflags(write=False)
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key).nbytes
            self._items[key] = rows
            self.bytes += rows.nbytes
            while self.bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.bytes -= evicted.nbytes

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget every entry (statistics are kept)."""
        with self._lock:
            self._items.clear()
            self.bytes = 0
