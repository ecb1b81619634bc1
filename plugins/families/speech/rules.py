"""Whisper's decoding rules, as logits rules every decoder applies after the shared
constraints (``DecodingOptions.rules``): tokens suppressed at the first position, and the
timestamp grammar.

Same semantics and order as transformers' ``SuppressTokensAtBeginLogitsProcessor`` and
``WhisperTimeStampLogitsProcessor`` (which run after the generic processors there too):

- ``<|notimestamps|>`` is never generated;
- timestamps come in pairs (a segment's end, then the next one's start), except right
  before the end token: after one timestamp, text is forbidden; after two, timestamps are;
- timestamps never decrease, and ``<|0.00|>`` is not repeated;
- the first token is a timestamp, at most ``max_initial_timestamp_index`` steps in;
- when the timestamps together are more likely than the likeliest text token, a
  timestamp is emitted.

Each rule reads only the tokens generated so far, so a multi-token verify call that
applies it row by row gives the same tokens as one-token steps (lossless decoders stay
greedy's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WhisperRules:
    """The rules for one decoding window. ``timestamp_begin`` None: no timestamp grammar
    (``<|notimestamps|>`` is in the prompt)."""

    begin_suppress: tuple[int, ...] = ()
    timestamp_begin: int | None = None  # id of <|0.00|>: no_timestamps + 1
    no_timestamps: int | None = None
    eos: int = 0  # ids below it are text
    max_initial_timestamp_index: int | None = None

    def __call__(self, scores: np.ndarray, generated: Sequence[int]) -> None:
        """Mask ``scores`` (one position's, 1-D) in place."""
        if not generated and self.begin_suppress:
            scores[list(self.begin_suppress)] = -np.inf
        begin = self.timestamp_begin
        if begin is None:
            return
        scores[self.no_timestamps] = -np.inf
        last = len(generated) >= 1 and generated[-1] >= begin
        penultimate = len(generated) < 2 or generated[-2] >= begin
        if last:
            if penultimate:
                scores[begin:] = -np.inf
            else:
                scores[: self.eos] = -np.inf
        stamps = [t for t in generated if t >= begin]
        if stamps:
            floor = stamps[-1] if last and not penultimate else stamps[-1] + 1
            scores[begin:floor] = -np.inf
        if not generated:
            scores[:begin] = -np.inf
            if self.max_initial_timestamp_index is not None:
                scores[begin + self.max_initial_timestamp_index + 1 :] = -np.inf
        top = scores.max()
        if not np.isfinite(top):
            return
        logp = scores.astype(np.float32) - top  # log-softmax in float32, as transformers'
        logp -= np.log(np.exp(logp).sum(dtype=np.float32))
        stamps = logp[begin:]
        peak = stamps.max()
        if np.isfinite(peak) and peak + np.log(np.exp(stamps - peak).sum()) > logp[:begin].max():
            scores[:begin] = -np.inf
