"""Data for the embedded speech-commands model: the command grammar, espeak-ng voices, and
utterances synthesized, resampled, noised and turned into log-mel features.

Kept apart from the training loop (and free of torch) so that the synthesis workers import
nothing heavy and so that evaluation re-synthesizes exactly the clips training reported.
Every utterance is a pure function of ``(seed, split, index)``: its own random generator
draws the text, voice, speed, pitch, amplitude, placement and noise, so the data set is the
same whatever the number of worker processes or the order they finish in.
"""

from __future__ import annotations

import io
import subprocess
import wave
from dataclasses import dataclass
from functools import cache

import numpy as np

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050  # espeak-ng's output rate
RATE = 16000  # the model's rate, Whisper's
CHUNK_SECONDS = 4  # the encoder's window: 400 feature frames, 200 encoder positions

# Voices are accent + variant. The held-out accents and variants never occur in training,
# so the held-out WER measures speakers (pronunciation rules and vocal tracts) the model
# has not heard. Variants that whisper, croak or sound robotic are left out of both.
TRAIN_ACCENTS = ("en-gb", "en-us", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-us-nyc")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m8", "f1", "f2", "f3", "klatt", "klatt2",
                  "klatt3", "klatt4", "belinda", "david", "edward", "linda", "max", "paul",
                  "robert", "steph", "travis", "victor")  # fmt: skip
HELDOUT_ACCENTS = ("en-029", "en-gb-scotland")
HELDOUT_VARIANTS = ("m6", "m7", "f4", "f5")

SPLITS = {"train": 1, "heldout": 2}  # folded into each utterance's seed

# --- grammar ------------------------------------------------------------------------------
ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen")  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ROOMS = ("kitchen", "bedroom", "bathroom", "living room", "office", "garage", "hallway",
         "garden")  # fmt: skip
DEVICES = ("light", "lights", "lamp", "fan", "heater", "radio", "television")
MEDIA = ("stop", "pause", "play", "resume", "skip", "next song", "previous song", "play music",
         "play the next song", "stop the music", "mute", "unmute")  # fmt: skip
SHORT = ("yes", "no", "cancel", "stop", "volume up", "volume down", "channel up",
         "channel down", "go left", "go right", "go forward", "go back", "turn left",
         "turn right", "what time is it", "what is the weather today",
         "what is the weather tomorrow", "what is the temperature", "cancel the timer",
         "cancel the alarm", "stop the timer")  # fmt: skip


