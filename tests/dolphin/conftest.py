"""Session-scoped tiny decoder-decoder sources and bundles (a few seconds each)."""

from __future__ import annotations

import pytest
from dolphin_models import export, make_composition, make_dolphin


@pytest.fixture(scope="session")
def dolphin_sources(tmp_path_factory):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("dolphin-src")
    return {
        "dolphin": make_dolphin(root / "dolphin"),
        "dolphin-mlp": make_dolphin(root / "dolphin-mlp", projector="mlp", slots=5, seed=3),
        "composition": make_composition(root / "composition"),
    }


@pytest.fixture(scope="session")
def dolphin_bundles(dolphin_sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("dolphin-bundles")
    for name, source in dolphin_sources.items():
        export(source, root / name)
    return {name: root / name for name in dolphin_sources}
