"""The app's core and HTTP API, through Starlette's ASGI test client: streamed outputs equal
the runtime's, pages follow the manifest, two requests queue and stay separate, cancels stop
at once, bad input is a clear error, and no request reaches a file of its choosing."""

from __future__ import annotations

import io
import json
import queue
import shutil
import threading
import time

import numpy as np
import pytest
from helpers.dolphin_models import CONTEXTS, QUESTIONS

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

import edgert
from edgert.apps.studio.core import Studio
from edgert.apps.studio.server import create_app
from edgert.apps.studio.tui import repl

SENTENCE = "teh cat sat on teh mat"


@pytest.fixture(scope="module")
def studio(studio_root):
    return Studio([studio_root])


@pytest.fixture(scope="module")
def client(studio):
    with TestClient(create_app(studio)) as c:
        yield c


def events_of(client, bundle, **body):
    """The events of one streamed request, parsed."""
    with client.stream("POST", f"/api/bundles/{bundle}/generate", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def test_bundle_list_states_each_manifest(client):
    listed = {b["id"]: b for b in client.get("/api/bundles").json()}
    assert set(listed) == {"speller", "speller-draft", "digits", "dolphin"}
    assert listed["speller"]["family"] == "seq2seq"
    assert listed["speller"]["page"] == "text"
    assert listed["digits"]["page"] == "image"
    assert listed["dolphin"]["page"] == "context"
    assert listed["speller"]["precision"] == "fp32"
    assert listed["speller"]["profile"] == "cpu-generic"
    assert listed["speller"]["validation"]["greedy_identical"] is True
    assert listed["digits"]["validation"]["top1_agreement"] == 1.0
    assert listed["speller"]["size_bytes"] > 100_000


def test_the_page_follows_the_manifest_not_the_folder_name(studio_root, tmp_path):
    shutil.copytree(studio_root / "speller", tmp_path / "digits")
    studio = Studio([tmp_path])
    assert studio.page("digits") == "text"
    assert studio.describe("digits")["family"] == "seq2seq"


@pytest.mark.parametrize(
    ("decoder", "options"),
    [("greedy", {}), ("aggressive", {}), ("lookup", {}), ("beam", {"num_beams": 3}),
     ("sampling", {"seed": 7, "temperature": 0.8}), ("speculative", {"draft": "speller-draft"})],
)  # fmt: skip
def test_streamed_text_equals_the_runtime(client, studio_root, decoder, options):
    events = events_of(client, "speller", text=SENTENCE, decoder=decoder, options=options)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["job", "start"]
    assert kinds[-1] == "done"
    assert "token" in kinds
    streamed = "".join(e["text"] for e in events if e["event"] == "token")
    runtime_options = dict(options)
    if decoder == "speculative":
        runtime_options["draft"] = str(studio_root / "speller-draft")
    expected = edgert.load(studio_root / "speller").generate(
        SENTENCE, decoder=decoder, **runtime_options
    )
    assert streamed == events[-1]["text"] == expected.text
    stats = events[-1]["stats"]
    assert stats["decoder"] == decoder
    assert stats["new_tokens"] == len(expected.token_ids)
    assert stats["first_token_ms"] > 0
    assert stats["tokens_per_s"] > 0
    assert events[1]["provider"] == "ort-cpu"
    assert events[1]["profile"] == "cpu-generic"
    if decoder in ("greedy", "aggressive", "lookup", "speculative"):
        assert stats["decoder_calls"] >= 1
    if decoder in ("aggressive", "lookup", "speculative"):
        assert 0 <= stats["acceptance_rate"] <= 1


def test_describe_offers_what_the_page_needs(client, studio_root):
    speller = client.get("/api/bundles/speller").json()
    assert speller["drafts"] == ["speller-draft"]
    assert speller["default_decoder"] == "greedy"
    assert speller["provider"] == "ort-cpu"
    bundle_defaults = edgert.load(studio_root / "speller").option_defaults()
    assert speller["option_defaults"]["max_new_tokens"] == bundle_defaults["max_new_tokens"]
    digits = client.get("/api/bundles/digits").json()
    assert digits["input"]["shape"] == [1, 1, 8, 8]
    assert digits["labels"] == [str(i) for i in range(10)]
    forms = client.get("/api/decoders").json()
    assert {"greedy", "aggressive", "lookup", "speculative", "beam", "sampling"} <= set(forms)
    beam = {f["name"]: f for f in forms["beam"]}
    assert beam["num_beams"] == {"name": "num_beams", "default": 4, "kind": "int"}
    assert "stop_ids" not in {f["name"] for f in forms["greedy"]}


def test_too_long_input_gets_the_runtimes_error_not_a_trace(client, studio):
    model = studio.model("speller")
    events = events_of(client, "speller", text="teh " * 2000, decoder="greedy")
    error = events[-1]
    assert error["event"] == "error"
    assert "tokens; this bundle takes at most" in error["message"]
    assert "Traceback" not in json.dumps(error)
    assert error["hint"]
    # the model is free again: the next request is answered
    assert events_of(client, "speller", text=SENTENCE)[-1]["text"] == model.generate(SENTENCE).text


@pytest.mark.parametrize(
    ("body", "words"),
    [({"text": ""}, "empty"), ({"text": "x", "decoder": "nope"}, "unknown decoder 'nope'"),
     ({"text": "x", "decoder": "greedy", "options": {"max_new_tokens": "many"}}, "must be int"),
     ({"text": "x", "decoder": "greedy", "options": {"beams": 2}}, "has no option 'beams'"),
     ({"text": "x", "decoder": "speculative", "options": {"draft": "/etc"}}, "not another bundle")],
)  # fmt: skip
def test_bad_requests_are_refused_clearly(client, body, words):
    response = client.post("/api/bundles/speller/generate", json=body)
    assert response.status_code == 400
    assert words in response.json()["error"]


def test_profile_options_from_a_page_are_bounded(client):
    for options, words in (({"device": "/etc/passwd"}, "cannot be set from the app"),
                           ({"decoder_options": [["draft", "/tmp"]]}, "cannot be set"),
                           ({"runs": 10_000}, "from 1 to 200"), ({"runs": "5"}, "must be an integer")):  # fmt: skip
        response = client.post("/api/bundles/speller/profile", json={"options": options})
        assert response.status_code == 400
        assert words in response.json()["error"]


def test_wrong_types_and_huge_bodies_are_refused(client):
    response = client.post("/api/bundles/dolphin/generate", json={"text": "q", "context": ["a"]})
    assert response.status_code == 400
    assert "context must be a string, got list" in response.json()["error"]
    huge = b'{"text": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    response = client.post("/api/bundles/speller/generate", content=huge)
    assert response.status_code == 400
    assert "at most" in response.json()["error"]


def test_unknown_bundle_and_malformed_body(client):
    response = client.post("/api/bundles/nope/generate", json={"text": "x"})
    assert response.status_code == 404
    assert "known bundles: digits, dolphin, speller, speller-draft" in response.json()["error"]
    response = client.post("/api/bundles/speller/generate", content=b"{not json")
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    ["/static/../../pyproject.toml", "/static/..%2f..%2fpyproject.toml", "/static/%2e%2e/manifest.json",
     "/static/..%2F..%2F..%2Fetc%2Fpasswd", "/../../../etc/passwd", "/api/bundles/..%2f..%2fetc",
     "/api/bundles/speller/..%2fmanifest.json", "/static/speller/manifest.json", "/etc/passwd",
     "/static/index.html%00.js"],
)  # fmt: skip
def test_no_path_reaches_a_file_outside_the_app(client, path):
    response = client.get(path)
    assert response.status_code in (404, 405)
    assert b"root:" not in response.content
    assert b"[project]" not in response.content
    assert b'"family"' not in response.content