def number(n: int) -> str:
    """``0..99`` in words, as espeak-ng says them and the model writes them."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] if ones == 0 else f"{TENS[tens]} {ONES[ones]}"


def _amount(rng: np.random.Generator) -> int:
    """A count for timers and such: small numbers are the common ones."""
    return int(rng.integers(1, 21)) if rng.random() < 0.5 else int(rng.integers(1, 100))


def _timer(rng: np.random.Generator) -> str:
    n = _amount(rng)
    unit = str(rng.choice(("minute", "second", "hour")))
    return f"set a timer for {number(n)} {unit}{'' if n == 1 else 's'}"


def _switch(rng: np.random.Generator) -> str:
    state = str(rng.choice(("on", "off")))
    room, device = str(rng.choice(ROOMS)), str(rng.choice(DEVICES))
    form = rng.integers(4)
    if form == 0:
        return f"turn {state} the {room} {device}"
    if form == 1:
        return f"turn the {room} {device} {state}"
    if form == 2:
        return f"switch {state} the {device}"
    return f"turn {state} the {device}"


def _call(rng: np.random.Generator) -> str:
    digits = " ".join(ONES[d] for d in rng.integers(0, 10, int(rng.integers(3, 8))))
    return f"{rng.choice(('call', 'dial'))} {digits}"


def _alarm(rng: np.random.Generator) -> str:
    hour = number(int(rng.integers(1, 13)))
    if rng.random() < 0.3:
        return f"set an alarm for {hour}"
    return f"set an alarm for {hour} {number(int(rng.integers(10, 60)))}"


def _level(rng: np.random.Generator) -> str:
    n = number(int(rng.integers(0, 100)))
    form = rng.integers(5)
    if form == 0:
        return f"set the temperature to {n} degrees"
    if form == 1:
        return f"set the volume to {n}"
    if form == 2:
        return f"go to channel {n}"
    if form == 3:
        return f"set the {rng.choice(ROOMS)} lights to {n} percent"
    return f"dim the {rng.choice(ROOMS)} lights"


def _door(rng: np.random.Generator) -> str:
    form = rng.integers(3)
    if form == 0:
        return f"{rng.choice(('lock', 'unlock'))} the {rng.choice(('front', 'back'))} door"
    if form == 1:
        return (
            f"{rng.choice(('open', 'close'))} the {rng.choice(('garage door', 'window', 'blinds'))}"
        )
    return f"turn the volume {rng.choice(('up', 'down'))}"


def _bare(rng: np.random.Generator) -> str:
    if rng.random() < 0.7:
        return number(int(rng.integers(0, 100)))
    return " ".join(ONES[d] for d in rng.integers(0, 10, int(rng.integers(2, 6))))


# (weight, generator): lights, timers and numbers are what a command model hears most.
GRAMMAR = (
    (14, _switch), (10, _timer), (6, _alarm), (10, _call), (14, _level), (8, lambda r: str(r.choice(MEDIA))),
    (12, lambda r: str(r.choice(SHORT))), (6, _door), (12, _bare),
)  # fmt: skip
_WEIGHTS = np.array([w for w, _ in GRAMMAR], np.float64) / sum(w for w, _ in GRAMMAR)


def command(rng: np.random.Generator) -> str:
    """One command of the grammar, lower case, words separated by single spaces."""
    return GRAMMAR[int(rng.choice(len(GRAMMAR), p=_WEIGHTS))][1](rng)


def vocabulary() -> list[str]:
    """Every word the grammar can produce (its numbers, rooms, devices and fixed phrases
    included), sorted: what the tokenizer must encode and what the WER is counted over."""
    words = set(ONES) | {t for t in TENS if t}
    phrases = (*ROOMS, *DEVICES, *MEDIA, *SHORT)
    words |= {w for p in phrases for w in p.split()}
    rng = np.random.default_rng(0)
    for _ in range(20000):
        words |= set(command(rng).split())
    return sorted(words)


def corpus(count: int, seed: int) -> list[str]:
    """Commands for training the tokenizer, with the whole vocabulary once more so that
    rare words get their merges too."""
    rng = np.random.default_rng([seed, 0])
    return [command(rng) for _ in range(count)] + [" ".join(vocabulary())]


def voices(split: str) -> list[str]:
    """espeak-ng voice names (``accent+variant``) of a split."""
    accents, variants = (
        (TRAIN_ACCENTS, TRAIN_VARIANTS) if split == "train" else (HELDOUT_ACCENTS, HELDOUT_VARIANTS)
    )
    return [f"{a}+{v}" if v else a for a in accents for v in variants]


# --- audio --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    """One synthesized clip: the text, how it was spoken, and 16 kHz float32 samples of
    speech plus noise (trimmed, not yet padded to the window)."""

    text: str
    voice: str
    speed: int
    pitch: int
    snr_db: float | None
    audio: np.ndarray


def espeak(text: str, voice: str, speed: int, pitch: int, amplitude: int, gap: int) -> np.ndarray:
    """Mono float32 samples at 16 kHz of espeak-ng speaking ``text``."""
    args = [ESPEAK, "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
            "-g", str(gap), "--stdout", text]  # fmt: skip
    data = subprocess.run(args, capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        # --stdout streams: the header's frame count is a placeholder, so read to the end.
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    import soxr

    return soxr.resample(pcm.astype(np.float32) / 32768.0, rate, RATE).astype(np.float32)


def trim(audio: np.ndarray, threshold: float = 0.01, margin: int = 800) -> np.ndarray:
    """Cut espeak-ng's leading and trailing silence, keeping ``margin`` samples (50 ms)."""
    loud = np.flatnonzero(np.abs(audio) > threshold * max(float(np.abs(audio).max()), 1e-6))
    if not loud.size:
        return audio
    return audio[max(loud[0] - margin, 0) : loud[-1] + margin]


