"""The app's speech page: a transcript streamed segment by segment equals the runtime's,
bad audio is refused clearly, and in chromium an uploaded WAV file (decoded and resampled
by the browser) gives what ``edgert run`` prints for it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers.audio import speech_like, write_wav
from helpers.browser import app_server, launch_browser, open_bundle, shot

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

import edgert
from edgert.apps.studio.core import Studio
from edgert.apps.studio.server import create_app


@pytest.fixture(scope="module")
def client(whisper_bundles):
    with TestClient(create_app(Studio([whisper_bundles["multilingual"]]))) as c:
        yield c


def pcm16(samples):
    ints = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
    return base64.b64encode(ints.tobytes()).decode()


def events_of(client, **body):
    with client.stream("POST", "/api/bundles/multilingual/transcribe", json=body) as response:
        assert response.status_code == 200, response.read()
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def test_the_page_is_chosen_from_the_manifest(client):
    facts = client.get("/api/bundles/multilingual").json()
    assert facts["page"] == "audio"
    assert facts["sampling_rate"] == 16000
    assert facts["languages"] == ["de", "en", "fr"]
    assert facts["tasks"] == ["transcribe", "translate"]


@pytest.mark.parametrize("timestamps", [True, False])
def test_segments_stream_and_the_transcript_equals_the_runtime(client, whisper_bundles,
                                                               timestamps):  # fmt: skip
    audio = speech_like(2.0, 21)
    samples = np.frombuffer(base64.b64decode(pcm16(audio)), "<i2").astype(np.float32) / 32768
    expected = edgert.load(str(whisper_bundles["multilingual"])).transcribe(
        samples, language="en", return_timestamps=timestamps
    )
    events = events_of(client, pcm16=pcm16(audio), rate=16000, language="en",
                       timestamps=timestamps)  # fmt: skip
    kinds = [e["event"] for e in events]
    assert kinds[0] == "job" and kinds[-1] == "done"
    segments = [e for e in events if e["event"] == "segment"]
    assert [(s["start"], s["end"]) for s in segments] == [
        (s.start, s.end) for s in expected.segments
    ]
    assert events[-1]["text"] == expected.text
    assert events[-1]["language"] == "<|en|>"
    assert events[-1]["stats"]["real_time_factor"] > 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pcm16": "not base64!", "rate": 16000}, "not base64"),
        ({"pcm16": base64.b64encode(b"abc").decode(), "rate": 16000}, "2 each"),
        ({"pcm16": "", "rate": 16000}, "base64 text"),
        ({"pcm16": pcm16(np.zeros(160, np.float32)), "rate": 44100}, "44100 Hz"),
        ({"pcm16": pcm16(np.zeros(160, np.float32)), "rate": 16000, "timestamps": "yes"}, "true or false"),
    ],
)  # fmt: skip
def test_bad_audio_requests_are_clear_400s(client, body, message):
    response = client.post("/api/bundles/multilingual/transcribe", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_an_unknown_language_arrives_as_an_error_event(client):
    events = events_of(client, pcm16=pcm16(speech_like(1.0, 0)), rate=16000, language="xx")
    assert events[-1]["event"] == "error"
    assert "valid languages: de, en, fr" in events[-1]["hint"]


@pytest.fixture(scope="module")
def server(whisper_bundles):
    yield from app_server(whisper_bundles["english"])


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()


def test_an_uploaded_wav_gives_what_edgert_run_prints(browser, server, whisper_bundles, tmp_path):
    path = tmp_path / "speech.wav"
    write_wav(path, speech_like(2.0, 22), 16000)  # at the model's rate: nothing to resample
    page = open_bundle(browser, server, "english")
    page.wait_for_selector("#page-audio:not([hidden])")
    page.set_input_files("#audio-file", str(path))
    page.wait_for_selector("#transcribe:not([disabled])", timeout=30000)
    page.uncheck("#timestamps")
    page.click("#transcribe")
    page.wait_for_selector("#transcript[data-done='1']", timeout=60000)
    shot(page, "studio-speech")
    done = subprocess.run([sys.executable, "-m", "edgert", "run", str(whisper_bundles["english"]),
                           str(path)], capture_output=True, text=True, check=True)  # fmt: skip
    assert page.text_content("#transcript").strip() == done.stdout.strip()
    stats = {td.get_attribute("data-key"): td.text_content()
             for td in page.query_selector_all("#audio-stats td[data-key]")}  # fmt: skip
    assert int(stats["windows"]) >= 1 and float(stats["real-time factor"]) > 0
    assert page.errors == []
