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


def static_profile(folder, old, new, profile_id="static-fp32"):
    """``STATIC_FP32`` with ``old`` replaced by ``new``, written as ``<profile_id>.toml``."""
    path = folder / f"{profile_id}.toml"
    text = STATIC_FP32.replace('"static-fp32"', f'"{profile_id}"').replace(old, new)
    path.write_text(text)
    return str(path)


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


@pytest.fixture(scope="module")
def without_verify(tmp_path_factory, seq2seq_sources):
    """A static bundle exported with ``export.verify_width = 0``: no verify graph."""
    root = tmp_path_factory.mktemp("static-one")
    profile = static_profile(root, "static_shapes = true", "static_shapes = true\nverify_width = 0",
                             "static-fp32-one")  # fmt: skip
    return export(seq2seq_sources["t5"], root / "t5", profile)


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


def test_static_bundle_carries_a_verify_graph_checked_against_its_step_graph(static_fp32):
    bundle = static_fp32["t5"]
    assert [g["role"] for g in bundle.manifest["graphs"]] == ["encoder", "decoder", "verify"]
    assert bundle.manifest["static"]["verify_width"] == 8
    validation = bundle.manifest["validation"]
    assert validation["greedy_identical"] and validation["verify_agreement"] == 1.0
    assert 0 <= validation["verify_drift"][1] < 1e-3  # fp32: rounding only
    model = edgert.load(bundle.path)
    assert model.core.info.multi_token_step and model.core.info.step_width == 8
    assert set(model.verify_info.placement) == {"ort-cpu"}


@pytest.mark.parametrize("count", [2, 8, 11, 17])
def test_verify_calls_equal_one_token_steps(count, static_fp32):
    """Shorter than K (padded), K, and longer (several verify calls); then a rollback."""
    import numpy as np

    core = edgert.load(static_fp32["t5"].path).core
    tokens = [(7 * i + 3) % core.vocab_size for i in range(count)]
    core.start([5, 6, 7, 1])
    single = np.concatenate([core.step([t]) for t in tokens])
    core.rollback(1)
    session, calls = core.verify, []
    core.verify = type("Counted", (), {"run": lambda _, *a: calls.append(1) or session.run(*a)})()
    wide = core.step(tokens)
    assert len(calls) == -(-count // 8)  # ceil(count / K) calls
    np.testing.assert_allclose(wide, single, atol=1e-4)
    core.rollback(2)  # the rejected part of a draft, as a decoder forgets it
    np.testing.assert_allclose(core.step(tokens[1:]), single[1:], atol=1e-4)
    assert core.length == 1 + count


@pytest.mark.parametrize("decoder", ["aggressive", "lookup", "speculative"])
@pytest.mark.parametrize("kind", ["t5", "t5v11"])
def test_lossless_decoders_equal_greedy_on_static_bundles(kind, decoder, static_fp32):
    """Drafts shorter and longer than K, and generation to the last slot of the window."""
    model = edgert.load(static_fp32[kind].path)
    extra = {"draft": str(static_fp32[kind].path)} if decoder == "speculative" else {}
    for text in TEXTS:
        for new, draft in ((8, 2), (19, 24)):  # 19: every slot of the 20-position window
            lengths = {"max_new_tokens": new, "min_new_tokens": new}
            expected = model.generate(text, **lengths).token_ids
            got = model.generate(text, decoder=decoder, draft_tokens=draft,
                                 max_draft_tokens=max(draft, 32), **lengths, **extra)  # fmt: skip
            assert got.token_ids == expected, (text, new, draft)


class Oracle:
    """Drafts the reference's next tokens, then junk: the drafts run past a stop id."""

    costly = False

    def __init__(self, reference, junk):
        self.reference, self.junk = reference, junk

    def reset(self, input_ids):
        pass

    def propose(self, generated, k):
        return (self.reference[len(generated) :] + [self.junk] * k)[:k]

    def accepted(self, generated, drafted, accepted):
        pass


def test_a_stop_id_inside_a_draft_ends_the_output_as_greedy_does(static_fp32):
    from edgert.plugins.decoding.aggressive import AggressiveOptions
    from edgert.plugins.decoding.greedy import GreedyDecoder, GreedyOptions
    from edgert.speculation import DraftingDecoder

    class OracleDecoder(DraftingDecoder):
        name, Options, patient = "oracle", AggressiveOptions, True

        def proposer(self, model, options):
            return Oracle(reference, junk=3)

    core = edgert.load(static_fp32["t5"].path).core
    ids = [5, 6, 7, 8, 1]
    free = list(GreedyDecoder().decode(core, ids, GreedyOptions(max_new_tokens=16)))
    stop = free[10]  # a token greedy emits: as a stop id, it ends the output inside a draft
    reference = list(
        GreedyDecoder().decode(core, ids, GreedyOptions(max_new_tokens=16, stop_ids=(stop,)))
    )
    assert reference[-1] == stop and len(reference) < 16
    decoder = OracleDecoder()
    got = list(decoder.decode(core, ids, AggressiveOptions(max_new_tokens=16, stop_ids=(stop,))))
    assert got == reference
    assert decoder.stats["target_calls"] <= -(-len(reference) // 7) + 1  # K - 1 drafts a call


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("verify_width", 5, "verify_width is 5; verify.onnx takes 8 tokens"),
        ("verify_width", "8", "verify_width is '8'"),
        ("verify_drift", None, "validation.verify_drift is None"),
        ("verify_drift", [0.1, -1.0], "validation.verify_drift is"),
    ],
)
def test_a_manifest_that_misdescribes_the_verify_graph_is_refused_at_load(
    field, value, message, static_fp32, tmp_path
):
    import json

    from helpers.mutations import with_manifest

    from edgert.errors import BundleError

    manifest = json.loads((static_fp32["t5"].path / "manifest.json").read_text())
    manifest["static" if field == "verify_width" else "validation"][field] = value
    copy = with_manifest(static_fp32["t5"].path, tmp_path / "copy", manifest)
    with pytest.raises(BundleError, match=message) as info:
        edgert.load(copy)
    assert "re-export" in info.value.hint


