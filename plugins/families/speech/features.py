"""Whisper's log-mel front-end in numpy: what ``WhisperFeatureExtractor`` computes, without
torch, from the filter bank the bundle ships (``mel_filters.npy``, written at export from
the checkpoint's own feature extractor, so the filters are its, bit for bit).

Audio is padded with zeros (or cut) to the window, framed with a periodic Hann window
after reflect padding by half a frame (``torch.stft(center=True)``), turned into a power
spectrum, projected on the mel filters, and compressed as Whisper does: ``log10`` with a
floor of 1e-10, everything within 8 of the maximum, then ``(x + 4) / 4``. Computed in
float64 and returned as float32: equal to the extractor's within 1e-4 (tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureSettings:
    """The feature extractor's parameters, as the bundle's manifest states them."""

    sampling_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    chunk_samples: int = 480000  # the encoder's window: 30 s at 16 kHz
    feature_size: int = 80

    @property
    def frames(self) -> int:
        return self.chunk_samples // self.hop_length

    @property
    def seconds(self) -> float:
        return self.chunk_samples / self.sampling_rate


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic, as torch's


def log_mel(audio: np.ndarray, filters: np.ndarray, settings: FeatureSettings,
            whole: bool = False) -> np.ndarray:  # fmt: skip
    """Features ``[feature_size, frames]`` of 16 kHz mono audio: of one window (padded
    with silence or cut to it), or with ``whole`` of all of it (``len // hop_length``
    frames, normalized over all of them, as the extractor does with ``truncation=False``
    for long-form transcription)."""
    clip = np.asarray(audio, np.float64).reshape(-1)
    length = max(clip.size, settings.n_fft) if whole else settings.chunk_samples
    samples = np.zeros(length, np.float64)
    clip = clip[:length]
    samples[: clip.size] = clip
    half = settings.n_fft // 2
    padded = np.pad(samples, half, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, settings.n_fft)[
        :: settings.hop_length
    ]
    spectrum = np.fft.rfft(frames[: length // settings.hop_length] * _hann(settings.n_fft), axis=1)
    power = spectrum.real**2 + spectrum.imag**2  # [frames, bins]
    mel = np.asarray(filters, np.float64).T @ power.T  # [feature_size, frames]
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)
