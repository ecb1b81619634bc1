"""Speculative sampling on a real bundle, through the API and the CLI."""

from __future__ import annotations

import pytest
from helpers.seq2seq_texts import TEXTS

import edgert
from edgert.errors import InputError

pytest.importorskip("transformers")


def test_seeded_and_reported(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5v11"])
    options = {"draft": str(seq2seq_bundles["t5v11"]), "sample": True, "seed": 7,
               "temperature": 0.8, "max_new_tokens": 12}  # fmt: skip
    first = model.generate(TEXTS[1], decoder="speculative", **options)
    assert first.token_ids == model.generate(TEXTS[1], decoder="speculative", **options).token_ids
    assert all(0 <= t < model.core.vocab_size for t in first.token_ids)
    # The draft is the target: every draft is kept, so calls are saved.
    assert first.stats["acceptance_rate"] == 1.0
    assert first.stats["target_calls"] < len(first.token_ids)


def test_cli_samples_speculatively(seq2seq_bundles, capsys):
    from edgert.cli import main

    bundle = str(seq2seq_bundles["bart"])
    main(["run", bundle, TEXTS[0], "--decoder", "speculative", "--draft", bundle, "-O",
          "sample=true", "--seed", "3", "--max-new-tokens", "6", "--stats"])  # fmt: skip
    assert "target_calls" in capsys.readouterr().err


def test_temperature_without_sample_is_refused(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5"])
    with pytest.raises(InputError, match="speculative sampling only"):
        model.generate(TEXTS[0], decoder="speculative", draft=str(seq2seq_bundles["t5"]),
                       temperature=0.5)  # fmt: skip
