"""CNN export end to end: sources, steps per profile, validation, manifest, bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers.bundles import full_int8_profile  # noqa: E402

import edgert  # noqa: E402
from edgert.catalog import get_catalog  # noqa: E402
from edgert.errors import ExportError, UnknownNameError  # noqa: E402
from edgert.exporters.cnn.export import CnnExport, export_cnn  # noqa: E402
from edgert.exporters.zoo.digits import digits_cnn, eval_data  # noqa: E402


def export(source, out, device="cpu-generic", **kwargs):
    profile, _ = edgert.resolve_device(device)
    return export_cnn(CnnExport(source=source, out=out, **kwargs), profile, get_catalog())


@pytest.fixture
def tiny_module(tmp_path, monkeypatch):
    """An importable ``tiny_models:build`` factory without INPUT_SHAPE."""
    (tmp_path / "tiny_models.py").write_text(
        "import torch\n"
        "from helpers.cnn_models import TinyRGB\n"
        "def build():\n    return TinyRGB().eval()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tiny_models:build"


def test_fp32_bundle_matches_torch_and_has_a_complete_manifest(digits_bundles):
    bundle = edgert.load(digits_bundles["fp32"])
    x, _ = eval_data()
    with torch.inference_mode():
        expected = digits_cnn()(torch.from_numpy(x)).numpy()
    got = bundle.logits(x)
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    m = bundle.bundle.manifest
    assert m["family"] == "cnn"
    assert m["precision"] == "fp32"
    assert m["device"]["id"] == "cpu-generic"
    assert m["device"]["profile"]["runtime"]["providers"] == ["ort-cpu"]
    assert m["graphs"][0]["inputs"] == [
        {"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}
    ]
    assert m["labels"] == list("0123456789")
    assert m["validation"]["top1_agreement"] == 1.0
    assert m["validation"]["accuracy_exported"] >= 0.97
    assert [s["name"] for s in m["steps"]] == ["optimize", "validate"]
    assert set(m["provenance"]["versions"]) >= {"edgert", "onnx", "onnxruntime", "torch"}
    assert set(m["files"]) == {"model.onnx"}


def test_int8_bundle_reports_agreement_and_accuracy_drop(digits_bundles):
    m = edgert.load(digits_bundles["int8"]).bundle.manifest
    assert m["precision"] == "int8"
    v = m["validation"]
    assert v["top1_agreement"] >= 0.98
    assert "accuracy_drop" in v
    assert v["accuracy_exported"] >= 0.97
    assert m["graphs"][0]["inputs"][0]["shape"][0] == "batch"
    assert m["quantization"]["quantized_nodes"] > 0


def test_shipped_cpu_int8_profile_keeps_small_models_fp32_and_says_so(digits_bundles):
    m = edgert.load(digits_bundles["int8-selective"]).bundle.manifest
    assert m["device"]["id"] == "x86-avx2-int8"
    assert m["quantization"]["quantized_nodes"] == 0
    assert "kept fp32" in m["quantization"]["note"]
    assert m["precision"] == "fp32"
    assert m["validation"]["top1_agreement"] == 1.0


def test_shipped_cpu_int8_profile_quantizes_large_gemms(tmp_path):
    source = tmp_path / "wide.py"
    source.write_text(
        "import torch\n"
        "INPUT_SHAPE = (1, 300)\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(300, 301), torch.nn.ReLU(), torch.nn.Linear(301, 7))\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        calib = tmp_path / "calib.npy"
        np.save(calib, np.random.default_rng(0).standard_normal((64, 300)).astype(np.float32))
        m = export("wide:build", tmp_path / "b", device="x86-avx2-int8", calibration=calib).manifest
    finally:
        sys.path.remove(str(tmp_path))
    assert m["precision"] == "int8"
    assert m["quantization"]["quantized_nodes"] == 1  # only the 300x301 Gemm is big enough
    assert m["validation"]["top1_agreement"] >= 0.9


def test_npu_bundle_is_static_and_validated_on_the_npu(digits_bundles):
    if "npu" not in digits_bundles:
        pytest.skip("onnxruntime-qnn not installed")
    m = edgert.load(digits_bundles["npu"]).bundle.manifest
    assert m["graphs"][0]["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert m["validation"]["ran_on"].startswith("ort-qnn")
    assert [s["name"] for s in m["steps"]] == ["optimize", "fix-shapes", "quantize", "validate"]


def test_factory_source_needs_an_input_shape(tmp_path, tiny_module):
    with pytest.raises(ExportError, match="input shape of 'tiny_models:build' is unknown") as info:
        export(tiny_module, tmp_path / "b")
    assert "--input-shape" in info.value.hint
    assert not (tmp_path / "b").exists()
    bundle = export(tiny_module, tmp_path / "b", input_shape=(1, 3, 7, 5))
    assert bundle.manifest["validation"]["top1_agreement"] == 1.0


def test_image_folder_calibration_for_int8(tmp_path, tiny_module):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(images / f"{i}.png")
    device = str(full_int8_profile(tmp_path / "devices"))
    bundle = export(tiny_module, tmp_path / "q", device=device,
                    input_shape=(1, 3, 7, 5), calibration=images)  # fmt: skip
    assert bundle.manifest["precision"] == "int8"
    assert bundle.manifest["validation"]["inputs"] == 12


def test_calibration_of_the_wrong_shape_fails_before_writing(tmp_path):
    bad = tmp_path / "calib.npy"
    np.save(bad, np.zeros((4, 3, 8, 8), np.float32))
    with pytest.raises(
        ExportError,
        match=r"has shape \(4, 3, 8, 8\), but the model takes samples shaped \(1, 8, 8\)",
    ):
        export("zoo:digits", tmp_path / "out", device="x86-avx2-int8", calibration=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.npy"]


def test_int8_without_calibration_data_is_a_clear_error(tmp_path, tiny_module):
    device = str(full_int8_profile(tmp_path / "devices"))
    with pytest.raises(ExportError, match="needs calibration data") as info:
        export(tiny_module, tmp_path / "out", device=device, input_shape=(1, 3, 7, 5))
    assert "--calibration" in info.value.hint
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_crash_mid_export_leaves_no_bundle(tmp_path, monkeypatch):
    from edgert.exporters.steps.validate import Validate

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Validate, "run_bundle", boom)
    with pytest.raises(ExportError, match=r"\[validate\] RuntimeError: disk on fire"):
        export("zoo:digits", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_unless_forced(tmp_path, digits_bundles):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(edgert.BundleError, match="already exists"):
        export("zoo:digits", out)
    export("zoo:digits", out, force=True)
    assert edgert.load(out).provider == "ort-cpu"


def test_torchscript_and_torch_export_files(tmp_path):
    model = digits_cnn()
    scripted = tmp_path / "digits.pt"
    torch.jit.save(torch.jit.script(model), str(scripted))
    a = export(str(scripted), tmp_path / "ts", input_shape=(1, 1, 8, 8))
    program = tmp_path / "digits.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 8, 8),)), str(program))
    b = export(str(program), tmp_path / "pt2", input_shape=(1, 1, 8, 8))
    for bundle in (a, b):
        assert bundle.manifest["validation"]["top1_agreement"] == 1.0


def test_pickled_modules_are_refused(tmp_path):
    with pytest.raises(ExportError, match="refusing to unpickle"):
        export(str(tmp_path / "model.pth"), tmp_path / "out", input_shape=(1, 1, 8, 8))


def test_corrupt_model_files_give_clear_errors(tmp_path):
    for name in ("broken.pt2", "broken.pt"):
        (tmp_path / name).write_bytes(b"\x00garbage")
        with pytest.raises(ExportError, match="is not a"):
            export(str(tmp_path / name), tmp_path / "out", input_shape=(1, 1, 8, 8))
    assert not (tmp_path / "out").exists()


def test_unknown_zoo_model():
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        export("zoo:digit", "unused")


def test_fp16_profile_validates_on_cpu_when_the_gpu_is_missing(tmp_path):
    bundle = export("zoo:digits", tmp_path / "gpu", device="nvidia-cuda-fp16")
    v = bundle.manifest["validation"]
    assert bundle.manifest["precision"] == "fp16"
    assert v["ran_on"] == "ort-cpu (ort-cuda unavailable here)"
    assert v["top1_agreement"] >= 0.99


def test_keep_intermediate_keeps_every_step(tmp_path):
    export(
        "zoo:digits", tmp_path / "b", device="x86-avx2-int8", keep_intermediate=tmp_path / "steps"
    )
    names = sorted(p.name for p in (tmp_path / "steps").iterdir())
    assert names == ["00-torch-to-onnx", "01-optimize", "02-quantize"]
    assert (tmp_path / "steps" / "01-optimize" / "model" / "model.onnx").is_file()