def test_the_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from the internet
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_classify_equals_the_runtime(client, studio_root):
    from importlib import resources

    with resources.as_file(resources.files("edgert.exporters.zoo") / "digits_test.npz") as path:
        data = np.load(path, allow_pickle=False)
        images = data["x"][:20].astype(np.float32).reshape(-1, 1, 8, 8) / 16.0
    model = edgert.load(studio_root / "digits")
    for image in images:
        result = client.post(
            "/api/bundles/digits/classify", json={"pixels": image.ravel().tolist()}
        ).json()
        (expected,) = model.classify(image[None], top_k=5)
        assert [r["label"] for r in result["top"]] == list(expected.labels)
        assert np.allclose([r["score"] for r in result["top"]], expected.scores, atol=1e-6)
        assert result["latency_ms"] > 0
    wrong = client.post("/api/bundles/digits/classify", json={"pixels": [0.5] * 10})
    assert wrong.status_code == 400
    assert "takes [1, 8, 8] (64 values)" in wrong.json()["error"]
    nan = client.post("/api/bundles/digits/classify", content=b'{"pixels": [NaN]}')
    assert nan.status_code == 400


def test_one_context_two_questions_reuse_the_memory(client, studio_root):
    model = edgert.load(studio_root / "dolphin")
    context = CONTEXTS[0] + " unique to the app test"
    answers = []
    for question in QUESTIONS[:2]:
        events = events_of(client, "dolphin", text=question, context=context,
                           options={"max_new_tokens": 8}, decoder="greedy")  # fmt: skip
        done = events[-1]
        assert done["event"] == "done", done
        expected = model.generate(
            question, context=context, context_policy="chunk", max_new_tokens=8
        )
        assert done["text"] == expected.text
        answers.append(done["stats"])
    assert answers[0]["memory_cache_hit"] is False
    assert answers[1]["memory_cache_hit"] is True
    assert answers[1]["memory_saved_ms"] >= 0
    assert answers[1]["memory_ms"] < answers[0]["memory_ms"]


