"""No silent fallback: unavailable providers, graphs that land elsewhere, and reporting."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.bundles import make_bundle

import edgert
from edgert import hookimpl
from edgert.catalog import load_catalog
from edgert.errors import ProviderFallbackError, ProviderUnavailableError
from edgert.plugin_manager import get_plugin_manager
from edgert.profiles import DeviceProfile, RuntimeSection
from edgert.providers import Provider, create_session


class TakesNothing(Provider):
    """Listed by ORT as available but cannot run any node (so ORT would use CPU)."""

    name = "fake-accel"
    ort_name = "AzureExecutionProvider"
    device_class = "npu"
    install_hint = "install the fake accelerator driver"


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(TakesNothing)


@pytest.fixture
def fake_catalog():
    return load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))


def profile(providers, allow_fallback=False):
    return DeviceProfile(
        id="t", name="t", device_class="npu",
        runtime=RuntimeSection(providers=tuple(providers), allow_fallback=allow_fallback),
    )  # fmt: skip


def test_graph_placed_elsewhere_is_an_error(tmp_path, fake_catalog):
    from helpers.bundles import tiny_linear_onnx

    model = tiny_linear_onnx(tmp_path / "m.onnx")
    with pytest.raises(ProviderFallbackError) as info:
        create_session(model, profile(["fake-accel"]), fake_catalog)
    assert "'fake-accel'" in str(info.value)
    assert "--allow-fallback" in info.value.hint


def test_allowed_fallback_is_reported_with_node_counts(tmp_path, fake_catalog):
    from helpers.bundles import tiny_linear_onnx

    model = tiny_linear_onnx(tmp_path / "m.onnx")
    info = create_session(model, profile(["fake-accel"], allow_fallback=True), fake_catalog)
    assert info.active == "ort-cpu"
    assert info.placement == {"ort-cpu": 1}
    assert info.fell_back
    assert "1 of 1 nodes run on ort-cpu, not fake-accel" in info.fallback


def test_sessions_never_switch_providers_on_their_own(tmp_path, catalog):
    """ONNX Runtime's Python session falls back to CPU by itself when a provider fails in a
    run (printing to stdout); edgert's sessions raise instead, so what is reported ran."""
    from helpers.bundles import tiny_linear_onnx

    info = create_session(tiny_linear_onnx(tmp_path / "m.onnx"), profile(["ort-cpu"]), catalog)
    assert info.session._enable_fallback is False


def test_cpu_profile_reports_placement_and_no_fallback(tmp_path, catalog):
    from helpers.bundles import tiny_linear_onnx

    info = create_session(tiny_linear_onnx(tmp_path / "m.onnx"), profile(["ort-cpu"]), catalog)
    assert (info.active, info.placement, info.fallback, info.simulated) == (
        "ort-cpu", {"ort-cpu": 1}, [], False,
    )  # fmt: skip


def test_bundle_for_an_unavailable_provider(tmp_path):
    bundle = make_bundle(tmp_path / "cuda", device="nvidia-cuda-fp16")
    with pytest.raises(ProviderUnavailableError) as info:
        edgert.load(bundle)
    message = str(info.value)
    assert "'ort-cuda'" in message
    assert "CUDAExecutionProvider" in message
    assert "onnxruntime-gpu" in info.value.hint
    model = edgert.load(bundle, allow_fallback=True)
    assert model.provider == "ort-cpu"
    assert any("ort-cuda unavailable" in note for note in model.session_info.fallback)
    assert model.logits(np.ones((1, 5), np.float32)).shape == (1, 3)


def test_provider_options_come_typed_from_the_profile(catalog):
    import edgert

    npu, _ = edgert.resolve_device("snapdragon-8-gen3-npu")
    options = catalog.providers.get("ort-qnn")().options_from(npu)
    assert options.backend == "htp"
    assert options.htp_performance_mode == "burst"
    cuda, _ = edgert.resolve_device("nvidia-cuda-fp16")
    provider = catalog.providers.get("ort-cuda")()
    assert provider.provider_options(provider.options_from(cuda)) == {
        "cudnn_conv_algo_search": "HEURISTIC",  # device_id 0 is ORT's default: left out
        "do_copy_in_default_stream": "1",
        "enable_cuda_graph": "0",
    }
    second = cuda.with_runtime(options={"ort-cuda": {"device_id": 1}})
    assert provider.provider_options(provider.options_from(second))["device_id"] == "1"


def test_every_provider_declares_capabilities_and_an_install_hint(catalog):
    for provider_cls in catalog.providers:
        assert provider_cls.capabilities, provider_cls.name
        assert provider_cls.install_hint, provider_cls.name
        assert provider_cls.device_class in {"cpu", "gpu", "npu"}
        provider = provider_cls()
        if not provider.is_available():
            assert provider.unavailable_reason()


def test_the_verify_bound_is_the_largest_drift_measured_on_the_decoders_providers(catalog):
    """Lossless decoders settle near-ties by this bound. It is measured per provider and
    precision (TF32 on CUDA moves fp32 logits 100x more than the CPU); a provider edgert
    does not know, or a precision nobody measured on it, gets the loosest bound (slower,
    never other tokens)."""
    from edgert.plugins.families.seq2seq.runtime import verify_bound
    from edgert.providers import LOOSEST_DRIFT, SessionInfo
    from edgert.speculation import VerifyTolerance

    def on(*names):
        placement = dict.fromkeys(names, 1)
        return SessionInfo(
            session=None, requested=list(names), active=names[0], placement=placement
        )

    def bound(precision, *names):
        return verify_bound(precision, on(*names), catalog)

    cpu, cuda = (catalog.providers.get(name).verify_drift for name in ("ort-cpu", "ort-cuda"))
    loosest = VerifyTolerance(*LOOSEST_DRIFT)
    assert bound("fp32", "ort-cpu") == VerifyTolerance(*cpu["fp32"])
    assert bound("fp32", "ort-cuda") == VerifyTolerance(*cuda["fp32"])
    assert bound("fp32", "ort-cuda").relative >= 10 * bound("fp32", "ort-cpu").relative
    assert bound("fp32", "ort-cuda", "ort-cpu") == bound("fp32", "ort-cuda")  # the larger
    assert bound("fp16", "ort-cuda") == VerifyTolerance(*cuda["fp16"])
    assert bound("fp16", "ort-cpu") == loosest  # not measured on CPUs with fp16 arithmetic
    assert bound("int8", "ort-cuda") == loosest
    assert bound("int8", "ort-cpu") == VerifyTolerance(*cpu["int8"])
    assert bound("fp32", "ort-cuda", "ort-tensorrt") == loosest
    assert bound("fp32", "SomeOtherExecutionProvider") == loosest
