"""Integrity of bundles on disk: sizes on every load, `edgert verify`, paths that leave the
bundle, external data outside it, impossible shapes."""

from __future__ import annotations

import json
import os

import pytest
from helpers.cli import run

import edgert
from edgert.bundle import MANIFEST, open_bundle, write_manifest
from edgert.errors import BundleError


def rewrite(bundle, change):
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def test_sizes_are_listed_and_checked_even_without_checksums(tiny_bundle):
    manifest = json.loads((tiny_bundle / MANIFEST).read_text())
    assert manifest["sizes"]["model.onnx"] == (tiny_bundle / "model.onnx").stat().st_size
    data = (tiny_bundle / "model.onnx").read_bytes()
    (tiny_bundle / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"model.onnx .* has \d+ bytes, the manifest says"):
        open_bundle(tiny_bundle, verify=False)


def test_verify_names_each_changed_missing_and_unlisted_file(tiny_bundle, capsys):
    code, out, _ = run(capsys, "verify", str(tiny_bundle))
    assert code == 0 and "every listed file matches" in out
    (tiny_bundle / "notes.txt").write_text("added after export")
    code, out, _ = run(capsys, "verify", str(tiny_bundle))
    assert code == 0 and "notes.txt: present but not listed" in out
    with open(tiny_bundle / "model.onnx", "r+b") as handle:
        handle.seek(40)
        handle.write(b"\x00\x01")
    code, out, _ = run(capsys, "verify", str(tiny_bundle), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert report["changed"] == ["model.onnx"] and report["unlisted"] == ["notes.txt"]


@pytest.mark.parametrize("path", ["../outside.onnx", "/etc/passwd", "sub/../../x"])
def test_paths_leaving_the_bundle_are_refused(tiny_bundle, path):
    rewrite(tiny_bundle, lambda m: m["files"].update({path: "0" * 64}))
    with pytest.raises(BundleError, match="unsafe path|outside the bundle"):
        edgert.load(tiny_bundle)


def test_a_symlink_leaving_the_bundle_is_refused(tiny_bundle, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    os.replace(tiny_bundle / "model.onnx", outside)
    (tiny_bundle / "model.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match="resolves outside the bundle"):
        edgert.load(tiny_bundle)


def test_external_data_outside_the_bundle_is_refused(tiny_bundle, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_bundle / "model.onnx"))
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
              location="weights.bin", size_threshold=0)  # fmt: skip
    os.replace(tmp_path / "weights.bin", tiny_bundle.parent / "weights.bin")
    graph = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(graph, str(tiny_bundle / "model.onnx"))
    manifest = json.loads((tiny_bundle / MANIFEST).read_text())
    (tiny_bundle / MANIFEST).unlink()
    write_manifest(tiny_bundle, {k: v for k, v in manifest.items() if k not in ("files", "sizes")})
    with pytest.raises(BundleError, match="escapes model directory") as info:
        edgert.load(tiny_bundle)
    assert "re-export" in info.value.hint


def test_impossible_shapes_are_refused_at_load(tiny_bundle):
    rewrite(tiny_bundle, lambda m: m["graphs"][0]["inputs"][0].update(shape=[10**15, 5]))
    with pytest.raises(BundleError, match="invalid shape"):
        edgert.load(tiny_bundle)
    rewrite(tiny_bundle, lambda m: m["graphs"][0]["inputs"][0].update(shape=[1, 7]))
    with pytest.raises(BundleError, match="does not describe its graph"):
        edgert.load(tiny_bundle)


def test_a_huge_thread_count_is_refused_before_onnxruntime(tiny_bundle):
    rewrite(tiny_bundle, lambda m: m["device"]["profile"]["runtime"].update(threads=10**15))
    with pytest.raises(edgert.DeviceProfileError, match="runtime.threads must be between 0 and"):
        edgert.load(tiny_bundle)


def test_a_manifest_describing_other_graphs_is_refused_at_load(seq2seq_bundles, tmp_path):
    """Found by the fuzzed loaders: each passed ``edgert.load`` and failed in generate()."""
    import shutil

    copy = tmp_path / "t5"
    shutil.copytree(seq2seq_bundles["t5"], copy)
    rewrite(copy, lambda m: m.update(position_bias=None))
    with pytest.raises(
        BundleError, match="position_bias describes graphs where encoder.onnx takes"
    ):
        edgert.load(copy)
    shutil.rmtree(copy)
    shutil.copytree(seq2seq_bundles["t5"], copy)
    rewrite(copy, lambda m: m["embeddings"]["decoder"].update(scale=[]))
    with pytest.raises(BundleError, match=r"embeddings.decoder.scale is \[\]; expected a number"):
        edgert.load(copy)


def test_a_huge_layer_count_is_refused_without_building_its_names(seq2seq_bundles, tmp_path):
    """Found by the fuzzed loaders: 121,594,663 layers passed the integer bound and the
    cache names of that many layers filled the machine's memory."""
    import shutil

    copy = tmp_path / "t5"
    shutil.copytree(seq2seq_bundles["t5"], copy)
    rewrite(copy, lambda m: m["layout"].update(layers=121594663))
    with pytest.raises(BundleError, match="layout.layers is 121594663"):
        edgert.load(copy)


def test_embedding_rows_of_another_width_are_refused_at_load(seq2seq_bundles, tmp_path):
    """Found by the fuzzed loaders: a flipped bit in a table's header gave a narrower table
    that still read, and onnxruntime refused it inside generate()."""
    import shutil

    import numpy as np

    copy = tmp_path / "t5"
    shutil.copytree(seq2seq_bundles["t5"], copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    name = manifest["embeddings"]["decoder"]["file"]
    rows = np.load(copy / name)
    np.save(copy / name, rows[:, :-3])
    (copy / MANIFEST).unlink()
    write_manifest(copy, {k: v for k, v in manifest.items() if k not in ("files", "sizes")})
    with pytest.raises(BundleError, match=rf"rows are {rows.shape[1] - 3} wide, the graph takes"):
        edgert.load(copy)
