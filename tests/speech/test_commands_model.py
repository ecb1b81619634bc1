"""The embedded speech model (``zoo:commands``): small enough to ship, its recorded
training and word error rate true, its bundle decoding as transformers' ``generate`` on
the held-out clips that ship with it, and usable from ``edgert run`` and streaming."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from helpers.audio import write_wav
from helpers.cli import run, run_cli

import edgert
from edgert.apps.commands_demo import shipped_clips
from edgert.plugins.families.speech.metrics import word_error_rate

MAX_MB = 20  # what the wheel may carry for it
MAX_WER = 0.10  # on the shipped held-out clips (5.2% when trained): the model must be worth running


def folder() -> Path:
    return Path(str(resources.files("edgert.exporters.zoo") / "commands"))


def recipe() -> dict:
    return json.loads((folder() / "training.json").read_text())


@functools.cache
def shipped() -> tuple[list[np.ndarray], list[str]]:
    """The held-out clips and texts, read as the demo reads them."""
    clips, texts, _, _ = shipped_clips()
    return clips, texts


@functools.cache
def reference():
    import transformers

    model = transformers.WhisperForConditionalGeneration.from_pretrained(folder()).eval()
    return model, transformers.WhisperFeatureExtractor.from_pretrained(folder())


def hf_tokens(audio: np.ndarray, **kwargs) -> list[int]:
    import torch

    model, extractor = reference()
    features = extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        return model.generate(features, return_segments=True, **kwargs)["sequences"][0].tolist()


@pytest.fixture(scope="module")
def commands_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("commands") / "bundle"
    code, stdout, stderr = run_cli("export", "zoo:commands", "--device", "cpu-generic",
                                   "--out", str(out))  # fmt: skip
    assert code == 0, stderr
    assert "(speech, fp32, device cpu-generic)" in stdout
    return edgert.load(str(out))


def test_the_model_is_small_and_its_recipe_is_recorded():
    files = [p for p in folder().iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_MB * 2**20
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
            "preprocessor_config.json", "heldout.npz", "training.json"} <= {p.name for p in files}  # fmt: skip
    r = recipe()
    assert r["architecture"] == "WhisperForConditionalGeneration"
    assert r["total_time_s"] <= 30 * 60  # trained within half an hour (on the recorded CPU)
    assert r["threads"] == 2
    assert set(r["voices"]["train"]).isdisjoint(r["voices"]["heldout"])
    config = json.loads((folder() / "config.json").read_text())
    assert config["model_type"] == "whisper"


def test_an_unknown_built_in_model_lists_it(capsys, tmp_path):
    code, _, err = run(capsys, "export", "zoo:nothing", "--device", "cpu-generic",
                       "--out", str(tmp_path / "x"))  # fmt: skip
    assert code != 0
    assert "commands" in err.split("known built-in models:")[1].splitlines()[0]


def test_its_wer_on_held_out_voices_is_the_recorded_one(commands_bundle):
    clips, texts = shipped()
    hyps = [commands_bundle.transcribe(c).text for c in clips]
    measured = word_error_rate(hyps, texts)
    assert round(measured, 4) == recipe()["shipped_wer"]
    assert measured <= MAX_WER, list(zip(texts, hyps, strict=True))


def test_the_bundle_decodes_every_shipped_clip_as_generate(commands_bundle):
    clips, _ = shipped()
    for clip in clips:
        assert list(commands_bundle.transcribe(clip).token_ids) == hf_tokens(clip)


def test_beam_search_decodes_as_generate(commands_bundle):
    clips, _ = shipped()
    for clip in clips[:4]:
        got = commands_bundle.transcribe(clip, decoder="beam", num_beams=3).token_ids
        assert list(got) == hf_tokens(clip, num_beams=3)


def test_edgert_run_transcribes_a_recording(commands_bundle, tmp_path, capsys):
    import soxr

    clips, _ = shipped()
    path = write_wav(tmp_path / "command-44k-stereo.wav", soxr.resample(clips[1], 16000, 44100),
                     44100, channels=2)  # fmt: skip
    code, out, err = run(capsys, "run", str(commands_bundle.bundle.path), str(path))
    assert code == 0, err
    assert out.strip() == commands_bundle.transcribe(str(path)).text.strip()
    assert word_error_rate([out], [shipped()[1][1]]) <= 0.5


def test_streamed_commands_end_as_the_offline_transcript(commands_bundle):
    clips, _ = shipped()
    same = 0
    for clip in clips[:8]:
        blocks = (clip[i : i + 4000] for i in range(0, clip.size, 4000))
        streamed = "".join(commands_bundle.stream_audio(blocks, update_s=0.5))
        same += streamed.strip() == commands_bundle.transcribe(clip).text.strip()
    assert same >= 6  # an early commit may differ where two partial decodes agreed wrongly


def test_the_demo_prints_the_recorded_wer(commands_bundle):
    import subprocess
    import sys

    demo = Path(__file__).resolve().parents[2] / "apps" / "commands_demo.py"
    done = subprocess.run([sys.executable, str(demo), str(commands_bundle.bundle.path)],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    clips, _ = shipped()
    import re

    printed = re.search(rf"word error rate on {len(clips)} held-out clips: ([0-9.]+)%", done.stdout)
    assert printed, done.stdout
    assert abs(float(printed[1]) / 100 - recipe()["shipped_wer"]) <= 0.0006
    assert "real-time factor" in done.stdout
    assert "streaming" in done.stdout
