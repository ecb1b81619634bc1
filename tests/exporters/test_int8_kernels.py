"""Full-range int8 exports on a CPU without VNNI: validated as the target computes them,
then refused at load (integer operators) or run unfused with --allow-fallback (QDQ).

The CPU is faked (``edgert.host.this_host``), so every host runs these; the emulation's
exactness is checked against numpy's integer arithmetic, which no CPU gets wrong.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from helpers.bundles import full_range_int8_profile

import edgert
from edgert import host as hosts
from edgert import kernels
from edgert.errors import BundleError
from edgert.host import Host
from edgert.providers import EMULATED_INT8

AVX2 = Host(os="linux", arch="x86_64", cpu_flags=frozenset({"avx", "avx2"}), cpu_name="Zen 3")
REAL_HOST_EXACT = kernels.wrong_here(hosts.this_host(), kernels.exact_with()) is None


@pytest.fixture
def avx2_host(monkeypatch):
    monkeypatch.setattr(hosts, "this_host", lambda: AVX2)


def _graph(path: Path, node: object, inputs: list, output: object, initializers: list) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph([node], "g", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _matmul_integer(path: Path, w: np.ndarray, rows: int, w_zp: np.ndarray | None = None) -> Path:
    """``y = a @ w``, or ``(a - a_zp) @ (w - w_zp)`` given ``w_zp`` (``a_zp`` then an input),
    with int8 ``w`` and ``w_zp`` as initializers."""
    from onnx import TensorProto, helper, numpy_helper

    names = ["a", "w"] if w_zp is None else ["a", "w", "a_zp", "w_zp"]
    inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, [rows, w.shape[0]])]
    initializers = [numpy_helper.from_array(w, "w")]
    if w_zp is not None:
        inputs.append(helper.make_tensor_value_info("a_zp", TensorProto.UINT8, []))
        initializers.append(numpy_helper.from_array(w_zp, "w_zp"))
    return _graph(
        path,
        helper.make_node("MatMulInteger", names, ["y"]),
        inputs,
        helper.make_tensor_value_info("y", TensorProto.INT32, [rows, w.shape[1]]),
        initializers,
    )


def _run(path: Path, feeds: dict) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_emulated_integer_operators_are_exact(tmp_path):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from edgert.exporters.int8_kernels import emulated_copy, survey

    rng = np.random.default_rng(0)
    a = rng.integers(180, 256, size=(3, 67)).astype(np.uint8)  # large activations: overflow bait
    w = rng.integers(-127, 128, size=(67, 5)).astype(np.int8)
    w_zp = np.array([0, 1, -2, 0, 3], np.int8)
    matmul = _matmul_integer(tmp_path / "mm.onnx", w, 3, w_zp)
    assert survey(matmul) == kernels.INTEGER
    feeds = {"a": a, "a_zp": np.array(7, np.uint8)}
    exact = (a.astype(np.int64) - 7) @ (w.astype(np.int64) - w_zp)
    emulated = _run(emulated_copy(matmul, tmp_path / "emu" / "mm.onnx"), feeds)
    np.testing.assert_array_equal(emulated, exact)

    x = rng.integers(150, 256, size=(1, 4, 6, 6)).astype(np.uint8)
    k = rng.integers(-127, 128, size=(3, 4, 3, 3)).astype(np.int8)
    conv = _graph(
        tmp_path / "conv.onnx",
        helper.make_node("ConvInteger", ["x", "k", "x_zp"], ["y"], pads=[1, 1, 1, 1]),
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4, 6, 6]),
         helper.make_tensor_value_info("x_zp", TensorProto.UINT8, [])],
        helper.make_tensor_value_info("y", TensorProto.INT32, [1, 3, 6, 6]),
        [numpy_helper.from_array(k, "k")],
    )  # fmt: skip
    padded = np.pad(
        x.astype(np.int64) - 9, ((0, 0), (0, 0), (1, 1), (1, 1))
    )  # pads are zero points
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    exact = np.einsum("bchwij,ocij->bohw", windows, k.astype(np.int64))
    emulated = _run(
        emulated_copy(conv, tmp_path / "emu" / "conv.onnx"), {"x": x, "x_zp": np.array(9, np.uint8)}
    )
    np.testing.assert_array_equal(emulated, exact)


def test_seven_bit_weights_need_no_vnni(tmp_path):
    pytest.importorskip("onnx")

    from edgert.exporters.int8_kernels import survey

    w = np.random.default_rng(1).integers(-64, 65, size=(8, 4)).astype(np.int8)
    path = _matmul_integer(tmp_path / "reduced.onnx", w, 2)
    assert survey(path) is None


def _digits_images() -> np.ndarray:
    path = resources.files("edgert.exporters.zoo") / "digits_calib.npy"
    return np.load(str(path), allow_pickle=False)[:64].astype(np.float32)


@pytest.mark.slow
def test_qdq_export_without_vnni_validates_the_target_and_runs_unfused_only_if_allowed(
    tmp_path, avx2_host, digits_bundles, monkeypatch
):
    pytest.importorskip("torch")
    from edgert.catalog import get_catalog
    from edgert.exporters.cnn.export import CnnExport, export_cnn

    device = full_range_int8_profile(tmp_path / "devices", "static-qdq")
    profile, _ = edgert.resolve_device(str(device))
    out = tmp_path / "digits-vnni"
    manifest = export_cnn(CnnExport(source="zoo:digits", out=out), profile, get_catalog()).manifest
    record = manifest["kernels"]
    assert record["full_range_int8"] == {"model": kernels.QDQ}
    assert record["validated"].startswith("emulated")
    assert "emulated" in manifest["validation"]["ran_on"]
    assert manifest["validation"]["top1_agreement"] >= 0.9  # the target's, not an overflow's

    with pytest.raises(BundleError, match="exact only on CPUs with avx512_vnni"):
        edgert.load(out)
    model = edgert.load(out, allow_fallback=True)
    assert EMULATED_INT8 in model.session_info.fallback
    images = _digits_images()
    reference = edgert.load(digits_bundles["fp32"]).classify(images)
    labels = [p.labels[0] for p in model.classify(images)]
    agreement = np.mean([p.labels[0] == label for p, label in zip(reference, labels, strict=True)])
    assert agreement >= 0.9
    if REAL_HOST_EXACT:  # this CPU's fused int8 kernels are exact: the emulation equals them
        monkeypatch.undo()
        native = edgert.load(out)
        assert not native.session_info.fallback
        assert [p.labels[0] for p in native.classify(images)] == labels


@pytest.mark.slow
def test_integer_export_without_vnni_validates_the_target_and_is_refused(tmp_path, avx2_host):
    pytest.importorskip("transformers")
    from helpers.seq2seq_models import make_source

    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    device = full_range_int8_profile(tmp_path / "devices", "dynamic")
    profile, _ = edgert.resolve_device(str(device))
    source = make_source("bart", tmp_path / "source")
    out = tmp_path / "bart-vnni"
    manifest = export_seq2seq(
        Seq2SeqExport(source=str(source), out=out), profile, get_catalog()
    ).manifest
    assert manifest["kernels"]["full_range_int8"]["encoder"] == kernels.INTEGER
    assert manifest["kernels"]["validated"].startswith("emulated")
    assert manifest["validation"]["next_token_agreement"] >= 0.9
    for allow in (False, True):
        with pytest.raises(BundleError, match="cannot help") as info:
            edgert.load(out, allow_fallback=allow)
        assert "--device x86-avx2-int8" in info.value.hint


AVX2_SCRIPT = """
import numpy as np, onnxruntime as ort
from pathlib import Path
import edgert
from edgert import kernels
from edgert.errors import BundleError
from edgert.exporters.int8_kernels import emulated_copy
from edgert.host import this_host

