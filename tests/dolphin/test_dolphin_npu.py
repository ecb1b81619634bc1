"""The static (NPU) decoder-decoder bundle runs wholly on the QNN HTP simulator."""

from __future__ import annotations

import pytest
from helpers.dolphin_models import CONTEXTS, QUESTIONS, export

import edgert
from edgert.errors import InputError

pytestmark = pytest.mark.accelerator("qnn")


@pytest.fixture(scope="module")
def npu_bundle(dolphin_sources, tmp_path_factory):
    from edgert.catalog import get_catalog

    if not get_catalog().providers.get("ort-qnn")().is_available():
        pytest.skip("onnxruntime-qnn is not installed")
    out = tmp_path_factory.mktemp("dolphin-npu") / "bundle"
    export(dolphin_sources["composition"], out, device="snapdragon-8-gen3-npu")
    return out


def test_validated_on_the_htp_without_fallback(npu_bundle):
    model = edgert.load(npu_bundle)
    validation = model.bundle.manifest["validation"]
    assert validation["ran_on"] == "ort-qnn (simulated)"
    assert validation["next_token_agreement"] >= 0.9  # 16-bit activations, 8-bit weights
    assert model.bundle.manifest["static"] == {"window": 128, "max_total": 256}
    for info in (model.memory_info, model.session_info):
        assert set(info.placement) == {"ort-qnn"} and not info.fallback
    answer = model.generate(QUESTIONS[0], context=CONTEXTS[0], max_new_tokens=6)
    assert len(answer.token_ids) == 6 and answer.stats["context_chunks"] == 1


def test_one_token_per_call_is_said_clearly(npu_bundle):
    model = edgert.load(npu_bundle)
    with pytest.raises(InputError, match="one token per call") as info:
        model.generate(QUESTIONS[0], context=CONTEXTS[0], decoder="lookup")
    assert "greedy" in info.value.hint
    with pytest.raises(InputError, match="one hypothesis"):
        model.generate(QUESTIONS[0], context=CONTEXTS[0], decoder="beam", num_beams=2)
    long = " ".join([CONTEXTS[0]] * 12)
    with pytest.raises(InputError, match="at most 128"):
        model.generate(QUESTIONS[0], context=long)