NOISE_SECONDS = 20


@cache
def noise_bank() -> np.ndarray:
    """``[3, 20 s]`` unit-power noises: white, pink (1/f) and brown (1/f^2) power. Made
    once per process from a fixed seed; clips take random stretches of them, which is as
    good as fresh noise and far cheaper than an FFT per clip."""
    n = NOISE_SECONDS * RATE
    white = np.random.default_rng(12345).standard_normal(n)
    f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    spectrum = np.fft.rfft(white)
    bank = np.stack([white, *(np.fft.irfft(spectrum / f ** (c / 2), n) for c in (1, 2))])
    return (bank / np.sqrt(np.mean(bank**2, axis=1, keepdims=True))).astype(np.float32)


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of unit-power noise of a random colour, from :func:`noise_bank`."""
    bank = noise_bank()
    start = int(rng.integers(0, bank.shape[1] - n + 1))
    return bank[int(rng.integers(3)), start : start + n] * float(rng.choice((-1.0, 1.0)))


def utterance(seed: int, split: str, index: int, *, snr: tuple[float, float] = (5.0, 40.0),
              clean: float = 0.1, text: str | None = None) -> Utterance:  # fmt: skip
    """Utterance ``index`` of ``split``: a command spoken by one of the split's voices at a
    random speed, pitch, amplitude and word gap, placed at a random offset in the window,
    with noise over the whole window at a random SNR (none for a ``clean`` fraction).
    Clips that do not fit the window are spoken faster until they do."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    text = text or command(rng)
    pool = voices(split)
    voice = pool[int(rng.integers(len(pool)))]
    speed, pitch = int(rng.integers(120, 211)), int(rng.integers(20, 81))
    amplitude, gap = int(rng.integers(60, 181)), int(rng.integers(0, 4))
    room = CHUNK_SECONDS * RATE - RATE // 10
    while True:
        speech = trim(espeak(text, voice, speed, pitch, amplitude, gap))
        if speech.size <= room or speed >= 400:
            break
        speed = int(speed * 1.25)
    speech = speech[:room]
    offset = int(rng.integers(0, min(room - speech.size, int(0.8 * RATE)) + 1))
    tail = int(rng.integers(0, int(0.4 * RATE)))
    length = min(offset + speech.size + tail, CHUNK_SECONDS * RATE)
    audio = np.zeros(length, np.float32)
    audio[offset : offset + speech.size] = speech
    snr_db = None if rng.random() < clean else float(rng.uniform(*snr))
    if snr_db is not None:
        power = float(np.mean(speech**2))
        audio += noise(rng, length) * np.sqrt(power / 10 ** (snr_db / 10))
    audio *= float(rng.uniform(0.05, 0.9)) / max(float(np.abs(audio).max()), 1e-6)
    return Utterance(text, voice, speed, pitch, snr_db, audio)


def mel_filters() -> np.ndarray:
    """The filter bank of the model's feature extractor (transformers' own)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=80, chunk_length=CHUNK_SECONDS).mel_filters


def features(audio: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Log-mel features ``[80, 400]`` of one window, with the project's numpy front-end
    (the one the runtime uses, equal to the extractor's)."""
    from edgert.plugins.families.speech.features import FeatureSettings, log_mel

    settings = FeatureSettings(chunk_samples=CHUNK_SECONDS * RATE)
    return log_mel(audio, filters, settings)


_FILTERS: np.ndarray | None = None


def train_example(job: tuple[int, int, tuple[float, float], float]) -> tuple[str, np.ndarray]:
    """(text, float16 features) of training utterance ``job = (seed, index, snr, clean)``:
    the unit of work of a synthesis process."""
    global _FILTERS
    if _FILTERS is None:
        _FILTERS = mel_filters()
    seed, index, snr, clean = job
    u = utterance(seed, "train", index, snr=snr, clean=clean)
    return u.text, features(u.audio, _FILTERS).astype(np.float16)
