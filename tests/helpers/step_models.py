"""Step models with known outputs, for decoder tests that need no bundle."""

from __future__ import annotations

import numpy as np

from edgert.decoding import ModelInfo


class CountingModel:
    """Next token is always ``last + 1`` (mod vocab): greedy output is known in advance."""

    vocab_size = 11
    info = ModelInfo()

    def __init__(self):
        self.tokens: list[int] = []
        self.calls = 0

    def _logits(self, ids):
        table = np.roll(np.eye(self.vocab_size, dtype=np.float32), 1, axis=1)
        return table[np.asarray(ids)]

    def start(self, input_ids):
        self.tokens = []
        return self._logits([input_ids[-1]])

    def step(self, new_ids):
        self.calls += 1
        self.tokens.extend(new_ids)
        return self._logits(new_ids)

    def rollback(self, length):
        del self.tokens[length:]

    @property
    def length(self):
        return len(self.tokens)
