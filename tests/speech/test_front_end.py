"""Whisper's front-end without torch: log-mel features equal to transformers'
``WhisperFeatureExtractor`` within 1e-4, and audio of any rate and channel count read as
16 kHz mono."""

from __future__ import annotations

import builtins
import wave

import numpy as np
import pytest
from helpers.audio import speech_like

from edgert.errors import InputError
from edgert.plugins.families.speech.audio import read_audio, resample
from edgert.plugins.families.speech.features import FeatureSettings, log_mel

RATE = 16000


def tone(seconds, hz=440.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


AUDIO = {
    "speech-like 3 s": lambda: speech_like(3.0, 0),
    "speech-like 12.3 s": lambda: speech_like(12.3, 1),
    "noise 1 s": lambda: (0.2 * np.random.default_rng(2).standard_normal(RATE)).astype(np.float32),
    "tone 5 s": lambda: tone(5.0),
    "silence 2 s": lambda: np.zeros(2 * RATE, np.float32),
    "shorter than a frame": lambda: tone(0.01),
    "longer than the window (cut)": lambda: speech_like(31.0, 3),
    "loud, clipped": lambda: np.clip(8 * speech_like(4.0, 4), -1, 1),
}


@pytest.mark.parametrize("bins", [80, 128])
@pytest.mark.parametrize("name", sorted(AUDIO))
def test_log_mel_equals_the_feature_extractor(name, bins):
    transformers = pytest.importorskip("transformers")
    extractor = transformers.WhisperFeatureExtractor(feature_size=bins)
    audio = AUDIO[name]()
    expected = extractor(audio, sampling_rate=RATE, return_tensors="np").input_features[0]
    got = log_mel(audio, extractor.mel_filters, FeatureSettings(feature_size=bins))
    assert got.shape == expected.shape == (bins, 3000)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4


def write_wav(path, samples, rate, width=2, channels=1):
    data = np.asarray(samples, np.float64).reshape(-1, channels)
    if width == 1:
        raw = np.clip(np.round(data * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.clip(np.round(data * (2**23 - 1)), -(2**23), 2**23 - 1).astype(np.int32)
        raw = np.stack([(ints >> s) & 0xFF for s in (0, 8, 16)], axis=-1).astype(np.uint8).tobytes()
    else:
        kind = np.int16 if width == 2 else np.int32
        scale = np.iinfo(kind).max
        raw = np.clip(np.round(data * scale), -scale - 1, scale).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


@pytest.fixture(params=["soundfile", "standard library"])
def reader(request, monkeypatch):
    """Read with soundfile where installed, and with the standard library's wave."""
    if request.param == "soundfile":
        pytest.importorskip("soundfile")
    else:
        real_import = builtins.__import__

        def no_soundfile(name, *args, **kwargs):
            if name == "soundfile":
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_soundfile)
    return request.param


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_wav_of_every_width(tmp_path, reader, width):
    audio = speech_like(1.0, 5) * 0.8
    path = write_wav(tmp_path / "a.wav", audio, RATE, width=width)
    got = read_audio(path)
    assert got.dtype == np.float32 and got.shape == audio.shape
    assert np.abs(got - audio).max() < {1: 1 / 64, 2: 1e-4, 3: 1e-6, 4: 1e-6}[width]


def test_stereo_at_another_rate_is_mixed_and_resampled(tmp_path, reader):
    pytest.importorskip("soxr")
    left, right = tone(2.0, 300), tone(2.0, 500)
    rate = 44100
    stereo = np.stack([resample(left, RATE, rate), resample(right, RATE, rate)], axis=1)
    path = write_wav(tmp_path / "s.wav", stereo.reshape(-1), rate, channels=2)
    got = read_audio(path)
    expected = (left + right) / 2
    assert abs(got.size - expected.size) <= 1
    n = min(got.size, expected.size)
    assert np.abs(got[100 : n - 100] - expected[100 : n - 100]).max() < 2e-3


def test_flac_needs_soundfile_and_reads_with_it(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    audio = speech_like(1.5, 6) * 0.5
    path = tmp_path / "a.flac"
    soundfile.write(str(path), audio, RATE, subtype="PCM_16")
    assert np.abs(read_audio(path) - audio).max() < 1e-4


def test_flac_without_soundfile_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "a.flac").write_bytes(b"fLaC")
    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(
        ImportError(name)) if name == "soundfile" else real_import(name, *a, **k))  # fmt: skip
    with pytest.raises(InputError, match="needs soundfile") as info:
        read_audio(tmp_path / "a.flac")
    assert "edgert[speech]" in info.value.hint


def test_bad_audio_files_are_clear_errors(tmp_path, reader):
    with pytest.raises(InputError, match="no such audio file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(InputError, match="cannot read"):
        read_audio(tmp_path / "junk.wav")
