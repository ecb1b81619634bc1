"""Lossless accelerated decoders produce exactly greedy's tokens on real seq2seq bundles."""

from __future__ import annotations

import pytest
from helpers.seq2seq_texts import KINDS, TEXTS

import edgert
from edgert.errors import InputError

pytest.importorskip("transformers")
OPTIONS = {"max_new_tokens": 16, "min_new_tokens": 10}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("decoder", ["aggressive", "lookup", "speculative"])
def test_identical_to_greedy(kind, decoder, seq2seq_bundles):
    model = edgert.load(seq2seq_bundles[kind])
    extra = {"draft": str(seq2seq_bundles[kind])} if decoder == "speculative" else {}
    for text in TEXTS:
        expected = model.generate(text, **OPTIONS).token_ids
        got = model.generate(text, decoder=decoder, **OPTIONS, **extra)
        assert got.token_ids == expected, (kind, decoder, text)
        assert got.stats["target_calls"] >= 1


WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "and",
    "ran",
    "to",
    "house",
    "big",
    "small",
    "red",
    "blue",
    "with",
    "under",
    "over",
]


def test_identical_to_greedy_on_int8_with_large_logits(wide_int8_bundle):
    """int8 kernels round differently in multi-token calls; the drift grows with the
    logits (here up to ~50), and lossless decoders must still settle near-ties exactly."""
    import random

    import numpy as np

    model = edgert.load(wide_int8_bundle, threads=1)
    assert model.bundle.manifest["precision"] == "int8"
    core, tolerance = model.core, model.core.info.verify_tolerance
    rng = random.Random(0)
    for _ in range(40):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))
        expected = model.generate(text, max_new_tokens=24).token_ids
        for decoder in ("aggressive", "lookup", "speculative"):
            extra = {"draft": str(wide_int8_bundle)} if decoder == "speculative" else {}
            got = model.generate(text, decoder=decoder, max_new_tokens=24, **extra)
            assert got.token_ids == expected, (decoder, text)
        ids = model.encode_text(text)  # the drift stays well inside the bound
        single = [core.start(ids)[-1]] + [core.step([t])[-1] for t in expected[:-1]]
        multi = core.start_with(ids, expected[:-1])
        for one, many in zip(single, multi, strict=True):
            assert np.abs(many - one).max() <= tolerance.of(one) / 2


def test_an_input_prepared_ahead_starts_exactly_as_without(seq2seq_bundles):
    """Speculative decoding encodes the input while the draft drafts (``prepare``); the
    start that follows must not differ, and a prepared input is never reused for another."""
    import numpy as np

    model = edgert.load(seq2seq_bundles["t5"])
    core = model.core
    first, second = (model.encode_text(text) for text in TEXTS[:2])
    direct = core.start_with(first, [5, 6, 7])
    core.prepare(first)
    assert np.array_equal(core.start_with(first, [5, 6, 7]), direct)
    core.prepare(second)
    assert np.array_equal(core.start_with(first, [5, 6, 7]), direct)  # encoded again


@pytest.mark.parametrize("kind", ["bart", "marian"])
def test_every_decoder_runs_to_the_end_of_the_position_table(kind, seq2seq_bundles):
    """BART and Marian embed 128 positions here (T5's relative positions have no end): the
    bundle's lengths stop there, so drafts never run past it, and longer requests get an
    error instead of an index out of range inside the graph."""
    model = edgert.load(seq2seq_bundles[kind])
    assert model.defaults["max_total_length"] == model.defaults["max_input_length"] == 128
    options = {"max_new_tokens": 127, "stop_ids": (), "forced_last_id": None}
    expected = model.generate(TEXTS[0], **options).token_ids
    assert len(expected) == 127
    for decoder, extra in (("aggressive", {}), ("lookup", {}),
                           ("speculative", {"draft": str(seq2seq_bundles[kind]), "confidence": 0.0})):  # fmt: skip
        got = model.generate(TEXTS[0], decoder=decoder, **options, **extra)
        assert got.token_ids == expected, decoder
    with pytest.raises(InputError, match="position table"):
        model.generate(TEXTS[0], max_new_tokens=128)
    with pytest.raises(InputError, match="takes at most 128"):
        model.generate(" ".join(["word"] * 200))
    assert edgert.load(seq2seq_bundles["t5"]).defaults["max_total_length"] == 1024


