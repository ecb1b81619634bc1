"""QNN HTP: a QDQ graph runs wholly on the HTP backend with CPU fallback disabled.

On Linux x86-64 ``onnxruntime-qnn`` ships the HTP backend as a simulator, so this runs in
CI; it is skipped where the package is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgert
from edgert.errors import ProviderFallbackError
from edgert.profiles import DeviceProfile, RuntimeSection
from edgert.providers import create_session

pytestmark = pytest.mark.accelerator("qnn")


@pytest.fixture(scope="module")
def qnn(request):
    from edgert.catalog import get_catalog

    provider = get_catalog().providers.get("ort-qnn")()
    if not provider.is_available():
        pytest.skip("onnxruntime-qnn is not installed")
    return provider


def npu_profile(allow_fallback=False):
    return DeviceProfile(
        id="npu", name="npu", device_class="npu",
        runtime=RuntimeSection(providers=("ort-qnn",), allow_fallback=allow_fallback),
    )  # fmt: skip


def qdq_conv(tmp_path, batch=1):
    """A static Conv+Relu graph quantized to QDQ with ORT's QNN config."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 3, 3, 3)).astype(np.float32) * 0.3
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 7, 9, 9])],
        [numpy_helper.from_array(w, "w")],
    )
    fp32 = tmp_path / "conv.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(fp32))
    n = batch if isinstance(batch, int) else 1
    data = [{"x": rng.random((n, 3, 9, 9), dtype=np.float32)} for _ in range(8)]

    class Reader:
        def __init__(self):
            self.it = iter(data)

        def get_next(self):
            return next(self.it, None)

    qdq = tmp_path / "conv.qdq.onnx"
    quantize(str(fp32), str(qdq), get_qnn_qdq_config(str(fp32), Reader()))
    return fp32, qdq, data[0]["x"]


def test_qdq_graph_runs_wholly_on_htp_without_cpu_fallback(tmp_path, qnn):
    from edgert.catalog import get_catalog

    fp32, qdq, x = qdq_conv(tmp_path)
    info = create_session(qdq, npu_profile(), get_catalog())
    assert info.active == "ort-qnn"
    assert set(info.placement) == {"ort-qnn"}
    assert info.simulated == qnn.simulated()
    got = info.session.run(None, {"x": x})[0]
    cpu = create_session(fp32, DeviceProfile(id="c", name="c", device_class="cpu"), get_catalog())
    expected = cpu.session.run(None, {"x": x})[0]
    assert np.max(np.abs(got - expected)) < 0.05 * np.max(np.abs(expected))


def test_dynamic_shapes_cannot_silently_fall_back(tmp_path, qnn):
    from edgert.catalog import get_catalog

    _, qdq, _ = qdq_conv(tmp_path, batch="N")
    with pytest.raises(ProviderFallbackError) as info:
        create_session(qdq, npu_profile(), get_catalog())
    assert "CPU fallback is disabled" in str(info.value)
    allowed = create_session(qdq, npu_profile(allow_fallback=True), get_catalog())
    assert allowed.fell_back
    assert allowed.placement.get("ort-cpu")


def test_npu_bundle_of_the_digits_model_runs_on_htp(digits_bundles, qnn):
    if "npu" not in digits_bundles:
        pytest.skip("no NPU bundle")
    model = edgert.load(digits_bundles["npu"])
    assert model.provider == "ort-qnn"
    assert model.session_info.simulated == qnn.simulated()
    from edgert.exporters.zoo.digits import eval_data

    x, y = eval_data()
    accuracy = np.mean([int(p.label) for p in model.classify(x[:60], top_k=1)] == y[:60])
    assert accuracy >= 0.95
