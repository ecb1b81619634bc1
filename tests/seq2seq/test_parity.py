"""Token parity with transformers ``generate`` on tiny T5, T5 v1.1, BART and Marian."""

from __future__ import annotations

import pytest

import edgert

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers.seq2seq_texts import KINDS, TEXTS, hf_generate  # noqa: E402


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_tokens_identical_to_transformers(kind, seq2seq_sources, seq2seq_bundles):
    model = edgert.load(seq2seq_bundles[kind])
    for text in TEXTS:
        expected = hf_generate(
            seq2seq_sources[kind], text, max_new_tokens=12, do_sample=False, num_beams=1
        )
        got = model.generate(text, max_new_tokens=12)
        assert list(got.token_ids) == expected, (kind, text)


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_with_constraints_identical(kind, seq2seq_sources, seq2seq_bundles):
    model = edgert.load(seq2seq_bundles[kind])
    options = {
        "max_new_tokens": 10,
        "min_new_tokens": 6,
        "repetition_penalty": 1.3,
        "no_repeat_ngram_size": 2,
    }
    text = TEXTS[1]
    expected = hf_generate(seq2seq_sources[kind], text, do_sample=False, num_beams=1, **options)
    assert list(model.generate(text, **options).token_ids) == expected


def test_manifest_and_validation(seq2seq_bundles):
    manifest = edgert.load(seq2seq_bundles["t5"]).bundle.manifest
    assert manifest["family"] == "seq2seq"
    assert [g["role"] for g in manifest["graphs"]] == ["encoder", "decoder"]
    assert manifest["validation"]["greedy_identical"] is True
    assert manifest["validation"]["max_relative_logit_diff"] < 1e-3
    assert manifest["generation"]["decoder_start_token_id"] == 0
    assert set(manifest["files"]) == {
        "encoder.onnx",
        "decoder.onnx",
        "embeddings.npy",
        "tokenizer.json",
        "encoder_position_bias.npy",
        "decoder_position_bias.npy",
    }


@pytest.mark.parametrize("kind", ["t5", "t5v11"])
def test_t5_graphs_take_the_position_bias_as_input(kind, seq2seq_bundles):
    """No node of the T5 graphs buckets positions or builds masks: the runtime does."""
    import onnx

    model = edgert.load(seq2seq_bundles[kind])
    for role, bias_input in (("encoder", "attention_bias"), ("decoder", "self_bias")):
        graph = onnx.load(str(model.bundle.path / f"{role}.onnx")).graph
        assert bias_input in [i.name for i in graph.input]
        ops = {node.op_type for node in graph.node}
        assert not ops & {"Log", "Range", "Where", "Shape", "Trilu", "Less", "Min"}, (role, ops)


@pytest.mark.parametrize("kind", ["t5", "t5v11"])
def test_long_input_and_output_beyond_the_largest_bucket(kind, seq2seq_sources, seq2seq_bundles):
    """Distances past relative_attention_max_distance (128) share the last bucket: the
    runtime clamps them, in the encoder (a long input) and the decoder (150 new tokens)."""
    model = edgert.load(seq2seq_bundles[kind])
    text = " ".join(TEXTS * 5)
    assert 150 < len(model.tokenizer.encode(text).ids) <= 512
    options = {"max_new_tokens": 150, "min_new_tokens": 150}
    expected = hf_generate(seq2seq_sources[kind], text, do_sample=False, num_beams=1, **options)
    assert len(expected) == 150
    assert list(model.generate(text, **options).token_ids) == expected
    for decoder in ("aggressive", "lookup"):
        assert list(model.generate(text, decoder=decoder, **options).token_ids) == expected


def test_multi_token_step_equals_single_steps_and_rollback(seq2seq_bundles):
    import numpy as np

    core = edgert.load(seq2seq_bundles["bart"]).core
    ids = [0, 10, 11, 12, 2]
    first = core.start(ids)
    many = core.step([5, 6, 7])
    assert core.length == 4
    core.rollback(1)
    one_by_one = np.concatenate([core.step([t]) for t in (5, 6, 7)])
    np.testing.assert_allclose(many, one_by_one, atol=1e-5)
    core.rollback(2)
    np.testing.assert_allclose(core.step([6, 7]), many[1:], atol=1e-5)
    assert first.shape == (1, core.vocab_size)


