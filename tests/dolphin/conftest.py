"""Session-scoped tiny decoder-decoder sources and bundles (a few seconds each)."""

from __future__ import annotations

import pytest
from dolphin_models import make_composition, make_dolphin

CONTEXTS = [
    "the context encoder reads a long document once and the cache keeps its memory",
    "who wrote the report and when was it published on the phone",
    "memory embeddings replace placeholder tokens in the prompt of a small model",
]
QUESTIONS = ["who wrote the report", "when was it published", "what does the cache keep"]


def export(source, out, device="cpu-generic", **options):
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.dolphin import DolphinExport, export_dolphin

    profile, _ = edgert.resolve_device(device)
    return export_dolphin(
        DolphinExport(source=str(source), out=out, **options), profile, get_catalog()
    )


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
