"""Whisper's quality checks on a decoded window, as transformers' ``generate`` makes them:
the compression ratio of its tokens (a looping hypothesis compresses well), their average
log-probability, and the probability of ``<|nospeech|>`` after the start token. With
thresholds set, a failing window is decoded again at the next temperature (temperature
fallback), and a window that is probably silence is skipped."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgert.decoding import constrain
from edgert.errors import InputError


@dataclass(frozen=True)
class Thresholds:
    """When to fall back or skip; None: that check is off (transformers' defaults)."""

    temperatures: tuple[float, ...] = (0.0,)
    compression_ratio: float | None = None
    logprob: float | None = None
    no_speech: float | None = None

    @classmethod
    def of(
        cls, temperature: Any, compression_ratio: Any, logprob: Any, no_speech: Any
    ) -> Thresholds:
        if temperature is None:
            temperatures: tuple[float, ...] = (0.0,)
        elif isinstance(temperature, int | float) and not isinstance(temperature, bool):
            temperatures = (float(temperature),)
        elif (
            isinstance(temperature, list | tuple)
            and temperature
            and all(isinstance(t, int | float) and not isinstance(t, bool) for t in temperature)
        ):
            temperatures = tuple(float(t) for t in temperature)
        else:
            raise InputError(f"temperature must be a number or a list of numbers, got {temperature!r}",
                             hint="e.g. temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]")  # fmt: skip
        if any(t < 0 for t in temperatures):
            raise InputError(f"temperatures must be >= 0, got {list(temperatures)}")
        for name, value in (("compression_ratio_threshold", compression_ratio),
                            ("logprob_threshold", logprob), ("no_speech_threshold", no_speech)):  # fmt: skip
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise InputError(f"{name} must be a number, got {value!r}")
        if no_speech is not None and logprob is None:
            raise InputError(
                "no_speech_threshold needs logprob_threshold: a window is skipped as silence "
                "when both its average log-probability is below logprob_threshold and "
                "<|nospeech|> is above no_speech_threshold",
                hint="pass logprob_threshold too (Whisper's own: -1.0)",
            )
        return cls(temperatures, compression_ratio, logprob, no_speech)

    @property
    def checks(self) -> bool:
        return self.compression_ratio is not None or self.logprob is not None


def compression_ratio(tokens: Sequence[int], vocab_size: int) -> float:
    """Raw bytes of the token ids over their zlib-compressed bytes."""
    width = int(math.log2(vocab_size) / 8) + 1
    raw = b"".join(int(t).to_bytes(width, "little") for t in tokens)
    return len(raw) / len(zlib.compress(raw))


def average_logprob(core: Any, prompt: Sequence[int], tokens: Sequence[int], options: Any,
                    top_k: int = 0) -> float:  # fmt: skip
    """Mean log-probability of ``tokens`` (the end token included) under the scores they
    were chosen from: the constrained logits (with the sampling top-k cut where the window
    was sampled; transformers scales its scores back by the temperature), scored in one
    teacher-forced call."""
    if not tokens:
        return 0.0
    rows = core.start_with(list(prompt), list(tokens[:-1]))
    total = 0.0
    for i, token in enumerate(tokens):
        scores = constrain(rows[i], list(tokens[:i]), options).astype(np.float32)
        if top_k and top_k < scores.size:
            kth = np.partition(scores, -top_k)[-top_k]
            scores = np.where(scores < kth, np.float32(-np.inf), scores)
        top = scores.max()
        total += float(scores[token] - top - np.log(np.exp(scores - top).sum(dtype=np.float32)))
    return total / len(tokens)


def no_speech_probability(core: Any, fed: Sequence[int], start: int, prompt_length: int,
                          token: int, options: Any, beams: bool) -> float:  # fmt: skip
    """Probability of ``<|nospeech|>`` after the start token at ``fed[start]`` (what comes
    before it is an initial prompt or previous text): from raw logits where the start
    prompt has several tokens, else from the first step's constrained scores
    (log-probabilities under beam search), as transformers takes it."""
    raw = core.start_with(list(fed[: start + 1]), [])[0]
    if prompt_length > 1:
        scores = raw.astype(np.float64)
    elif beams:
        shifted = raw.astype(np.float64) - raw.max()
        logp = (shifted - np.log(np.exp(shifted).sum())).astype(np.float32)
        return float(np.exp(constrain(logp, [], options)[token]))
    else:
        scores = constrain(raw, [], options).astype(np.float64)
    probs = np.exp(scores - scores.max())
    return float(probs[token] / probs.sum())
