"""The app in a real browser: Playwright drives Debian's chromium (headless) against
``edgert app`` started as a user starts it. Screenshots are kept under build/screenshots/
for a person to look at. Skipped, with the reason, where the browser cannot start."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from helpers.browser import app_server, launch_browser, open_bundle, shot
from helpers.dolphin_models import CONTEXTS, QUESTIONS


@pytest.fixture(scope="module")
def server(studio_root):
    yield from app_server(studio_root)


@pytest.fixture(scope="module")
def browser():
    yield from launch_browser()


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


def test_stop_ends_the_stream(browser, server, studio_root):
    page = open_bundle(browser, server, "speller")
    network = page.context.new_cdp_session(page)  # a slow link: the stream takes seconds
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": 1500, "uploadThroughput": -1})  # fmt: skip
    sentence = "teh cat sat on teh mat and teh dgo ran in teh park"
    page.fill("#input", sentence)
    longest = page.input_value("#options input[data-name=max_new_tokens]")  # the bundle's
    page.fill("#options input[data-name=min_new_tokens]", longest)  # no early stop
    page.click("#go")
    page.wait_for_selector("#output:not(:empty)", timeout=30000)
    page.click("#stop")
    page.wait_for_selector("#go:not([disabled])", timeout=30000)
    assert page.is_disabled("#stop")
    assert page.text_content("#queue") == "stopped"
    partial = page.text_content("#output")
    full = subprocess.run(
        [sys.executable, "-m", "edgert", "run", str(studio_root / "speller"), sentence,
         "-O", f"min_new_tokens={longest}"], capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert partial and len(partial) < len(full)
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    page.fill("#options input[data-name=min_new_tokens]", "0")
    correct(page, "teh cat sat on teh mat")  # the model was freed for the next request
    assert finished_text(page) == edgert_run(studio_root / "speller", "teh cat sat on teh mat")


def circle(cx, cy, rx, ry, start=0.0, end=2 * math.pi, n=30):
    return [(cx + rx * math.cos(start + (end - start) * i / n),
             cy + ry * math.sin(start + (end - start) * i / n)) for i in range(n + 1)]  # fmt: skip


# Digits as a person draws them with a mouse: strokes in the unit square.
STROKES = {
    "0": [circle(0.5, 0.5, 0.28, 0.4)],
    "1": [[(0.5, 0.1), (0.5, 0.9)]],
    "2": [[*circle(0.5, 0.32, 0.28, 0.22, math.pi, math.pi * 2.25, 20), (0.2, 0.88), (0.82, 0.88)]],
    "3": [circle(0.48, 0.3, 0.26, 0.2, -math.pi * 0.9, math.pi * 0.5, 20),
          circle(0.48, 0.7, 0.28, 0.2, -math.pi * 0.5, math.pi * 0.9, 20)],
    "4": [[(0.6, 0.1), (0.2, 0.62), (0.8, 0.62)], [(0.62, 0.35), (0.62, 0.9)]],
    "5": [[(0.75, 0.12), (0.3, 0.12), (0.28, 0.45), *circle(0.5, 0.65, 0.25, 0.22, -math.pi * 0.75, math.pi * 0.85, 20)]],
    "6": [[(0.65, 0.1), (0.35, 0.45), *circle(0.5, 0.68, 0.22, 0.22, math.pi, 3 * math.pi)]],
    "7": [[(0.2, 0.12), (0.8, 0.12), (0.45, 0.9)]],
    "8": [circle(0.5, 0.3, 0.2, 0.2), circle(0.5, 0.72, 0.24, 0.2)],
    "9": [circle(0.5, 0.32, 0.22, 0.22), [(0.72, 0.32), (0.62, 0.9)]],
}  # fmt: skip


def test_drawn_digits_are_classified(browser, server):
    page = open_bundle(browser, server, "digits")
    page.wait_for_selector("#page-image:not([hidden])")
    box = page.locator("#canvas").bounding_box()

    def at(x, y):
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    for digit, strokes in STROKES.items():
        page.click("#clear")
        for stroke in strokes:
            page.mouse.move(*at(*stroke[0]))
            page.mouse.down()
            for point in stroke[1:]:
                page.mouse.move(*at(*point), steps=4)
            page.mouse.up()
        page.evaluate("document.getElementById('top').replaceChildren()")
        page.click("#classify")
        page.wait_for_selector("#top td[data-rank='1']", timeout=30000)
        assert page.text_content("#top td[data-rank='1']") == digit
        assert "ms on ort-cpu" in page.text_content("#latency")
        if digit == "7":
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
