"""Whisper's prompt and its 30-second windows: which tokens start the decoder, and how a
window's tokens become segments and where the next window starts.

The same steps as transformers' ``generate`` (``_retrieve_init_tokens``,
``_retrieve_segment``), so that a bundle's tokens are the checkpoint's:

- the prompt is ``<|startoftranscript|>``, then the checkpoint's ``forced_decoder_ids``
  (when neither language nor task is given), the language (given, or detected on the
  first window by a multilingual model), the task, and ``<|notimestamps|>`` unless
  timestamps are asked for;
- a window's tokens are cut after every pair of consecutive timestamps; when the window
  ends with a lone timestamp (or has no pair) all of it is consumed and the next window
  starts after it, else the next starts at the last complete segment's end, and the
  tokens after that segment are decoded again there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgert.errors import InputError


@dataclass(frozen=True)
class Segment:
    """A stretch of transcript: start and end in seconds from the audio's start, its
    tokens (timestamps included) and text."""

    start: float
    end: float
    token_ids: tuple[int, ...]
    text: str = ""


def language_id(rules: Mapping[str, Any], language: str) -> int:
    """The token of ``language``: a code (``en``), a token (``<|en|>``) or a name the
    bundle lists (``english``)."""
    table = rules["lang_to_id"]
    key = language.lower()
    names = rules.get("languages") or {}
    token = key if key in table else f"<|{names.get(key, key)}|>"
    if token not in table:
        codes = ", ".join(sorted(t.strip("<|>") for t in table)) or "none: English-only"
        raise InputError(f"language {language!r} is not one this model knows",
                         hint=f"valid languages: {codes}")  # fmt: skip
    return int(table[token])


def init_tokens(rules: Mapping[str, Any], language: str | None, task: str | None,
                timestamps: bool, detect: Callable[[], int]) -> tuple[list[int], str | None]:  # fmt: skip
    """The decoder prompt and the language token in it (``detect()`` runs only when a
    multilingual model is given no language and its forced ids name none)."""
    if rules.get("is_multilingual") is False and (language is not None or task is not None):
        raise InputError(
            "this is an English-only model: it takes no language or task",
            hint="leave language and task unset",
        )
    tasks = rules["task_to_id"]
    if task is not None and task not in tasks:
        raise InputError(f"task {task!r} is not one this model knows",
                         hint=f"valid tasks: {', '.join(sorted(tasks)) or 'none'}")  # fmt: skip
    tokens: list[int | None] = [rules["decoder_start_token_id"]]
    if task is None and language is None:
        forced = [tuple(pair) for pair in rules.get("forced_decoder_ids") or []]
        position = 1
        while forced and forced[0][0] == position:
            tokens.append(forced.pop(0)[1])
            position += 1
    undefined = len(tokens) <= 1 or tokens[1] is None
    chosen: int | None = None
    if language is not None:
        chosen = language_id(rules, language)
    elif rules["lang_to_id"] and undefined:
        chosen = detect()
    if chosen is not None:
        if len(tokens) > 1:
            tokens[1] = chosen
        else:
            tokens.append(chosen)
    if task is not None:
        tokens.append(tasks[task])
    elif language is not None and tasks and not any(t in tokens for t in tasks.values()):
        tokens.append(tasks["transcribe"])
    no_timestamps = rules["no_timestamps_token_id"]
    if no_timestamps is None:  # an old generation config: no timestamp tokens known
        pass
    elif not timestamps and tokens[-1] != no_timestamps:
        tokens.append(no_timestamps)
    elif timestamps and tokens[-1] == no_timestamps:
        tokens.pop()
    prompt = [int(t) for t in tokens if t is not None]
    names = {int(v): k for k, v in rules["lang_to_id"].items()}
    language_token = next((names[t] for t in prompt if t in names), None)
    return prompt, language_token


def cut_segments(tokens: list[int], begin: int, offset: float, frames: int, precision: float,
                 stride: int, frame_seconds: float) -> tuple[list[Segment], int]:  # fmt: skip
    """A window's segments and how many feature frames it consumed.

    ``tokens``: the window's generated tokens without the end token; ``begin``: the id of
    ``<|0.00|>``; ``offset``: the window's start in seconds; ``frames``: the audio frames
    in it (less than a full window at the end of the audio); ``frame_seconds``: the
    feature hop in seconds.

    One departure: where the last complete segment ends at ``<|0.00|>`` (a model emitting
    timestamps with ``<|notimestamps|>`` in its prompt can), transformers would decode the
    same window again forever; here the window is consumed.
    """
    stamp = [t >= begin for t in tokens]
    lone_end = stamp[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(tokens) - 1) if stamp[i] and stamp[i + 1]]
    if cuts:
        if lone_end:
            cuts.append(len(tokens))
        else:
            cuts[-1] += 1
        segments, last = [], 0
        for index, cut in enumerate(cuts):
            piece = tokens[last:cut]
            end_at = -1 if index < len(cuts) - 1 or lone_end else -2
            segments.append(Segment(offset + (piece[0] - begin) * precision,
                                    offset + (piece[end_at] - begin) * precision, tuple(piece)))  # fmt: skip
            last = cut
        if lone_end:
            return segments, frames
        return segments, (tokens[last - 2] - begin) * stride or frames
    stamps = [t for t in tokens if t >= begin]
    # the window's length in timestamp steps, computed in float32 as transformers does
    # (for some lengths it differs from frames // 2 by one step)
    step = np.float32(np.float32(frames) * np.float32(frame_seconds)) / np.float32(precision)
    position: float = int(step)
    if stamps and stamps[-1] != begin:
        position = float(stamps[-1] - begin)
    return [Segment(offset, offset + position * precision, tuple(tokens))], frames
