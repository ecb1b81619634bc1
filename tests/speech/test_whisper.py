"""Whisper bundles: tokens, segments and times identical to transformers' ``generate`` on
the same checkpoint and audio (greedy and beam, language and task, timestamps, audio over
one window), the lossless decoders equal to greedy, and clear refusals."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from helpers.audio import speech_like, write_wav
from helpers.cli import run

import edgert
from edgert.errors import InputError

RATE = 16000


@functools.cache
def reference(source):
    import transformers

    model = transformers.WhisperForConditionalGeneration.from_pretrained(source).eval()
    return model, transformers.WhisperFeatureExtractor.from_pretrained(source)


def hf_generate(source, audio, **kwargs):
    """transformers' tokens (and segments) for ``audio``, features made as its docs say."""
    import torch

    model, extractor = reference(source)
    long = audio.size > 30 * RATE
    extra = {"truncation": False, "padding": "longest"} if long else {}
    features = extractor(audio, sampling_rate=RATE, return_tensors="pt", **extra).input_features
    with torch.inference_mode():
        out = model.generate(features, return_segments=True, **kwargs)
    segments = [(float(s["start"]), float(s["end"])) for s in out.get("segments", [[]])[0]]
    return out["sequences"][0].tolist(), segments


@functools.cache
def loaded(path):
    return edgert.load(str(path))