def test_a_verify_width_that_does_not_fit_the_window_is_refused(seq2seq_sources, tmp_path):
    profile = static_profile(tmp_path, "static_shapes = true",
                             "static_shapes = true\nverify_width = 20")  # fmt: skip
    with pytest.raises(ExportError, match="export.verify_width is 20") as info:
        export(seq2seq_sources["t5"], tmp_path / "out", profile)
    assert (
        "export.max_total_length" in str(info.value)
        and "lower export.verify_width" in info.value.hint
    )
    assert not (tmp_path / "out").exists()


def test_profile_of_a_static_bundle_reports_the_verify_graph(static_fp32, capsys):
    import json

    from edgert.cli import main

    main(["profile", str(static_fp32["t5"].path), "--runs", "2", "--warmup", "1",
          "--new-tokens", "6", "--input-tokens", "12", "--decoder", "lookup", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert set(report["verify_placement"]) == {"ort-cpu"}
    assert report["verify_placement"]["ort-cpu"] > 0
    assert report["decoder_stats"]["target_calls"] >= 1


def test_a_verify_graph_without_the_validate_step_is_refused(seq2seq_sources, tmp_path):
    profile = static_profile(
        tmp_path, 'steps = ["optimize", "fix-shapes", "validate"]', "steps = []"
    )
    with pytest.raises(ExportError, match="no 'validate' step") as info:
        export(seq2seq_sources["t5"], tmp_path / "out", profile)
    assert "export.verify_width = 0" in info.value.hint


def test_static_limits_are_clear_errors(static_fp32):
    model = edgert.load(static_fp32["t5"].path)
    with pytest.raises(InputError, match="takes at most 24"):
        model.generate(" ".join(["the quick brown fox"] * 20))
    with pytest.raises(InputError, match="KV cache"):
        model.generate("the fox", max_new_tokens=40)
    with pytest.raises(InputError, match="batched steps"):
        model.generate("the fox", decoder="beam", num_beams=2)


@pytest.mark.parametrize("decoder", ["aggressive", "lookup", "speculative"])
def test_without_a_verify_graph_lossless_decoders_are_refused_naming_the_setting(
    decoder, without_verify
):
    assert "verify" not in {g["role"] for g in without_verify.manifest["graphs"]}
    assert not (without_verify.path / "verify.onnx").exists()
    model = edgert.load(without_verify.path)
    extra = {"draft": str(without_verify.path)} if decoder == "speculative" else {}
    with pytest.raises(InputError, match="unsupported on this bundle's static") as info:
        model.generate("the fox", decoder=decoder, **extra)
    assert "'static-fp32-one'" in str(info.value)
    assert "export.verify_width" in info.value.hint
    assert "edgert export" in info.value.hint and "static-fp32-one.toml --force" in info.value.hint
    assert "--decoder greedy" in info.value.hint
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
    assert set(model.verify_info.placement) == {"ort-qnn"}  # the verify graph too
    assert bundle.manifest["quantization"]["verify"]["method"] == "static-qdq"
    for text in TEXTS:
        expected = model.generate(text, max_new_tokens=10).token_ids
        assert expected
        for decoder in ("aggressive", "lookup", "speculative"):
            extra = {"draft": str(bundle.path)} if decoder == "speculative" else {}
            got = model.generate(text, max_new_tokens=10, decoder=decoder, **extra)
            assert got.token_ids == expected, (text, decoder)


@pytest.mark.accelerator("qnn")
def test_embedded_speller_on_the_npu_corrects_text(tmp_path):
    """The trained model, not just a random one: QDQ on the HTP keeps greedy's answers."""
    provider = get_catalog().providers.get("ort-qnn")()
    if not provider.is_available():
        pytest.skip("onnxruntime-qnn is not installed")
    from importlib import resources

    from edgert.exporters.zoo.speller.data import heldout_pairs

    zoo = resources.files("edgert.exporters.zoo") / "speller"
    bundle = export(zoo / "model", tmp_path / "speller-npu", "snapdragon-8-gen3-npu")
    assert bundle.manifest["validation"]["next_token_agreement"] >= 0.95
    model = edgert.load(bundle.path)
    assert set(model.encoder_info.placement) == {"ort-qnn"}
    assert model.generate("this aiter walked next to another shop in spring").text == (
        "this waiter walked next to another shop in spring"
    )
    # The lossless decoders on the HTP: greedy's tokens in under half its decoder calls
    # (the speller copies its input: drafts are mostly accepted, K - 1 = 7 per call).
    draft = export(zoo / "draft", tmp_path / "draft-npu", "snapdragon-8-gen3-npu")
    texts = [noisy for noisy, _ in heldout_pairs(6, seed=99)]
    expected = [model.generate(text).token_ids for text in texts]
    for decoder in ("aggressive", "lookup", "speculative"):
        extra = {"draft": str(draft.path)} if decoder == "speculative" else {}
        calls = tokens = 0
        for text, greedy in zip(texts, expected, strict=True):
            got = model.generate(text, decoder=decoder, **extra)
            assert got.token_ids == greedy, (decoder, text)
            calls, tokens = calls + got.stats["target_calls"], tokens + len(greedy)
        assert calls <= 0.5 * tokens, decoder  # greedy makes one call per token
