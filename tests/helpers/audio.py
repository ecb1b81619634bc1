"""Test audio for the speech front-end."""

from __future__ import annotations

import wave

import numpy as np


def speech_like(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """Seeded audio with speech-like structure: voiced harmonics under an envelope, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 110 + 60 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.3 * t + rng.uniform(0, 6)), 0, None) ** 2
    audio = 0.3 * envelope * voiced + 0.01 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


def write_wav(path, samples, rate, channels=1):
    """Mono float ``samples`` as a 16-bit WAV file, copied to ``channels`` channels."""
    ints = np.clip(np.round(np.repeat(samples[:, None], channels, axis=1) * 32767), -32768, 32767)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.astype("<i2").tobytes())
    return path