host = this_host()
assert "avx2" in host.cpu_flags and "avx512_vnni" not in host.cpu_flags, sorted(host.cpu_flags)
path, a, exact = Path({path!r}), np.load({a!r}), np.load({exact!r})
run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {{"a": a}})[0]
assert np.abs(run(path) - exact).max() > 0, "this CPU's int8 kernels did not overflow"
np.testing.assert_array_equal(run(emulated_copy(path, path.parent / "emu.onnx")), exact)
profile, _ = edgert.resolve_device("x86-avx512-vnni-int8")
manifest = {{"device": {{"id": profile.id}}, "kernels": kernels.record({{"encoder": "integer"}}, profile)}}
try:
    kernels.plan(manifest, allow_fallback=True)
except BundleError as exc:
    print("refused:", exc.message)
else:
    raise AssertionError("a full-range bundle loaded on an AVX2 CPU")
"""


@pytest.mark.skipif(
    not shutil.which("qemu-x86_64"), reason="needs qemu-user (apt-get install qemu-user)"
)
def test_on_a_real_avx2_instruction_set(tmp_path):
    """Under qemu's Haswell model (AVX2 without AVX-512) the CPU's own int8 kernels overflow
    full-range products, edgert sees the missing VNNI through CPUID, refuses the bundle, and
    the emulation is exact: the rules hold on the instruction set they are about."""
    pytest.importorskip("onnx")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("qemu's x86-64 user mode runs x86-64 binaries")

    rng = np.random.default_rng(0)
    a = rng.integers(200, 256, size=(4, 64)).astype(np.uint8)
    w = rng.integers(100, 128, size=(64, 8)).astype(np.int8)
    path = _matmul_integer(tmp_path / "mm.onnx", w, 4)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "exact.npy", a.astype(np.int64) @ w.astype(np.int64))
    script = AVX2_SCRIPT.format(
        path=str(path), a=str(tmp_path / "a.npy"), exact=str(tmp_path / "exact.npy")
    )
    done = subprocess.run(
        ["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused:" in done.stdout and "avx512_vnni" in done.stdout
