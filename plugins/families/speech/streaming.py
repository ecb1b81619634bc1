"""Streaming transcription's commit policy: local agreement between hypotheses.

As audio arrives, the growing window is decoded again from its start (the baseline of
streaming Whisper: the encoder sees the whole window each time). A token is committed,
and shown, once two consecutive hypotheses agree on it and on everything before it; the
rest may still change. When the window is full, or the audio ends, its last hypothesis is
committed in full and a new window starts after it.

The policy also measures itself: how much audio arrived between a token's first
appearance (at its position, after the same prefix) and its commit, the lag a listener
sees beyond the decoding time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class LocalAgreement:
    """Committed tokens of one window and the hypothesis they were last compared with."""

    committed: list[int] = field(default_factory=list)
    previous: list[int] = field(default_factory=list)
    seen_at: list[float] = field(default_factory=list)  # audio time each position appeared
    lags: list[float] = field(default_factory=list)  # seconds of audio, one per committed token

    def update(self, hypothesis: Sequence[int], now: float) -> list[int]:
        """Commit what ``hypothesis`` and the previous one agree on; returns the newly
        committed tokens. ``now``: seconds of audio heard so far."""
        hypothesis = list(hypothesis)
        agree = 0
        for a, b in zip(self.previous, hypothesis, strict=False):
            if a != b:
                break
            agree += 1
        self.seen_at = self.seen_at[:agree] + [now] * (len(hypothesis) - agree)
        self.previous = hypothesis
        return self._commit(max(agree, len(self.committed)), hypothesis, now)

    def finish(self, hypothesis: Sequence[int], now: float) -> list[int]:
        """Commit the rest of the window's last hypothesis (beyond what is committed)."""
        hypothesis = list(hypothesis)
        start = len(self.committed)
        self.update(hypothesis, now)
        self._commit(len(hypothesis), hypothesis, now)
        return self.committed[start:]

    def _commit(self, upto: int, hypothesis: list[int], now: float) -> list[int]:
        start = len(self.committed)
        if upto <= start or hypothesis[:start] != self.committed:
            return []  # nothing new, or the hypothesis changed what is already shown
        new = hypothesis[start:upto]
        self.committed.extend(new)
        self.lags.extend(now - self.seen_at[i] for i in range(start, upto))
        return new