def test_profile_report_follows_the_schema(client):
    jsonschema = pytest.importorskip("jsonschema")
    from edgert.profiler import report_schema

    report = client.post("/api/bundles/speller/profile", json={}).json()
    jsonschema.validate(report, report_schema())
    assert report["family"] == "seq2seq"
    assert report["runs"] == 10
    assert report["provider"] == "ort-cpu"


class Gate:
    """A sink that holds the generating thread at its first token until released."""

    def __init__(self):
        self.events, self.release, self.at_first = [], threading.Event(), threading.Event()

    def __call__(self, event):
        self.events.append(event)
        if event["event"] == "token" and not self.at_first.is_set():
            self.at_first.set()
            assert self.release.wait(30)


def wait_for(predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_two_requests_queue_with_a_position_and_stay_separate(studio):
    model = studio.model("speller")
    first, second = "teh cat sat on teh mat", "a dgo ran in teh park"
    gate, later = Gate(), queue.Queue()
    a = studio.start_text("speller", gate, text=first, decoder="greedy")
    assert gate.at_first.wait(30)
    b = studio.start_text("speller", later.put, text=second, decoder="aggressive")
    queued = later.get(timeout=30)
    assert queued["event"] == "queued"
    assert queued["position"] == 1
    assert studio.lane("speller").waiting == 2
    gate.release.set()
    assert a.finished.wait(30) and b.finished.wait(30)
    received = [later.get_nowait() for _ in range(later.qsize())]
    assert gate.events[-1]["text"] == model.generate(first).text
    assert received[-1]["event"] == "done"
    assert received[-1]["text"] == model.generate(second).text
    assert (
        "".join(e["text"] for e in gate.events if e["event"] == "token") == gate.events[-1]["text"]
    )


def test_cancel_stops_within_one_decoder_step_and_frees_the_model(studio):
    model = studio.model("speller")
    gate, waiting = Gate(), queue.Queue()
    a = studio.start_text("speller", gate, text="teh cat sat on teh mat and teh dgo ran",
                          decoder="greedy")  # fmt: skip
    assert gate.at_first.wait(30)
    b = studio.start_text("speller", waiting.put, text=SENTENCE, decoder="greedy")
    assert waiting.get(timeout=30)["event"] == "queued"
    studio.cancel(b.id)  # cancelled while it waits: leaves the queue
    studio.cancel(a.id)  # cancelled mid-answer
    gate.release.set()
    assert a.finished.wait(30) and b.finished.wait(30)
    tokens = [e for e in gate.events if e["event"] == "token"]
    assert gate.events[-1]["event"] == "cancelled"
    assert len(tokens) == a.cancelled_at == 1  # nothing decoded after the cancel was seen
    kinds = [waiting.get_nowait()["event"] for _ in range(waiting.qsize())]
    assert kinds[-1] == "cancelled" and "token" not in kinds and "start" not in kinds
    assert studio.lane("speller").waiting == 0
    assert model.generate(SENTENCE).text  # the model's lock was released


LONG = {
    "text": "teh cat sat on teh mat and teh dgo ran in teh park",
    "decoder": "greedy",
    "options": {"min_new_tokens": 40},
}  # forty pieces, whatever the model would say


def slow_studio(studio_root):
    """A studio whose speller takes 50 ms a piece (a slow device; the decoding is real),
    and the jobs it starts."""
    studio = Studio([studio_root / "speller"])
    real = studio.model("speller")

    class Slow:
        session_info, profile, default_decoder = real.session_info, real.profile, "greedy"

        def stream(self, text, **kwargs):
            for piece in real.stream(text, **kwargs):
                time.sleep(0.05)
                yield piece

    studio._models["speller"] = Slow()
    jobs = []
    original = studio.start_text

    def recorded(*args, **kwargs):
        jobs.append(original(*args, **kwargs))
        return jobs[-1]

    studio.start_text = recorded
    return studio, jobs


def read_one_token_and_close(client, url):
    with client.stream("POST", url, json=LONG) as response:
        for line in response.iter_lines():
            if '"event": "token"' in line:
                return


def check_cancelled_soon(job):
    assert job.finished.wait(10)
    assert job.cancelled
    assert job.cancelled_at is not None
    assert job.cancelled_at <= 5  # of forty: stopped a piece or so after the close


def test_a_closed_connection_cancels_its_generation(studio_root):
    studio, jobs = slow_studio(studio_root)
    with TestClient(create_app(studio)) as client:
        read_one_token_and_close(client, "/api/bundles/speller/generate")
    check_cancelled_soon(jobs[0])
    assert studio.lane("speller").waiting == 0


def test_a_closed_connection_to_the_real_server_cancels_its_generation(studio_root):
    import socket

    import httpx

    uvicorn = pytest.importorskip("uvicorn")
    studio, jobs = slow_studio(studio_root)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(studio), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        with httpx.Client(timeout=30) as client:
            read_one_token_and_close(
                client, f"http://127.0.0.1:{port}/api/bundles/speller/generate"
            )
        check_cancelled_soon(jobs[0])
    finally:
        server.should_exit = True
        thread.join(10)


def test_cancel_endpoint(client):
    response = client.post("/api/jobs/nope/cancel")
    assert response.status_code == 404
    assert "unknown running job 'nope'" in response.json()["error"]


def test_terminal_front_end_streams_with_stats(studio, studio_root):
    model = edgert.load(studio_root / "speller")
    script = "\n".join([":use speller", SENTENCE, ":decoder aggressive", SENTENCE, ":decoder nope", ":use dolphin",
                        QUESTIONS[0], ":use nope", ":quit", "never read"])  # fmt: skip
    out = io.StringIO()
    repl(studio, io.StringIO(script + "\n"), out)
    text = out.getvalue()
    expected = model.generate(SENTENCE).text
    assert text.count(expected) == 2
    assert "decoder greedy" in text and "decoder aggressive" in text
    assert "tokens/s" in text and "decoder calls" in text and "acceptance" in text
    assert "error: unknown decoder 'nope'" in text
    assert "error: this bundle answers questions about a context" in text
    assert "error: unknown bundle 'nope'" in text


def test_the_command_warns_off_loopback_and_refuses_an_empty_folder(studio_root, tmp_path):
    import subprocess
    import sys

    empty = subprocess.run([sys.executable, "-m", "edgert", "app", str(tmp_path)],
                           capture_output=True, text=True)  # fmt: skip
    assert empty.returncode == 1
    assert f"no bundles under {tmp_path}" in empty.stderr
    assert "edgert export zoo:speller" in empty.stderr
    missing = subprocess.run([sys.executable, "-m", "edgert", "app", str(tmp_path / "nope")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 1
    assert "no such bundle or folder" in missing.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "edgert", "app", str(studio_root / "speller"), "--host", "0.0.0.0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = [process.stdout.readline() for _ in range(2)]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "1 bundle(s): speller" in lines[0]
    assert lines[1].startswith("serving on http://0.0.0.0:")
    assert "warning: listening on 0.0.0.0: anyone who can reach this machine" in err
