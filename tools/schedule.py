"""The learning-rate schedule the built-in models' trainers share: linear warm-up, then
cosine decay to a floor. ``progress`` (0..1) is given by the caller, so a run bounded by a
wall-clock budget still anneals fully on a slower machine."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


def warmup_cosine(progress: float, step: int, warmup: int, lr: float, floor: float) -> float:
    """The rate at ``step``: ``lr`` reached after ``warmup`` steps, then cosine to
    ``floor * lr`` at ``progress`` 1."""
    if step < warmup:
        return lr * (step + 1) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return lr * (floor + (1 - floor) * cos)


@dataclass
class Budget:
    """A training run bounded by steps and by wall-clock seconds, whichever ends first;
    ``progress`` is how far along the further of the two is (what the schedule follows)."""

    steps: int
    seconds: float
    start: float = field(default_factory=time.perf_counter)
    stopped_by: str = "steps"

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def progress(self, step: int) -> float | None:
        """Progress at ``step`` (0..1), or None once either limit is reached."""
        if step >= self.steps:
            return None
        elapsed = self.elapsed()
        if elapsed >= self.seconds:
            self.stopped_by = "minutes"
            return None
        return max(step / self.steps, elapsed / self.seconds)
