"""The learning-rate schedule the built-in models' trainers share: linear warm-up, then
cosine decay to a floor. ``progress`` (0..1) is given by the caller, so a run bounded by a
wall-clock budget still anneals fully on a slower machine."""

from __future__ import annotations

import math


def warmup_cosine(progress: float, step: int, warmup: int, lr: float, floor: float) -> float:
    """The rate at ``step``: ``lr`` reached after ``warmup`` steps, then cosine to
    ``floor * lr`` at ``progress`` 1."""
    if step < warmup:
        return lr * (step + 1) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return lr * (floor + (1 - floor) * cos)
