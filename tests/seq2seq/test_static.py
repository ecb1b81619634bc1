"""Static-shape (NPU) seq2seq bundles: exact on CPU in fp32, QDQ wholly on the QNN HTP."""

from __future__ import annotations

import pytest
from helpers.seq2seq_texts import TEXTS, hf_generate

import edgert
from edgert.catalog import get_catalog
from edgert.errors import ExportError, InputError

pytest.importorskip("transformers")

STATIC_FP32 = """
id = "static-fp32"
name = "static shapes, fp32, CPU"
class = "cpu"
[runtime]
providers = ["ort-cpu"]
[export]
precision = "fp32"
static_shapes = true
max_input_length = 24
max_total_length = 20
steps = ["optimize", "fix-shapes", "validate"]
"""


def export(source, out, device):
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    profile, _ = edgert.resolve_device(device)
    return export_seq2seq(Seq2SeqExport(source=str(source), out=out), profile, get_catalog())


@pytest.fixture(scope="module")
def static_fp32(tmp_path_factory, seq2seq_sources):
    root = tmp_path_factory.mktemp("static")
    (root / "static-fp32.toml").write_text(STATIC_FP32)
    return {kind: export(seq2seq_sources[kind], root / kind, str(root / "static-fp32.toml"))
            for kind in ("t5", "t5v11")}  # fmt: skip


@pytest.mark.parametrize("kind", ["t5", "t5v11"])
def test_static_fp32_greedy_identical_to_transformers(kind, static_fp32, seq2seq_sources):
    model = edgert.load(static_fp32[kind].path)
    assert type(model.core).__name__ == "StaticSeq2SeqCore"
    for text in TEXTS:
        expected = hf_generate(
            seq2seq_sources[kind], text, max_new_tokens=12, do_sample=False, num_beams=1
        )
        assert list(model.generate(text, max_new_tokens=12).token_ids) == expected


def test_static_rollback_is_free_and_exact(static_fp32):
    import numpy as np

    core = edgert.load(static_fp32["t5"].path).core
    core.start([5, 6, 7, 1])
    many = core.step([8, 9, 10])
    core.rollback(2)
    again = core.step([9, 10])
    np.testing.assert_allclose(many[1:], again, atol=1e-5)


def test_static_limits_are_clear_errors(static_fp32):
    model = edgert.load(static_fp32["t5"].path)
    with pytest.raises(InputError, match="takes at most 24"):
        model.generate(" ".join(["the quick brown fox"] * 20))
    with pytest.raises(InputError, match="KV cache"):
        model.generate("the fox", max_new_tokens=40)
    with pytest.raises(InputError, match="batched steps"):
        model.generate("the fox", decoder="beam", num_beams=2)


@pytest.mark.parametrize("decoder", ["aggressive", "lookup", "speculative"])
def test_lossless_decoders_are_refused_naming_the_profile_and_the_alternatives(
    decoder, static_fp32
):
    model = edgert.load(static_fp32["t5"].path)
    extra = {"draft": str(static_fp32["t5"].path)} if decoder == "speculative" else {}
    with pytest.raises(InputError, match="unsupported on this bundle's static") as info:
        model.generate("the fox", decoder=decoder, **extra)
    assert "'static-fp32'" in str(info.value)
    assert "--decoder greedy" in info.value.hint
    assert "--device x86-avx2-int8" in info.value.hint
    assert model.generate("the fox", max_new_tokens=4).token_ids  # greedy still runs


def test_static_export_of_bart_is_refused(seq2seq_sources, tmp_path):
    (tmp_path / "static-fp32.toml").write_text(STATIC_FP32)
    with pytest.raises(ExportError, match="supports T5-family models; this is 'bart'") as info:
        export(seq2seq_sources["bart"], tmp_path / "out", str(tmp_path / "static-fp32.toml"))
    assert "x86-avx2-int8" in info.value.hint
    assert not (tmp_path / "out").exists()


@pytest.mark.accelerator("qnn")
def test_npu_bundle_runs_wholly_on_the_htp(seq2seq_sources, tmp_path):
    provider = get_catalog().providers.get("ort-qnn")()
    if not provider.is_available():
        pytest.skip("onnxruntime-qnn is not installed")
    bundle = export(seq2seq_sources["t5"], tmp_path / "npu", "snapdragon-8-gen3-npu")
    validation = bundle.manifest["validation"]
    assert validation["ran_on"].startswith("ort-qnn")
    assert validation["next_token_agreement"] >= 0.9
    assert bundle.manifest["quantization"]["decoder"]["method"] == "static-qdq"
    model = edgert.load(bundle.path)
    assert model.provider == "ort-qnn"
    assert set(model.session_info.placement) == {"ort-qnn"}
    assert set(model.encoder_info.placement) == {"ort-qnn"}
    assert model.session_info.simulated == provider.simulated()
    assert model.generate("the quick brown fox", max_new_tokens=6).token_ids


@pytest.mark.accelerator("qnn")
def test_embedded_speller_on_the_npu_corrects_text(tmp_path):
    """The trained model, not just a random one: QDQ on the HTP keeps greedy's answers."""
    provider = get_catalog().providers.get("ort-qnn")()
    if not provider.is_available():
        pytest.skip("onnxruntime-qnn is not installed")
    from importlib import resources

    source = resources.files("edgert.exporters.zoo") / "speller" / "model"
    bundle = export(source, tmp_path / "speller-npu", "snapdragon-8-gen3-npu")
    assert bundle.manifest["validation"]["next_token_agreement"] >= 0.95
    model = edgert.load(bundle.path)
    assert set(model.encoder_info.placement) == {"ort-qnn"}
    assert model.generate("this aiter walked next to another shop in spring").text == (
        "this waiter walked next to another shop in spring"
    )