def test_draft_equal_to_target_accepts_every_draft(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5v11"])
    got = model.generate(TEXTS[1], decoder="speculative", draft=str(seq2seq_bundles["t5v11"]),
                         confidence=0.0, **OPTIONS)  # fmt: skip
    assert got.stats["acceptance_rate"] == 1.0
    assert got.stats["target_calls"] < len(got.token_ids)
    assert got.token_ids == model.generate(TEXTS[1], **OPTIONS).token_ids


def test_stats_are_reported(seq2seq_bundles):
    got = edgert.load(seq2seq_bundles["bart"]).generate(TEXTS[0], decoder="lookup", **OPTIONS)
    for key in (
        "target_calls",
        "drafted",
        "accepted",
        "acceptance_rate",
        "mean_accepted",
        "replayed",
        "draft_ms",
        "verify_ms",
    ):
        assert key in got.stats


def test_draft_with_another_vocabulary_is_refused(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5"])
    with pytest.raises(InputError, match="different vocabulary") as info:
        model.generate(TEXTS[0], decoder="speculative", draft=str(seq2seq_bundles["bart"]))
    assert "same tokenizer" in info.value.hint or "tokenizer" in info.value.hint


def test_speculative_needs_a_draft(seq2seq_bundles):
    with pytest.raises(InputError, match="needs a draft model"):
        edgert.load(seq2seq_bundles["t5"]).generate(TEXTS[0], decoder="speculative")


def test_profile_reports_generation_latency_and_decoder_stats(seq2seq_bundles, capsys):
    import json

    from edgert.cli import main

    main(["profile", str(seq2seq_bundles["t5"]), "--runs", "2", "--warmup", "1", "--new-tokens", "6",
          "--decoder", "lookup", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "seq2seq"
    assert report["new_tokens"] == 6
    assert set(report["first_token_ms"]) >= {"p50", "p90", "p99"}
    assert report["per_token_ms"]["p50"] > 0
    assert report["decoder_stats"]["target_calls"] >= 1
    assert report["encoder_placement"] == {"ort-cpu": report["encoder_placement"]["ort-cpu"]}


def test_profile_takes_a_draft_and_decoder_options(seq2seq_bundles, capsys):
    import json

    from edgert.cli import main

    bundle = str(seq2seq_bundles["t5v11"])
    main(["profile", bundle, "--runs", "2", "--warmup", "0", "--new-tokens", "6", "--decoder",
          "speculative", "--draft", bundle, "-O", "confidence=0", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["decoder_options"] == {"confidence": 0, "draft": bundle}
    assert report["decoder_stats"]["acceptance_rate"] == 1.0  # the draft is the target


@pytest.mark.parametrize(
    ("command", "option", "flag"),
    [("run", "decoder=beam", "--decoder"), ("profile", "max_new_tokens=3", "--new-tokens")],
)
def test_options_the_command_sets_itself_are_refused_with_the_flag(
    command, option, flag, seq2seq_bundles, capsys
):
    from helpers.cli import run

    argv = [command, str(seq2seq_bundles["t5"]), *(["some text"] if command == "run" else [])]
    code, _, err = run(capsys, *argv, "-O", option)
    assert code != 0
    assert "is set by the command" in err and flag in err


def test_run_prints_stats(seq2seq_bundles, capsys):
    from edgert.cli import main

    main(["run", str(seq2seq_bundles["t5"]), TEXTS[0], "--decoder", "aggressive", "--stats",
          "--max-new-tokens", "5"])  # fmt: skip
    err = capsys.readouterr().err
    assert "target_calls" in err
    assert "per token p50" in err


def test_text_runtime_runs_without_torch_or_transformers(seq2seq_bundles):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "optimum", "onnx"):
            sys.modules[name] = None
        import edgert
        model = edgert.load({str(seq2seq_bundles["bart"])!r})
        for decoder in ("greedy", "aggressive", "lookup", "beam", "sampling"):
            print(decoder, len(model.generate("the quick brown fox", decoder=decoder, max_new_tokens=4).token_ids))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5


def test_the_draft_runs_where_the_target_was_told_to_run(
    seq2seq_sources, seq2seq_bundles, tmp_path
):
    """A draft exported for a GPU runs on its own profile, unless the target was given a
    device (``--device``): then both run there."""
    from edgert.catalog import get_catalog
    from edgert.errors import ProviderUnavailableError
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    gpu, _ = edgert.resolve_device("nvidia-cuda-fp16")
    draft = tmp_path / "gpu-draft"
    export_seq2seq(Seq2SeqExport(source=str(seq2seq_sources["t5"]), out=draft), gpu, get_catalog())
    options = dict(OPTIONS, draft=str(draft), confidence=0.0)
    model = edgert.load(seq2seq_bundles["t5"], device="cpu-generic")
    got = model.generate(TEXTS[0], decoder="speculative", **options)
    assert got.token_ids == model.generate(TEXTS[0], **OPTIONS).token_ids
    assert got.stats["accepted"] > 0  # the same weights in fp16: the draft did draft
    if not get_catalog().providers.get("ort-cuda")().is_available():
        with pytest.raises(ProviderUnavailableError, match="nvidia-cuda-fp16"):
            edgert.load(seq2seq_bundles["t5"]).generate(TEXTS[0], decoder="speculative", **options)
        # --allow-fallback goes with --device: both models fall back, and say so
        model = edgert.load(seq2seq_bundles["t5"], device=gpu.id, allow_fallback=True)
        assert model.session_info.fallback
        got = model.generate(TEXTS[0], decoder="speculative", **options)
        assert got.token_ids == model.generate(TEXTS[0], **OPTIONS).token_ids
