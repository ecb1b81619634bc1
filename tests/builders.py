"""Small builders shared by tests: ONNX graphs made with onnx.helper and bundles around them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def tiny_linear_onnx(path: Path, *, features: int = 5, classes: int = 3, batch="batch") -> Path:
    """``logits = input @ W`` with odd sizes, written with onnx.helper (no torch)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.arange(features * classes, dtype=np.float32).reshape(features, classes) / 10
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def make_bundle(root: Path, *, device: str = "cpu-generic", batch="batch") -> Path:
    """A valid cnn-family bundle around ``tiny_linear_onnx``, for runtime tests."""
    from edgert.bundle import write_manifest
    from edgert.profiles import load_profile_file

    root.mkdir(parents=True)
    tiny_linear_onnx(root / "model.onnx", batch=batch)
    profile = load_profile_file(ROOT / "devices" / f"{device}.toml")
    write_manifest(
        root,
        {
            "family": "cnn",
            "graphs": [
                {
                    "role": "model",
                    "file": "model.onnx",
                    "inputs": [{"name": "input", "shape": [batch, 5], "dtype": "float32"}],
                    "outputs": [{"name": "logits", "shape": [batch, 3], "dtype": "float32"}],
                }
            ],
            "device": {"id": profile.id, "profile": profile.to_dict()},
            "precision": "fp32",
            "labels": ["cat", "dog", "owl"],
            "validation": None,
            "provenance": {"source": "tests"},
        },
    )
    return root


def read_manifest(bundle: Path) -> dict:
    """The bundle's manifest as a dict."""
    return json.loads((bundle / "manifest.json").read_text())


FULL_INT8 = """
id = "{id}"
name = "CPU int8, every quantizable op"
class = "cpu"
[runtime]
providers = ["ort-cpu"]
[export]
precision = "int8"
steps = ["optimize", "quantize", "validate"]
[export.quantization]
method = "static-qdq"
"""


def full_int8_profile(folder: Path, name: str = "cpu-int8-all") -> Path:
    """A user profile that quantizes every op (the shipped CPU ones are selective)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(FULL_INT8.format(id=name))
    return path
