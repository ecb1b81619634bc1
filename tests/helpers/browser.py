"""The app in a real browser: starting ``edgert app`` as a user does, Debian's chromium
driven by Playwright, screenshots for a person to look at (build/screenshots/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def app_server(*paths: Path) -> Iterator[str]:
    """``python -m edgert app PATHS --port 0`` until the generator closes; yields its URL."""
    pytest.importorskip("uvicorn")
    process = subprocess.Popen(
        [sys.executable, "-m", "edgert", "app", *map(str, paths), "--port", "0"],
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


def launch_browser() -> Iterator[object]:
    """Headless chromium, or a skip with the reason where it cannot start here."""
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
