"""Bundles: checksums, schema, unsafe paths, atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers.bundles import read_manifest

import edgert
from edgert.bundle import SCHEMA_VERSION, open_bundle, staged_directory, write_manifest
from edgert.errors import BundleError


def rewrite_manifest(bundle, change):
    manifest = read_manifest(bundle)
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_valid_bundle_loads_and_runs(tiny_bundle):
    model = edgert.load(tiny_bundle)
    out = model.logits(np.ones((2, 5), np.float32))
    assert out.shape == (2, 3)
    assert model.classify(np.ones(5, np.float32), top_k=2)[0].labels == ("owl", "dog")


def test_manifest_lists_every_file_with_sha256(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert set(manifest["files"]) == {"model.onnx"}
    assert len(manifest["files"]["model.onnx"]) == 64


def test_tampered_file_is_refused(tiny_bundle):
    with open(tiny_bundle / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="checksum mismatch for model.onnx") as info:
        edgert.load(tiny_bundle)
    assert "re-export" in info.value.hint


def test_missing_file_is_refused(tiny_bundle):
    (tiny_bundle / "model.onnx").unlink()
    with pytest.raises(BundleError, match="model.onnx is missing"):
        open_bundle(tiny_bundle)


@pytest.mark.parametrize("bad", ["../outside.onnx", "/etc/passwd", "a/../../b", "..\\x"])
def test_paths_escaping_the_bundle_are_refused(tiny_bundle, bad):
    rewrite_manifest(tiny_bundle, lambda m: m["files"].update({bad: "0" * 64}))
    with pytest.raises(BundleError, match="unsafe path|outside the bundle"):
        open_bundle(tiny_bundle)


def test_symlink_escaping_the_bundle_is_refused(tiny_bundle, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    os.symlink(secret, tiny_bundle / "link.txt")
    rewrite_manifest(tiny_bundle, lambda m: m["files"].update({"link.txt": "0" * 64}))
    with pytest.raises(BundleError, match="outside the bundle"):
        open_bundle(tiny_bundle)


def test_newer_schema_is_refused_with_upgrade_hint(tiny_bundle):
    rewrite_manifest(tiny_bundle, lambda m: m.update(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(BundleError, match="schema_version 2 is not supported") as info:
        open_bundle(tiny_bundle)
    assert "upgrade edgert" in info.value.hint


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="bundle not found"):
        edgert.load(tmp_path / "missing")
    with pytest.raises(BundleError, match="no manifest.json"):
        edgert.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        edgert.load(tmp_path)


def test_corrupt_onnx_with_matching_checksum_gives_a_clear_error(tiny_bundle):
    (tiny_bundle / "model.onnx").write_bytes(b"this is not onnx")
    manifest = read_manifest(tiny_bundle)
    del manifest["files"]
    write_manifest(tiny_bundle, {k: v for k, v in manifest.items() if k != "schema_version"})
    with pytest.raises(BundleError, match="not a valid ONNX model") as info:
        edgert.load(tiny_bundle)
    assert "re-export" in info.value.hint


def test_staged_directory_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_directory(target) as staging:
        (staging / "half.onnx").write_bytes(b"x")
        raise RuntimeError("crash mid-export")
    assert list(tmp_path.iterdir()) == []


def test_staged_directory_replaces_only_when_complete(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(BundleError, match="already exists"), staged_directory(target):
        pass
    with pytest.raises(RuntimeError), staged_directory(target, overwrite=True):
        raise RuntimeError("crash")
    assert (target / "old").exists()
    with staged_directory(target, overwrite=True) as staging:
        (staging / "new").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["new"]