def test_sampling_is_reproducible_under_a_seed(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5"])
    options = {
        "decoder": "sampling",
        "max_new_tokens": 12,
        "temperature": 1.5,
        "top_k": 20,
        "top_p": 0.95,
    }
    a = model.generate(TEXTS[0], seed=7, **options).token_ids
    b = model.generate(TEXTS[0], seed=7, **options).token_ids
    runs = {model.generate(TEXTS[0], seed=s, **options).token_ids for s in range(6)}
    assert a == b
    assert len(runs) > 1


def test_stream_yields_the_generated_text(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["marian"])
    pieces = list(model.stream(TEXTS[1], max_new_tokens=8))
    assert "".join(pieces) == model.generate(TEXTS[1], max_new_tokens=8).text


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "options",
    [
        {"num_beams": 3},
        {"num_beams": 4, "length_penalty": 0.6, "early_stopping": True},
        {
            "num_beams": 2,
            "length_penalty": 1.4,
            "early_stopping": "never",
            "no_repeat_ngram_size": 3,
        },
    ],
    ids=["plain", "early", "never"],
)
def test_beam_search_identical_to_transformers(kind, options, seq2seq_sources, seq2seq_bundles):
    model = edgert.load(seq2seq_bundles[kind])
    for text in TEXTS:
        expected = hf_generate(
            seq2seq_sources[kind], text, max_new_tokens=10, do_sample=False, **options
        )
        got = model.generate(text, decoder="beam", max_new_tokens=10, **options)
        assert list(got.token_ids) == expected, (kind, text, options)


def test_beam_width_one_equals_greedy(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5v11"])
    for text in TEXTS:
        greedy = model.generate(text, max_new_tokens=10).token_ids
        assert (
            model.generate(text, decoder="beam", num_beams=1, max_new_tokens=10).token_ids == greedy
        )


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_optimum_cli_folder_loads_and_matches_greedy(
    kind, seq2seq_sources, seq2seq_bundles, tmp_path
):
    import subprocess
    import sys

    out = tmp_path / "optimum"
    command = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "onnx", "--model",
               str(seq2seq_sources[kind]), "--task", "text2text-generation-with-past", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    foreign = edgert.load(out)
    assert foreign.bundle.manifest["verified"] is False
    assert foreign.core.info.run_device is None  # its default profile: a draft keeps its own
    told = edgert.load(out, device="cpu-generic").core.info.run_device
    assert told.endswith("cpu-generic.toml")
    ours = edgert.load(seq2seq_bundles[kind])
    for text in TEXTS:
        expected = hf_generate(
            seq2seq_sources[kind], text, max_new_tokens=10, do_sample=False, num_beams=1
        )
        assert list(foreign.generate(text, max_new_tokens=10).token_ids) == expected
        assert (
            ours.generate(text, max_new_tokens=10).token_ids
            == foreign.generate(text, max_new_tokens=10).token_ids
        )
    beam = foreign.generate(TEXTS[1], decoder="beam", num_beams=3, max_new_tokens=8).token_ids
    assert beam == ours.generate(TEXTS[1], decoder="beam", num_beams=3, max_new_tokens=8).token_ids
    greedy = foreign.generate(TEXTS[1], max_new_tokens=10).token_ids  # lossless decoders too
    for decoder, extra in (
        ("aggressive", {}),
        ("lookup", {}),
        ("speculative", {"draft": str(out)}),
    ):
        got = foreign.generate(TEXTS[1], decoder=decoder, max_new_tokens=10, **extra).token_ids
        assert got == greedy, decoder
    (out / "words.txt").write_text("hello\nworld\n", encoding="utf-8")  # a dictionary beside
    assert edgert.load(out).core.info.lexicon.dictionary == ("hello", "world")


def test_position_bias_equals_the_libraries_for_every_length():
    """The runtime's bias, built from per-distance vectors, is T5's own, lengths past the
    largest bucket included (there the vectors' last entry stands for every distance)."""
    import numpy as np

    from edgert.exporters.seq2seq.t5 import bias_vectors
    from edgert.plugins.families.seq2seq.core import MASKED, PositionBias

    model = transformers.T5ForConditionalGeneration(
        transformers.T5Config(vocab_size=50, d_model=16, d_kv=4, num_heads=3, num_layers=1,
                              relative_attention_num_buckets=6, relative_attention_max_distance=9)
    ).eval()  # fmt: skip
    bias = PositionBias(**bias_vectors(model, source_len=4, total_len=4))
    attention = {
        "encoder": model.get_encoder().block[0].layer[0].SelfAttention,
        "decoder": model.get_decoder().block[0].layer[0].SelfAttention,
    }
    with torch.inference_mode():
        for length in (1, 3, 10, 25):
            expected = attention["encoder"].compute_bias(length, length).numpy()
            np.testing.assert_allclose(bias.encoder(length), expected, rtol=0, atol=1e-6)
        full = attention["decoder"].compute_bias(25, 25).numpy()[0]
    causal = np.tril(np.ones((25, 25), bool))
    for past, new in ((0, 1), (0, 7), (3, 1), (12, 13), (24, 1)):
        got = bias.decoder(past, new)[0]
        rows = slice(past, past + new)
        want = np.where(causal[rows, : past + new], full[:, rows, : past + new], MASKED)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
