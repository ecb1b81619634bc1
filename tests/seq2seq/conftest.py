"""Session-scoped tiny seq2seq sources and fp32 bundles (seconds each)."""

from __future__ import annotations

import pytest
from seq2seq_models import make_source

KINDS = ("t5", "t5v11", "bart", "marian")


@pytest.fixture(scope="session")
def seq2seq_sources(tmp_path_factory):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("s2s-src")
    return {kind: make_source(kind, root / kind) for kind in KINDS}


@pytest.fixture(scope="session")
def seq2seq_bundles(seq2seq_sources, tmp_path_factory):
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    root = tmp_path_factory.mktemp("s2s-bundles")
    profile, _ = edgert.resolve_device("cpu-generic")
    bundles = {}
    for kind, source in seq2seq_sources.items():
        export_seq2seq(Seq2SeqExport(source=str(source), out=root / kind), profile, get_catalog())
        bundles[kind] = root / kind
    return bundles


@pytest.fixture(scope="session")
def wide_int8_bundle(tmp_path_factory):
    """A random T5 v1.1 wide enough to be int8-quantized, whose logits reach ~50."""
    pytest.importorskip("transformers")
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    root = tmp_path_factory.mktemp("s2s-wide")
    source = make_source("t5v11", root / "source", wide=True)
    profile, _ = edgert.resolve_device("x86-avx2-int8")
    export_seq2seq(Seq2SeqExport(source=str(source), out=root / "int8"), profile, get_catalog())
    return root / "int8"
