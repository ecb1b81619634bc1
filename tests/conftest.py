"""Shared fixtures: a fresh plugin catalog, tiny ONNX bundles built with onnx.helper, and
session-scoped exports (seconds each, built only when a test asks): the embedded digits
model, tiny seq2seq sources and bundles, tiny decoder-decoder sources and bundles, tiny
Whisper checkpoints and bundles."""

from __future__ import annotations

import pytest
from helpers.bundles import full_int8_profile, make_bundle
from helpers.cli import run_cli
from helpers.dolphin_models import export, make_composition, make_dolphin
from helpers.seq2seq_models import KINDS, make_source
from helpers.whisper_models import whisper_folder

from edgert.catalog import load_catalog
from edgert.plugin_manager import get_plugin_manager


def pytest_runtest_setup(item):
    """``@pytest.mark.accelerator("qnn")``: skip, with the provider's own reason, where the
    named execution provider (``qnn`` or ``ort-qnn``) cannot run here; a name no installed
    provider has is a mistake in the test, so it fails instead of skipping quietly."""
    marks = list(item.iter_markers(name="accelerator"))
    if not marks:
        return
    from edgert.catalog import get_catalog

    providers = get_catalog().providers
    for mark in marks:
        if len(mark.args) != 1:
            pytest.fail(f"accelerator takes one provider name, got {mark.args!r}", pytrace=False)
        (name,) = mark.args
        found = next((n for n in (name, f"ort-{name}") if n in providers), None)
        if found is None:
            pytest.fail(
                f"accelerator({name!r}): no such provider; known: {', '.join(providers.names())}",
                pytrace=False,
            )
        provider = providers.get(found)()
        if not provider.is_available():
            pytest.skip(f"{found} unavailable: {provider.unavailable_reason()}")


@pytest.fixture
def catalog():
    """A catalog of built-ins only (no entry points), built fresh for the test."""
    return load_catalog(get_plugin_manager(entry_points=False))


@pytest.fixture
def tiny_bundle(tmp_path):
    """A tiny valid bundle on the generic CPU profile."""
    return make_bundle(tmp_path / "tiny")


@pytest.fixture(scope="session")
def digits_bundles(tmp_path_factory):
    """The embedded digits model exported for fp32, int8 and (when QNN is here) the NPU."""
    pytest.importorskip("torch")
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.cnn.export import CnnExport, export_cnn

    root = tmp_path_factory.mktemp("digits")
    bundles = {}
    devices = {
        "fp32": "cpu-generic",
        "int8": str(full_int8_profile(root / "devices")),
        "int8-selective": "x86-avx2-int8",
        "npu": "snapdragon-8-gen3-npu",
    }
    for key, device in devices.items():
        profile, _ = edgert.resolve_device(device)
        provider = get_catalog().providers.get(profile.runtime.providers[0])()
        if not provider.is_available():
            continue
        out = root / key
        export_cnn(CnnExport(source="zoo:digits", out=out), profile, get_catalog())
        bundles[key] = out
    return bundles


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


@pytest.fixture(scope="session")
def whisper_sources(tmp_path_factory):
    """Multilingual (timestamps, language detection) and English-only checkpoints, a second
    multilingual one with the same tokenizer (a draft for ``speculative``), and one with
    the generation config transformers derives from a bare ``WhisperConfig``."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("whisper")
    return {
        "multilingual": whisper_folder(root / "multilingual"),
        "english": whisper_folder(root / "english", multilingual=False, seed=1),
        "draft": whisper_folder(root / "draft", seed=2, d_model=24, layers=1),
        "plain": whisper_folder(root / "plain", seed=3, whisper_config=False),
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
