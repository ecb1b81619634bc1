"""Reading speech: WAV or FLAC of any rate and channel count, as 16 kHz mono float32.

``soundfile`` (libsndfile) reads every format it knows; without it, PCM WAV files are read
with the standard library. Other rates are resampled with ``soxr`` (high quality). Both
come with ``pip install 'edgert[speech]'``; the message says so where one is missing.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from edgert.errors import InputError

SPEECH_EXTRA = "pip install 'edgert[speech]' (soundfile, soxr)"


def read_audio(path: str | Path, rate: int = 16000) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at ``rate`` Hz."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such audio file: {path}", hint="give a .wav or .flac file")
    samples, source_rate = _read(path)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return resample(samples.astype(np.float32), source_rate, rate)


def _read(path: Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
        except RuntimeError as exc:  # libsndfile's own message says what is wrong
            raise InputError(f"cannot read {path} as audio: {exc}",
                             hint="give a WAV or FLAC file") from exc  # fmt: skip
        return np.asarray(data), int(rate)
    if path.suffix.lower() != ".wav":
        raise InputError(f"reading {path.suffix or 'this'} files needs soundfile",
                         hint=SPEECH_EXTRA)  # fmt: skip
    return _read_wav(path)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """PCM WAV with the standard library (8-bit unsigned, 16/24/32-bit signed)."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise InputError(f"cannot read {path} as PCM WAV: {exc}",
                         hint=f"float or compressed WAV needs soundfile: {SPEECH_EXTRA}") from exc  # fmt: skip
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        data = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8) / float(1 << 23)
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        data = np.frombuffer(raw, f"<i{width}").astype(np.float32) / float(np.iinfo(kind).max + 1)
    else:
        raise InputError(f"{path}: {8 * width}-bit WAV samples are not supported",
                         hint="use 8, 16, 24 or 32-bit PCM")  # fmt: skip
    return np.asarray(data, np.float32).reshape(-1, channels), rate


def resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    """``samples`` at ``target`` Hz (unchanged when the rates agree)."""
    if source == target:
        return samples
    try:
        import soxr
    except ImportError as exc:
        raise InputError(f"the audio is at {source} Hz; the model needs {target} Hz and "
                         "resampling needs soxr", hint=SPEECH_EXTRA) from exc  # fmt: skip
    return soxr.resample(samples, source, target, quality="HQ").astype(np.float32)


def seeded_speech(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """A seeded speech-like signal (voiced harmonics with a moving pitch, in syllable-length
    bursts, over a little noise): what validation and profiling decode when given no audio."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    bursts = np.maximum(0, np.sin(2 * np.pi * rng.uniform(3, 5) * t))
    return (0.3 * voiced * bursts + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
