"""Every lossless decoder reproduces greedy on the embedded speller, with its trained draft.

The speller's task copies its input, so drafts are mostly accepted (the high-acceptance
case); the random tiny models of ``test_lossless.py`` cover near-zero acceptance.
"""

from __future__ import annotations

from importlib import resources

import pytest

import edgert
from edgert.catalog import get_catalog

pytest.importorskip("transformers")
ZOO = resources.files("edgert.exporters.zoo") / "speller"
DECODERS = ("aggressive", "lookup", "speculative")


def export_speller(root, device: str, inputs: int):
    """Bundles of the speller and of its draft for ``device``, and held-out noisy inputs."""
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq
    from edgert.exporters.zoo.speller.data import heldout_pairs

    profile, _ = edgert.resolve_device(device)
    for name in ("model", "draft"):
        export_seq2seq(
            Seq2SeqExport(source=str(ZOO / name), out=root / name), profile, get_catalog()
        )
    texts = [noisy for noisy, _ in heldout_pairs(inputs, seed=99)]
    return edgert.load(root / "model", threads=1), root, texts


@pytest.fixture(scope="module")
def speller(tmp_path_factory):
    return export_speller(tmp_path_factory.mktemp("speller"), "cpu-generic", 16)


@pytest.fixture(scope="module")
def speller_int8(tmp_path_factory):
    """int8 (weight-only decoder): multi-token calls round differently, near-ties replay."""
    return export_speller(tmp_path_factory.mktemp("speller-int8"), "x86-avx2-int8", 48)


def test_the_draft_shares_the_speller_tokenizer_byte_for_byte():
    assert (ZOO / "draft" / "tokenizer.json").read_bytes() == (
        ZOO / "model" / "tokenizer.json"
    ).read_bytes()


def test_the_speller_bundle_carries_its_dictionary(speller):
    model, _, _ = speller
    listed = (ZOO / "model" / "words.txt").read_text(encoding="utf-8").split()
    assert model.bundle.manifest["dictionary"] == "words.txt"
    assert model.bundle.manifest["dictionary_words"] == {
        "listed": len(listed),
        "spelt": len(listed),
    }
    assert (model.bundle.path / "words.txt").read_text(encoding="utf-8").split() == listed
    words = model.core.info.lexicon.words
    assert list(words) == listed  # every word is spelt by the tokenizer, in frequency order
    assert any(len(tokens) > 1 for tokens in words.values())  # split words are words too


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("bundles", ["speller", "speller_int8"])
def test_identical_to_greedy_on_held_out_inputs(decoder, bundles, request):
    model, root, inputs = request.getfixturevalue(bundles)
    extra = {"draft": str(root / "draft")} if decoder == "speculative" else {}
    tokens = calls = 0
    for text in inputs:
        expected = model.generate(text).token_ids
        got = model.generate(text, decoder=decoder, **extra)
        assert got.token_ids == expected, (decoder, text)
        tokens += len(got.token_ids)
        calls += got.stats["target_calls"]
    assert tokens / calls > 2  # drafts copied from the input are mostly right here


@pytest.mark.parametrize("options", [{}, {"repetition_penalty": 1.5, "max_new_tokens": 9}])
def test_speculative_with_the_speller_as_its_own_draft(options, speller):
    model, root, inputs = speller
    for text in inputs[:6]:
        expected = model.generate(text, **options).token_ids
        got = model.generate(text, decoder="speculative", draft=str(root / "model"),
                             confidence=0.0, **options)  # fmt: skip
        assert got.token_ids == expected
        assert got.stats["acceptance_rate"] == 1.0


@pytest.mark.parametrize("decoder", DECODERS)
def test_constraints_are_honoured_exactly(decoder, speller):
    model, root, inputs = speller
    extra = {"draft": str(root / "draft")} if decoder == "speculative" else {}
    options = {"no_repeat_ngram_size": 2, "min_new_tokens": 12, "max_new_tokens": 14}
    for text in inputs[:6]:
        expected = model.generate(text, **options).token_ids
        assert model.generate(text, decoder=decoder, **options, **extra).token_ids == expected
