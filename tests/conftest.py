"""Shared fixtures: a fresh plugin catalog, tiny ONNX bundles built with onnx.helper, and
session-scoped exports of the embedded digits model (seconds, not minutes)."""

from __future__ import annotations

import pytest
from builders import full_int8_profile, make_bundle

from edgert.catalog import load_catalog
from edgert.plugin_manager import get_plugin_manager


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
