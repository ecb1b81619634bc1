"""Session-scoped Whisper checkpoints (saved by transformers) and their bundles."""

from __future__ import annotations

import pytest
from helpers.cli import run_cli
from helpers.whisper_models import whisper_folder


@pytest.fixture(scope="session")
def whisper_sources(tmp_path_factory):
    """Multilingual (timestamps, language detection) and English-only checkpoints, and a
    second multilingual one with the same tokenizer (a draft for ``speculative``)."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("whisper")
    return {
        "multilingual": whisper_folder(root / "multilingual"),
        "english": whisper_folder(root / "english", multilingual=False, seed=1),
        "draft": whisper_folder(root / "draft", seed=2, d_model=24, layers=1),
    }


@pytest.fixture(scope="session")
def whisper_bundles(whisper_sources, tmp_path_factory):
    """Each checkpoint exported with ``edgert export`` (family detected) for cpu-generic."""
    root = tmp_path_factory.mktemp("whisper-bundles")
    bundles = {}
    for name, source in whisper_sources.items():
        out = root / name
        code, stdout, stderr = run_cli("export", str(source), "--device", "cpu-generic",
                                       "--out", str(out))  # fmt: skip
        assert code == 0, stderr
        assert "(speech, fp32, device cpu-generic)" in stdout
        bundles[name] = out
    return bundles
