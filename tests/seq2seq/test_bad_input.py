"""Bad input to the seq2seq exporter and runtime: clear errors, nothing half-written."""

from __future__ import annotations

import re
from importlib import resources

import pytest

import edgert
from edgert.errors import ExportError, InputError, ProviderUnavailableError, UnknownNameError

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model(seq2seq_bundles):
    return edgert.load(seq2seq_bundles["t5"])


def test_empty_text(model):
    for text in ("", "   "):
        with pytest.raises(InputError, match="the input text is empty"):
            model.generate(text)


def test_text_longer_than_the_profile_allows(model):
    limit = model.defaults["max_input_length"]
    long_text = " ".join(["the quick brown fox"] * limit)
    with pytest.raises(InputError) as info:
        model.generate(long_text)
    assert f"takes at most {limit}" in str(info.value)
    assert "truncate=True" in info.value.hint
    result = model.generate(long_text, truncate=True, max_new_tokens=3)
    assert len(result.token_ids) <= 3


def test_unknown_decoder_and_option(model):
    with pytest.raises(UnknownNameError, match="did you mean 'greedy'"):
        model.generate("the fox", decoder="gredy")
    with pytest.raises(InputError) as info:
        model.generate("the fox", max_new_token=3)
    assert "unknown key 'max_new_token' (did you mean 'max_new_tokens'?)" in str(info.value)
    with pytest.raises(InputError, match="temperature must be > 0"):
        model.generate("the fox", decoder="sampling", temperature=0)
    with pytest.raises(InputError, match="expected int, got str"):
        model.generate("the fox", max_new_tokens="many")


def test_max_new_tokens_beyond_the_kv_size(model):
    room = model.defaults["max_total_length"] - 1
    with pytest.raises(InputError) as info:
        model.generate("the fox", max_new_tokens=room + 1)
    assert f"exceeds what this bundle holds: {room} new tokens" in str(info.value)
    assert "profile 'cpu-generic'" in str(info.value)
    assert f"max_new_tokens <= {room}" in info.value.hint


def test_either_text_or_ids(model):
    with pytest.raises(InputError, match="either text or input_ids"):
        model.generate("a", input_ids=[3, 1])


def test_non_seq2seq_model_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(vocab_size=99, n_embd=32, n_layer=1, n_head=2)).save_pretrained(
        tmp_path / "gpt2"
    )
    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    profile, _ = edgert.resolve_device("cpu-generic")
    with pytest.raises(ExportError) as info:
        export_seq2seq(
            Seq2SeqExport(source=str(tmp_path / "gpt2"), out=tmp_path / "out"),
            profile,
            get_catalog(),
        )
    assert "is a 'gpt2' model, not an encoder-decoder" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_source(tmp_path):
    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    profile, _ = edgert.resolve_device("cpu-generic")
    with pytest.raises(ExportError, match="cannot read a model config"):
        export_seq2seq(
            Seq2SeqExport(source=str(tmp_path / "nope"), out=tmp_path / "out"),
            profile,
            get_catalog(),
        )