CASES = {
    "default": {},
    "timestamps": {"return_timestamps": True},
    "language": {"language": "en"},
    "language name, translate": {"language": "french", "task": "translate"},
    "beam 2": {"num_beams": 2},
    "beam 3, timestamps": {"num_beams": 3, "return_timestamps": True},
    "max_new_tokens": {"max_new_tokens": 9},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_multilingual_tokens_equal_transformers(case, whisper_sources, whisper_bundles):
    kwargs = CASES[case]
    audio = speech_like(2.5, 7)
    expected, _ = hf_generate(whisper_sources["multilingual"], audio, **kwargs)
    decoder = "beam" if kwargs.get("num_beams", 1) > 1 else None
    got = loaded(whisper_bundles["multilingual"]).transcribe(audio, decoder=decoder, **kwargs)
    assert list(got.token_ids) == expected
    assert got.language in {"<|en|>", "<|de|>", "<|fr|>"}


@pytest.mark.parametrize("timestamps", [False, True])
def test_english_only_tokens_equal_transformers(timestamps, whisper_sources, whisper_bundles):
    audio = speech_like(3.0, 8)
    expected, _ = hf_generate(whisper_sources["english"], audio, return_timestamps=timestamps)
    got = loaded(whisper_bundles["english"]).transcribe(audio, return_timestamps=timestamps)
    assert list(got.token_ids) == expected
    assert got.language is None


def test_a_bare_generation_config_decodes_as_transformers_does(whisper_sources, whisper_bundles):
    audio = speech_like(2.0, 15)
    expected, _ = hf_generate(whisper_sources["plain"], audio)
    model = loaded(whisper_bundles["plain"])
    got = model.transcribe(audio)
    assert list(got.token_ids) == expected
    assert len(expected) == 20  # transformers' default max_length counts new tokens
    assert got.stats["prompt"] == [model.rules["decoder_start_token_id"]]
    with pytest.raises(InputError, match="no timestamp tokens"):
        model.transcribe(audio, return_timestamps=True)


def test_long_audio_is_transcribed_in_windows_with_transformers_segments(whisper_sources,
                                                                         whisper_bundles):  # fmt: skip
    audio = np.concatenate([speech_like(21.0, seed) for seed in (3, 4, 5)])  # 63 s
    expected, segments = hf_generate(whisper_sources["multilingual"], audio, return_timestamps=True)
    model = loaded(whisper_bundles["multilingual"])
    got = model.transcribe(audio)
    assert got.stats["windows"] >= 3
    assert list(got.token_ids) == expected
    times = [t for s in got.segments for t in (s.start, s.end)]
    assert times == pytest.approx([t for pair in segments for t in pair], abs=1e-9)
    assert [s.text for s in got.segments] == [model.text_of(s.token_ids) for s in got.segments]
    assert got.text == model.text_of(got.token_ids)


def test_long_audio_without_timestamps_is_refused(whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    with pytest.raises(InputError, match="long-form transcription needs timestamps"):
        model.transcribe(speech_like(31.0, 0), return_timestamps=False)


def test_the_front_end_matches_the_extractor_over_long_audio(whisper_sources, whisper_bundles):
    audio = speech_like(47.0, 9)
    _, extractor = reference(whisper_sources["multilingual"])
    expected = extractor(audio, sampling_rate=RATE, truncation=False, padding="longest",
                         return_tensors="np").input_features[0]  # fmt: skip
    got = loaded(whisper_bundles["multilingual"]).features(audio)
    assert got.shape == expected.shape == (80, 4700)
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("decoder", ["aggressive", "lookup", "speculative"])
@pytest.mark.parametrize("timestamps", [False, True])
def test_lossless_decoders_give_greedy_tokens(decoder, timestamps, whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    audio = speech_like(2.0, 11)
    greedy = model.transcribe(audio, decoder="greedy", return_timestamps=timestamps)
    options = {"draft": str(whisper_bundles["draft"])} if decoder == "speculative" else {}
    got = model.transcribe(audio, decoder=decoder, return_timestamps=timestamps, **options)
    assert got.token_ids == greedy.token_ids
    assert got.stats["decoder"] == decoder


def test_a_wav_file_transcribes_as_its_samples(whisper_bundles, tmp_path):
    audio = speech_like(2.0, 12)
    path = tmp_path / "speech.wav"
    write_wav(path, audio, RATE)
    model = loaded(whisper_bundles["english"])
    from edgert.plugins.families.speech.audio import read_audio

    assert model.transcribe(path).token_ids == model.transcribe(read_audio(path)).token_ids


def test_cli_run_prints_the_transcript_and_json_segments(whisper_bundles, tmp_path, capsys):
    path = tmp_path / "stereo-44k.wav"
    write_wav(path, speech_like(2.0, 13, rate=44100), 44100, channels=2)
    bundle = str(whisper_bundles["multilingual"])
    model = loaded(whisper_bundles["multilingual"])
    expected = model.transcribe(str(path), return_timestamps=True)
    code, out, err = run(capsys, "run", bundle, str(path), "--json",
                         "--option", "return_timestamps=true")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["token_ids"] == list(expected.token_ids)
    assert [s["start"] for s in report["segments"]] == [s.start for s in expected.segments]
    assert report["language"] == expected.language
    code, out, err = run(capsys, "run", bundle, str(path), "--stats")
    assert code == 0, err
    assert out.strip() == model.transcribe(str(path)).text.strip()
    assert "real-time factor" in err


def test_cli_profile_reports_the_speech_stages(whisper_bundles, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    from edgert.profiler import report_schema

    code, out, err = run(capsys, "profile", str(whisper_bundles["english"]), "--runs", "2",
                         "--warmup", "0", "--new-tokens", "5", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    jsonschema.validate(report, report_schema())
    family = report.get("family_report", report)
    stages = json.dumps(family)
    for stage in ("features", "encoder", "first_token", "per_token", "real_time_factor"):
        assert stage in stages


def test_speech_flags_for_text_and_images_are_refused(whisper_bundles, capsys):
    code, _, err = run(capsys, "run", str(whisper_bundles["english"]), "a.wav", "--top-k", "2")
    assert code != 0 and "--top-k is not for speech bundles" in err


def test_english_only_models_take_no_language(whisper_bundles):
    model = loaded(whisper_bundles["english"])
    with pytest.raises(InputError, match="English-only"):
        model.transcribe(speech_like(1.0, 0), language="en")


def test_an_unknown_language_lists_the_valid_ones(whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    with pytest.raises(InputError) as caught:
        model.transcribe(speech_like(1.0, 0), language="klingon")
    assert "klingon" in str(caught.value) and "de, en, fr" in caught.value.hint


def test_bad_audio_is_refused_clearly(whisper_bundles, tmp_path):
    model = loaded(whisper_bundles["english"])
    with pytest.raises(InputError, match="no such audio file"):
        model.transcribe(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="1-D float array"):
        model.transcribe(np.zeros((2, 100), np.float32))
    with pytest.raises(InputError, match="NaN"):
        model.transcribe(np.full(100, np.nan, np.float32))


def test_the_seq2seq_family_does_not_claim_whisper_folders(whisper_sources):
    from edgert.plugins.families.seq2seq import detect as seq2seq_detect
    from edgert.plugins.families.speech import detect as speech_detect

    folder = str(whisper_sources["english"])
    assert speech_detect(folder) and not seq2seq_detect(folder)
    assert speech_detect("openai/whisper-tiny") and not seq2seq_detect("openai/whisper-tiny")
    assert seq2seq_detect("google-t5/t5-small") and not speech_detect("google-t5/t5-small")


def test_an_int8_profile_quantizes_the_decoder_within_tolerance(tmp_path):
    from helpers.cli import run_cli
    from helpers.whisper_models import whisper_folder

    source = whisper_folder(tmp_path / "wide", d_model=192)  # weights big enough to quantize
    code, _out, err = run_cli("export", str(source), "--device", "x86-avx2-int8",
                             "--out", str(tmp_path / "int8"))  # fmt: skip
    assert code == 0, err
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["precision"] == "int8"
    assert manifest["quantization"]["decoder"]["quantized_nodes"] > 0
    assert manifest["validation"]["next_token_agreement"] >= 0.9
    audio = speech_like(2.0, 14)
    expected, _ = hf_generate(source, audio, max_new_tokens=12)
    got = edgert.load(str(tmp_path / "int8")).transcribe(audio, max_new_tokens=12)
    agree = sum(a == b for a, b in zip(got.token_ids, expected, strict=False))
    assert agree >= 0.9 * len(expected)


def test_streamed_audio_yields_the_committed_text(whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    audio = speech_like(6.0, 16)
    stats = {}
    blocks = (audio[i : i + 4000] for i in range(0, audio.size, 4000))  # 0.25 s blocks
    pieces = list(model.stream_audio(blocks, language="en", update_s=0.5, stats=stats))
    assert "".join(pieces) == model.text_of(stats["tokens"])
    assert stats["updates"] >= 11  # every half second of the 6 s, and the last
    assert stats["audio_s"] == 6.0
    assert stats["update_ms"]["p50"] > 0
    if stats["tokens"]:
        assert stats["lag_ms"]["min"] >= 0


def test_streaming_refuses_bad_blocks(whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    with pytest.raises(InputError, match="1-D float array"):
        list(model.stream_audio([np.zeros((2, 10), np.float32)], language="en"))
    with pytest.raises(InputError, match="update_s"):
        list(model.stream_audio([], update_s=0))


@pytest.mark.parametrize(
    "checks",
    [
        {"logprob_threshold": -1e9, "no_speech_threshold": 0.99, "compression_ratio_threshold": 1e9},
        {"logprob_threshold": 0.0, "no_speech_threshold": 0.0},  # every window skipped
    ],
)  # fmt: skip
def test_quality_checks_keep_or_skip_windows_as_transformers(checks, whisper_sources,
                                                             whisper_bundles):  # fmt: skip
    audio = speech_like(2.0, 5)
    expected, _ = hf_generate(whisper_sources["multilingual"], audio, language="en",
                              temperature=0.0, **checks)  # fmt: skip
    got = loaded(whisper_bundles["multilingual"]).transcribe(audio, language="en", **checks)
    assert list(got.token_ids) == expected
    assert got.stats["skipped_windows"] == (0 if expected else 1)


def test_a_failing_window_falls_back_to_seeded_sampling(whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    audio = speech_like(2.0, 5)
    kwargs = {"language": "en", "logprob_threshold": 0.0, "temperature": [0.0, 0.5], "seed": 3}
    first, second = model.transcribe(audio, **kwargs), model.transcribe(audio, **kwargs)
    assert first.stats["fallbacks"] >= 1  # an average log-probability is never above 0
    assert first.token_ids == second.token_ids  # seeded: the same draw
    with pytest.raises(InputError, match="needs logprob_threshold"):
        model.transcribe(audio, no_speech_threshold=0.6)


@pytest.mark.parametrize(
    ("seconds", "kwargs"),
    [
        (2.5, {"language": "en"}),
        (2.5, {"return_timestamps": True, "condition_on_prev_tokens": True}),
        (40.0, {"return_timestamps": True, "condition_on_prev_tokens": True}),
        (40.0, {"return_timestamps": True, "condition_on_prev_tokens": True, "no_prompt": True}),
    ],
)  # fmt: skip
def test_prompts_and_previous_text_condition_as_transformers(seconds, kwargs, whisper_sources,
                                                            whisper_bundles):  # fmt: skip
    import torch

    model = loaded(whisper_bundles["multilingual"])
    kwargs = dict(kwargs)
    ids = None
    if not kwargs.pop("no_prompt", False):
        text = model.tokenizer.encode(" the quick fox", add_special_tokens=False).ids
        ids = [model.rules["prev_sot_token_id"], *text]
    audio = np.concatenate([speech_like(20.0, s) for s in (3, 4)]) if seconds > 30 else (
        speech_like(seconds, 5))  # fmt: skip
    extra = {"prompt_ids": torch.tensor(ids)} if ids else {}
    expected, _ = hf_generate(whisper_sources["multilingual"], audio, **kwargs, **extra)
    got = model.transcribe(audio, **({"prompt_ids": ids} if ids else {}), **kwargs)
    assert list(got.token_ids) == expected


def test_a_text_prompt_is_encoded_after_startofprev(whisper_bundles):
    model = loaded(whisper_bundles["multilingual"])
    audio = speech_like(2.0, 6)
    ids = [model.rules["prev_sot_token_id"],
           *model.tokenizer.encode(" the quick fox", add_special_tokens=False).ids]  # fmt: skip
    by_text = model.transcribe(audio, language="en", prompt="the quick fox")
    assert by_text.token_ids == model.transcribe(audio, language="en", prompt_ids=ids).token_ids
    with pytest.raises(InputError, match="prompt or prompt_ids"):
        model.transcribe(audio, prompt="a", prompt_ids=ids)


def espeak_wav(path, text, voice="en-us", speed=160):
    """``text`` spoken by espeak-ng into a WAV file (22.05 kHz mono, as espeak writes it)."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it where apt-get can)")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
                   check=True, capture_output=True)  # fmt: skip
    return path


SPOKEN = {
    "multilingual, timestamps": ("multilingual", {"return_timestamps": True}),
    "multilingual, beam 2, language": ("multilingual", {"num_beams": 2, "language": "en"}),
    "english-only": ("english", {}),
    "english-only, timestamps": ("english", {"return_timestamps": True}),
}


@pytest.mark.parametrize("case", sorted(SPOKEN))
def test_espeak_speech_decodes_as_transformers(case, whisper_sources, whisper_bundles, tmp_path):
    """Speech made here: espeak-ng's 22.05 kHz WAV, read and resampled by the bundle's
    front-end, gives transformers' tokens and segments on the same 16 kHz samples."""
    name, kwargs = SPOKEN[case]
    path = espeak_wav(tmp_path / "spoken.wav", "turn on the kitchen light and call forty two")
    model = loaded(whisper_bundles[name])
    samples = model.samples(str(path))
    assert samples.dtype == np.float32 and 2.0 < samples.size / RATE < 6.0
    tokens, segments = hf_generate(whisper_sources[name], samples, **kwargs)
    decoder = "beam" if kwargs.get("num_beams", 1) > 1 else None
    got = model.transcribe(str(path), decoder=decoder, **kwargs)
    assert list(got.token_ids) == tokens
    if kwargs.get("return_timestamps"):
        times = [t for s in got.segments for t in (s.start, s.end)]
        assert segments and times == pytest.approx([t for pair in segments for t in pair], abs=1e-9)
