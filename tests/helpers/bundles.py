"""Small builders shared by tests: ONNX graphs made with onnx.helper and bundles around them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


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


def full_range_int8_profile(folder: Path, method: str, name: str = "cpu-int8-vnni") -> Path:
    """``full_int8_profile`` with full 8-bit weights (the VNNI preset) and ``method``:
    exact only on CPUs with VNNI (or Arm64), whatever runs the tests."""
    path = full_int8_profile(folder, name)
    text = path.read_text().replace('method = "static-qdq"', f'method = "{method}"')
    path.write_text(text + 'isa = "avx512-vnni"\n')
    return path


def runnable_profile(device: str, folder: Path) -> str:
    """``device``, or where this CPU would compute its full-range int8 wrongly (no VNNI) a
    copy with 7-bit weights (``isa = "any"``) and no ``[host]`` flags: what tests export
    when they need that profile's other settings on any host."""
    import dataclasses

    import edgert
    from edgert import kernels
    from edgert.host import this_host

    profile, _ = edgert.resolve_device(device)
    if kernels.profile_problem(profile, this_host()) is None:
        return device
    q = dataclasses.replace(profile.export.quantization, isa="any")
    data = dataclasses.replace(
        profile, id=f"{device}-here", export=dataclasses.replace(profile.export, quantization=q)
    ).to_dict()
    data.pop("host", None)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{device}-here.toml"
    path.write_text(_toml(data))
    return str(path)


def _toml(data: dict, prefix: str = "") -> str:
    """A profile dict as TOML (plain tables, strings, numbers, booleans, lists)."""
    plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and plain else []
    lines += [f"{key} = {json.dumps(value)}" for key, value in plain.items()]
    for key, value in data.items():
        if isinstance(value, dict) and value:
            lines.append(_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"