def test_bundle_for_an_unavailable_provider(seq2seq_bundles, tmp_path, monkeypatch):
    import json
    import shutil

    from edgert.bundle import write_manifest
    from edgert.plugins.providers.ort_qnn import QnnProvider

    copy = tmp_path / "npu"
    shutil.copytree(seq2seq_bundles["t5"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    npu, _ = edgert.resolve_device("snapdragon-8-gen3-npu")
    manifest["device"] = {"id": npu.id, "profile": npu.to_dict()}
    (copy / "manifest.json").unlink()
    write_manifest(
        copy, {k: v for k, v in manifest.items() if k not in ("schema_version", "files")}
    )
    monkeypatch.setattr(QnnProvider, "is_available", lambda self: False)
    with pytest.raises(ProviderUnavailableError) as info:
        edgert.load(copy)
    assert "'ort-qnn'" in str(info.value)
    assert "onnxruntime-qnn" in info.value.hint
    fallback = edgert.load(copy, allow_fallback=True)
    assert fallback.provider == "ort-cpu"
    assert fallback.session_info.fallback
    assert fallback.generate("the fox", max_new_tokens=3).token_ids


def test_int8_and_int4_exports_report_agreement(seq2seq_sources, tmp_path):
    from helpers.bundles import full_int8_profile, runnable_profile

    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    full = full_int8_profile(tmp_path / "devices")
    full.write_text(full.read_text().replace('method = "static-qdq"', 'method = "dynamic"'))
    int4 = runnable_profile("x86-avx512-vnni-int4", tmp_path / "devices")
    for device in (str(full), int4):
        profile, _ = edgert.resolve_device(device)
        out = tmp_path / profile.id
        bundle = export_seq2seq(
            Seq2SeqExport(source=str(seq2seq_sources["bart"]), out=out), profile, get_catalog()
        )
        assert bundle.manifest["validation"]["next_token_agreement"] >= 0.9
        model = edgert.load(out)
        assert model.generate("the quick brown fox", max_new_tokens=5).token_ids


def test_weight_only_report_counts_the_matmuls_really_quantized(seq2seq_sources, tmp_path):
    """Weight-only takes every MatMul with a constant weight once the graph qualifies (here
    only the LM head passes min_weight_elements); the manifest says how many it took."""
    import onnx

    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    shipped = resources.files("edgert.devices") / "x86-avx2-int8.toml"
    text = re.sub(r"min_weight_elements = \d+", "min_weight_elements = 2000", shipped.read_text())
    device = tmp_path / "all-int8.toml"
    device.write_text(text.replace('id = "x86-avx2-int8"', 'id = "all-int8"'))
    profile, _ = edgert.resolve_device(str(device))
    out = tmp_path / "bart-int8"
    bundle = export_seq2seq(
        Seq2SeqExport(source=str(seq2seq_sources["bart"]), out=out), profile, get_catalog()
    )
    report = bundle.manifest["quantization"]["decoder"]
    graph = onnx.load(str(out / "decoder.onnx")).graph
    assert report["method"] == "weight-only int8"
    assert report["quantized_nodes"] == sum(n.op_type == "MatMulNBits" for n in graph.node) > 0


def test_a_dictionary_must_be_one_word_a_line_that_the_tokenizer_spells():
    from edgert.exporters.seq2seq.export import check_dictionary

    tokenizer = (
        resources.files("edgert.exporters.zoo") / "speller/model/tokenizer.json"
    ).read_text()
    assert (
        check_dictionary(("the", "rabbit", "don't", "λέξη"), tokenizer) == 2
    )  # the others: ignored
    with pytest.raises(ExportError, match=r"entry 2 is not one word: 'rabbit\\t3'") as info:
        check_dictionary(("the", "rabbit\t3"), tokenizer)
    assert "one word per line" in info.value.hint
    with pytest.raises(ExportError, match="spells none of the dictionary's 2 words"):
        check_dictionary(("λέξη", "κόσμος"), tokenizer)  # byte-level pieces never spell them


def test_a_dictionary_without_a_checksum_or_unreadable_is_refused(seq2seq_bundles, tmp_path):
    import json
    import shutil

    from edgert.bundle import write_manifest
    from edgert.errors import BundleError

    copy = tmp_path / "t5"
    shutil.copytree(seq2seq_bundles["t5"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "words.txt").write_bytes(b"caf\xe9\n")  # Latin-1, not UTF-8
    (copy / "manifest.json").unlink()
    write_manifest(
        copy, {k: v for k, v in manifest.items() if k not in ("schema_version", "files")}
    )
    unlisted = json.loads((copy / "manifest.json").read_text())
    unlisted["dictionary"] = "extra.txt"
    (copy / "extra.txt").write_text("the\n")
    (copy / "manifest.json").write_text(json.dumps(unlisted))
    with pytest.raises(BundleError, match="does not list with a checksum"):
        edgert.load(copy)
    unlisted["dictionary"] = "words.txt"
    (copy / "manifest.json").write_text(json.dumps(unlisted))
    with pytest.raises(BundleError, match="cannot read the dictionary words.txt") as info:
        edgert.load(copy)
    assert "UTF-8" in info.value.hint
