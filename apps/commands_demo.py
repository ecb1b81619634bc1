"""Transcribe spoken commands on the device with the embedded speech model (public API only).

    python apps/commands_demo.py demo-out/commands-auto             # the shipped held-out clips
    python apps/commands_demo.py BUNDLE kitchen.wav timer.flac ...  # your recordings

With no files, the demo transcribes the clips that ship with the model (voices and accents
that training never heard), prints its word error rate on them, the time per clip and the
real-time factor, then streams one clip in 250 ms blocks, as a microphone would deliver it.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from importlib import resources

import numpy as np

import edgert
from edgert.plugins.families.speech.metrics import word_error_rate

BLOCK_S = 0.25  # a microphone block in the streaming part


def shipped_clips() -> tuple[list[np.ndarray], list[str], list[str], int]:
    """The held-out clips, their reference texts and voices, and their sampling rate."""
    resource = resources.files("edgert.exporters.zoo") / "commands" / "heldout.npz"
    with resources.as_file(resource) as path, np.load(path, allow_pickle=False) as data:
        audio, offsets = data["audio"], data["offsets"]
        texts, voices = json.loads(str(data["texts"])), json.loads(str(data["voices"]))
        rate = int(data["sampling_rate"])
    clips = [audio[a:b].astype(np.float32) / 32768.0 for a, b in itertools.pairwise(offsets)]
    return clips, texts, voices, rate


def timed(model, audio) -> tuple[str, float]:
    started = time.perf_counter()
    text = model.transcribe(audio).text.strip()
    return text, (time.perf_counter() - started) * 1000


def files(model, paths: list[str]) -> None:
    for path in paths:
        text, ms = timed(model, path)
        print(f"  {path}: {text!r}  [{ms:.0f} ms]")


def held_out(model) -> None:
    clips, texts, voices, rate = shipped_clips()
    if rate != model.sampling_rate:
        sys.exit(f"the shipped clips are at {rate} Hz, the model takes {model.sampling_rate} Hz")
    model.transcribe(clips[0])  # the first call sets up the sessions' buffers
    hyps, times = [], []
    for clip, text, voice in zip(clips, texts, voices, strict=True):
        hyp, ms = timed(model, clip)
        hyps.append(hyp)
        times.append(ms)
        mark = " " if hyp == text else "x"
        print(f"  {mark} {voice:20s} {text!r:44s} -> {hyp!r}")
    audio_s = sum(c.size for c in clips) / rate
    print(f"\nword error rate on {len(clips)} held-out clips: {word_error_rate(hyps, texts):.1%} "
          f"({sum(h == t for h, t in zip(hyps, texts, strict=True))} clips exact)")  # fmt: skip
    print(f"per clip: median {np.median(times):.0f} ms, real-time factor "
          f"{sum(times) / 1000 / audio_s:.3f} (seconds of compute per second of audio)")  # fmt: skip
    clip, text = clips[0], texts[0]
    block = int(BLOCK_S * rate)
    print(f"\nstreaming {text!r} in {BLOCK_S * 1000:.0f} ms blocks: ", end="", flush=True)
    stats: dict = {}
    blocks = (clip[i : i + block] for i in range(0, clip.size, block))
    for piece in model.stream_audio(blocks, update_s=0.5, stats=stats):
        print(piece, end="", flush=True)
    update = stats.get("update_ms") or {}
    print(f"\n  {stats['updates']} updates, p50 {update.get('p50', 0):.0f} ms each")


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    model = edgert.load(argv[0])
    info = model.session_info
    print(f"{model.bundle.path}: device {model.profile.id}, provider {info.active}, "
          f"precision {model.bundle.manifest['precision']}")  # fmt: skip
    if argv[1:]:
        files(model, argv[1:])
    else:
        held_out(model)


if __name__ == "__main__":
    main(sys.argv[1:])
