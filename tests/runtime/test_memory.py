"""Bounded memory: a long run of one loaded model keeps its RSS flat, the context-memory
cache stays within the budget its device profile gives it, and an input longer than the
profile's window is refused, not buffered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.dolphin_models import CONTEXTS, QUESTIONS

import edgert
from edgert.errors import InputError

RUNNER = Path(__file__).resolve().parents[1] / "helpers" / "long_run.py"
FLAT = 0.10  # largest RSS change after warm-up, as a share of the warm-up RSS


def long_run(bundle, *args):
    """The runner's report, from a process of its own: its RSS is the runtime's alone."""
    done = subprocess.run([sys.executable, str(RUNNER), str(bundle), *args],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_thousand_generations_over_a_hundred_contexts_keep_rss_flat(dolphin_bundles):
    report = long_run(dolphin_bundles["dolphin"], "--generations", "1000", "--distinct", "100")
    assert report["max_drift"] <= FLAT, report
    cache = report["cache"]
    assert cache["entries"] == 100 and cache["hits"] == 900  # every context encoded once


def test_an_evicting_context_cache_stays_within_its_budget(dolphin_bundles):
    report = long_run(dolphin_bundles["dolphin"], "--generations", "1000", "--distinct", "100",
                      "--cache-bytes", "20000")  # fmt: skip
    assert report["max_drift"] <= FLAT, report
    cache = report["cache"]
    assert 0 < cache["bytes"] <= cache["max_bytes"] == 20000
    assert cache["entries"] < 100  # the least recently used were evicted


def test_a_thousand_generations_of_every_decoder_keep_rss_flat(seq2seq_bundles):
    report = long_run(seq2seq_bundles["t5v11"], "--generations", "1000", "--distinct", "100")
    assert report["max_drift"] <= FLAT, report


def test_the_context_cache_budget_comes_from_the_device_profile(dolphin_bundles, tmp_path):
    root = Path(__file__).resolve().parents[2] / "devices"
    text = (root / "cpu-generic.toml").read_text().replace('id = "cpu-generic"', 'id = "small"')
    profile = tmp_path / "small.toml"
    profile.write_text(text.replace("[runtime]\n", "[runtime]\ncache_mib = 1\n"))
    assert edgert.load(dolphin_bundles["dolphin"]).memory_cache.max_bytes == 64 * 2**20
    model = edgert.load(dolphin_bundles["dolphin"], device=str(profile))
    assert model.memory_cache.max_bytes == 2**20
    model.generate(QUESTIONS[0], context=CONTEXTS[0], max_new_tokens=4)
    assert 0 < model.memory_cache.bytes <= 2**20


def test_a_negative_cache_budget_is_a_profile_error(tmp_path):
    from edgert.errors import DeviceProfileError

    root = Path(__file__).resolve().parents[2] / "devices"
    text = (root / "cpu-generic.toml").read_text().replace('id = "cpu-generic"', 'id = "bad"')
    profile = tmp_path / "bad.toml"
    profile.write_text(text.replace("[runtime]\n", "[runtime]\ncache_mib = -1\n"))
    with pytest.raises(DeviceProfileError, match="cache_mib"):
        edgert.resolve_device(str(profile))


def test_inputs_longer_than_the_window_are_refused(seq2seq_bundles, dolphin_bundles):
    model = edgert.load(seq2seq_bundles["t5v11"])
    limit = model.defaults["max_input_length"]
    with pytest.raises(InputError, match=str(limit)):
        model.generate("fox " * (limit + 10), max_new_tokens=2)
    dolphin = edgert.load(dolphin_bundles["dolphin"])
    words = " ".join(CONTEXTS)
    with pytest.raises(InputError, match="context"):
        dolphin.generate(QUESTIONS[0], context=" ".join([words] * 50), max_new_tokens=2)
