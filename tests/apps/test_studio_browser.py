"""The app in a real browser: Playwright drives Debian's chromium (headless) against
``edgert app`` started as a user starts it. Screenshots are kept under build/screenshots/
for a person to look at. Skipped, with the reason, where the browser cannot start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.dolphin_models import CONTEXTS, QUESTIONS

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_ARGS = [  # a closed network: no background connections, no sandbox as root
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
    "--disable-component-update", "--no-first-run", "--disable-quic",
]  # fmt: skip


def chromium_path() -> str | None:
    for candidate in (os.environ.get("EDGERT_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):  # fmt: skip
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def server(studio_root):
    pytest.importorskip("uvicorn")
    process = subprocess.Popen(
        [sys.executable, "-m", "edgert", "app", str(studio_root), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = None
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        url = found.group(0) if found else None
    if url is None:
        process.kill()
        pytest.fail(f"edgert app did not start: {process.stderr.read()}")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    manager = sync_api.sync_playwright().start()
    try:
        launched = manager.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception as exc:  # the browser exists but cannot start here
        manager.stop()
        pytest.skip(f"chromium at {path} did not start: {exc}")
    yield launched
    launched.close()
    manager.stop()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_bundle(browser, url, bundle):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}?bundle={bundle}")
    page.wait_for_selector("#facts-table td[data-key=provider]", timeout=30000)
    page.errors = errors
    return page


def correct(page, text, decoder="greedy"):
    page.fill("#input", text)
    page.select_option("#decoder", decoder)
    page.evaluate("document.getElementById('output').dataset.done = ''")
    page.click("#go")


def finished_text(page):
    page.wait_for_selector("#output[data-done='1']", timeout=30000)
    return page.text_content("#output")


def edgert_run(bundle, text):
    done = subprocess.run([sys.executable, "-m", "edgert", "run", str(bundle), text],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_the_speller_streams_what_edgert_run_prints(browser, server, studio_root):
    page = open_bundle(browser, server, "speller")
    sentence = "teh cat sat on teh mat"
    for decoder in ("greedy", "aggressive"):
        correct(page, sentence, decoder)
        assert finished_text(page) == edgert_run(studio_root / "speller", sentence)
        stats = {td.get_attribute("data-key"): td.text_content()
                 for td in page.query_selector_all("#stats td[data-key]")}  # fmt: skip
        assert stats["provider"] == "ort-cpu"
        assert stats["profile"] == "cpu-generic"
        assert stats["first token"].endswith(" ms")
        assert float(stats["tokens/s"]) > 0
        assert int(stats["decoder calls"]) >= 1
        if decoder == "aggressive":
            assert stats["acceptance"].endswith("%")
    shot(page, "studio-speller")
    assert page.errors == []


def test_too_long_input_shows_the_runtimes_error(browser, server):
    page = open_bundle(browser, server, "speller")
    correct(page, "teh " * 2000)
    page.wait_for_selector("#error:not([hidden])", timeout=30000)
    message = page.text_content("#error")
    assert "this bundle takes at most" in message and "hint:" in message
    assert "Traceback" not in message
    shot(page, "studio-too-long")


def test_two_tabs_generate_at_once(browser, server, studio_root):
    texts = ["teh cat sat on teh mat", "a dgo ran in teh park"]
    pages = [open_bundle(browser, server, "speller") for _ in texts]
    for page, text in zip(pages, texts, strict=True):
        page.fill("#input", text)
        page.evaluate("document.getElementById('output').dataset.done = ''")
    for page in pages:  # both requests in flight together
        page.evaluate("document.getElementById('go').click()")
    for page, text in zip(pages, texts, strict=True):
        assert finished_text(page) == edgert_run(studio_root / "speller", text)
    shot(pages[1], "studio-second-tab")


def test_stop_ends_the_stream(browser, server):
    page = open_bundle(browser, server, "speller")
    correct(page, "teh cat sat on teh mat " * 20)
    page.click("#stop")
    page.wait_for_function("!document.getElementById('go').disabled", timeout=30000)
    assert page.is_disabled("#stop")
    correct(page, "teh cat sat on teh mat")  # the model was freed for the next request
    assert finished_text(page)


def test_a_drawn_digit_is_classified(browser, server):
    page = open_bundle(browser, server, "digits")
    page.wait_for_selector("#page-image:not([hidden])")
    box = page.locator("#canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"]
    page.mouse.move(x, y + 30)
    page.mouse.down()
    page.mouse.move(x, y + box["height"] - 30, steps=20)  # a vertical stroke: a one
    page.mouse.up()
    page.click("#classify")
    page.wait_for_selector("#top td[data-rank='1']", timeout=30000)
    assert page.text_content("#top td[data-rank='1']") == "1"
    assert "ms on ort-cpu" in page.text_content("#latency")
    shot(page, "studio-digits")
    assert page.errors == []


def test_a_context_answers_two_questions_from_one_memory(browser, server):
    page = open_bundle(browser, server, "dolphin")
    page.fill("#context", CONTEXTS[1] + " read once in the browser")
    seen = []
    for question in QUESTIONS[:2]:
        correct(page, question)
        finished_text(page)
        seen.append(page.text_content("#stats td[data-key='context memory']"))
    assert seen == ["encoded", "cache hit"]
    assert page.text_content("#stats td[data-key='saved by the cache']").endswith(" ms")
    shot(page, "studio-context")


def test_profile_button_shows_the_report(browser, server):
    page = open_bundle(browser, server, "speller")
    page.click("#profile-btn")
    page.wait_for_selector("#profile-table td[data-key='first token p50']", timeout=60000)
    assert "tokens/s" in page.text_content("#profile-table td[data-key=throughput]")
    assert '"schema_version": 1' in page.text_content("#profile-json")
    shot(page, "studio-profile")
