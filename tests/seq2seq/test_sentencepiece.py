"""Checkpoints as the hub ships them: SentencePiece-only Marian (opus-mt) and T5 folders, and
their own generation defaults, against transformers' slow tokenizers and ``generate()``."""

from __future__ import annotations

import json
import random
import shutil

import pytest

pytest.importorskip("sentencepiece")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers.cli import run  # noqa: E402
from helpers.spm_models import VARIED, make_marian, make_t5  # noqa: E402

import edgert  # noqa: E402
from edgert.errors import ExportError  # noqa: E402

BEAMS = {"num_beams": 3, "no_repeat_ngram_size": 2, "max_new_tokens": 12}
TEXTS = ["the quick brown fox", "a small model runs", "please translate this", "numbers 123",
         "the lazy dog jumps", "naive cafe", "over the edge of the network"]  # fmt: skip
CODES = [">>fra<< the quick brown fox", ">>deu<<a small model", ">>xyz<< an unknown code"]


def export(source, out, device="cpu-generic"):
    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

    profile, _ = edgert.resolve_device(device)
    return export_seq2seq(Seq2SeqExport(source=str(source), out=out), profile, get_catalog())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    return {
        "marian": make_marian(root / "opus-mt-en-fr", generation={"num_beams": 2}),
        "multilingual": make_marian(
            root / "opus-mt-en-mul", languages=("fra", "deu"), tied=False, seed=1
        ),
        "t5": make_t5(root / "t5-spiece", generation=BEAMS),
    }


@pytest.fixture(scope="module")
def bundles(folders, tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-bundles")
    for name, folder in folders.items():
        export(folder, root / name)
    return {name: root / name for name in folders}


def slow_tokenizer(folder):
    return transformers.AutoTokenizer.from_pretrained(folder, use_fast=False)


def hf_generate(folder, text):
    """``model.generate(**tokenizer(text, return_tensors="pt"))``: no other argument."""
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    with torch.inference_mode():
        out = model.generate(**slow_tokenizer(folder)(text, return_tensors="pt"))[0].tolist()
    return out[1:]  # the decoder start token


def test_bundles_store_tokenizers_not_sentencepiece(bundles):
    manifest = json.loads((bundles["marian"] / "manifest.json").read_text())
    assert manifest["tokenizer"] == "tokenizer.json"
    assert manifest["target_tokenizer"] == "target_tokenizer.json"
    assert manifest["text_rules"]["language_code_prefix"] is True
    assert not list(bundles["marian"].glob("*.spm"))


@pytest.mark.parametrize("name", ["marian", "multilingual", "t5"])
def test_token_ids_equal_the_slow_tokenizers(name, folders, bundles):
    slow, model = slow_tokenizer(folders[name]), edgert.load(bundles[name])
    texts = VARIED + (CODES if name == "multilingual" else [])
    for text in texts:
        if not text.strip():
            continue
        assert model.encode_text(text) == slow(text).input_ids, (name, text)


@pytest.mark.parametrize("name", ["marian", "multilingual", "t5"])
def test_decoded_text_equals_the_slow_tokenizers(name, folders, bundles):
    slow, model = slow_tokenizer(folders[name]), edgert.load(bundles[name])
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(slow.vocab_size) for _ in range(rng.randrange(1, 14))]
        text = model.output_tokenizer.decode(ids, skip_special_tokens=True)
        text = text.strip() if model.text_rules.strip else text.lstrip()
        assert text == slow.decode(ids, skip_special_tokens=True), (name, ids)


@pytest.mark.parametrize("name", ["marian", "multilingual", "t5"])
def test_run_without_flags_gives_what_generate_gives(name, folders, bundles, capsys):
    """The checkpoint's own defaults: beams, no repeated n-grams, lengths, the pad ban."""
    texts = TEXTS + (CODES if name == "multilingual" else [])
    slow = slow_tokenizer(folders[name])
    for text in texts:
        code, out, err = run(capsys, "run", str(bundles[name]), text, "--json")
        assert code == 0, err
        got = json.loads(out)
        expected = hf_generate(folders[name], text)
        assert got["token_ids"] == expected, (name, text)
        assert got["text"] == slow.decode(expected, skip_special_tokens=True)


def test_the_manifest_says_where_each_default_came_from(bundles):
    manifest = json.loads((bundles["t5"] / "manifest.json").read_text())
    sources = manifest["generation_sources"]
    assert sources["num_beams"] == "generation_config.json (num_beams)"
    assert sources["max_new_tokens"] == "generation_config.json (max_new_tokens)"
    assert sources["repetition_penalty"] == "transformers default"
    assert manifest["generation"]["num_beams"] == 3
    marian = json.loads((bundles["marian"] / "manifest.json").read_text())
    assert marian["generation"]["suppress_token_ids"] == [marian["generation"]["pad_token_id"]]
    assert marian["generation_sources"]["suppress_token_ids"].endswith("(bad_words_ids)")


def test_a_flag_overrides_a_default_and_stats_say_so(bundles, capsys):
    code, _, err = run(capsys, "run", str(bundles["t5"]), TEXTS[0], "--decoder", "greedy",
                       "--stats")  # fmt: skip
    assert code == 0
    assert "overriding the checkpoint's defaults: decoder 'greedy' (bundle default 'beam')" in err
    result = edgert.load(bundles["t5"]).generate(TEXTS[0], num_beams=2)
    assert result.stats["overridden"] == {"num_beams": {"bundle": 3, "given": 2}}
    assert result.stats["decoder"] == "beam"


def test_weights_as_shipped_pytorch_bin_sharded_untied_with_logits_bias(folders, tmp_path):
    """``pytorch_model.bin`` (loaded with weights_only) and sharded safetensors with an
    index export to the same tokens; the untied model's final_logits_bias is in them."""
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folders["multilingual"])
    assert model.final_logits_bias.abs().sum() > 0
    assert model.get_input_embeddings().weight.data_ptr() != model.lm_head.weight.data_ptr()
    variants = {"bin": {"safe_serialization": False}, "sharded": {"max_shard_size": "20KB"}}
    for name, kwargs in variants.items():
        folder = tmp_path / name
        shutil.copytree(folders["multilingual"], folder)
        for weights in folder.glob("model*.safetensors"):
            weights.unlink()
        model.save_pretrained(folder, **kwargs)
        shipped = {p.name for p in folder.iterdir()}
        assert ("pytorch_model.bin" in shipped) == (name == "bin")
        assert ("model.safetensors.index.json" in shipped) == (name == "sharded")
        bundle = edgert.load(export(folder, tmp_path / f"{name}-bundle").path)
        for text in TEXTS[:3]:
            assert list(bundle.generate(text).token_ids) == hf_generate(folder, text), name


def _broken(folders, tmp_path, name="marian"):
    folder = tmp_path / "broken"
    shutil.copytree(folders[name], folder)
    return folder


def test_a_folder_without_any_tokenizer_is_refused_clearly(folders, tmp_path):
    folder = _broken(folders, tmp_path)
    for name in ("source.spm", "target.spm", "vocab.json"):
        (folder / name).unlink()
    with pytest.raises(ExportError, match="cannot load the tokenizer") as info:
        export(folder, tmp_path / "out")
    assert "tokenizer.json" in info.value.hint and "source.spm" in info.value.hint
    assert not (tmp_path / "out").exists()


def test_a_corrupt_sentencepiece_model_is_refused_naming_it(folders, tmp_path):
    folder = _broken(folders, tmp_path)
    (folder / "source.spm").write_bytes(b"\x0f not a model \xff" * 7)
    with pytest.raises(ExportError, match="source.spm is not a SentencePiece model"):
        export(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_vocab_that_misses_pieces_is_refused(folders, tmp_path):
    folder = _broken(folders, tmp_path)
    vocab = json.loads((folder / "vocab.json").read_text())
    piece = next(p for p in vocab if p.startswith("▁") and len(p) > 2)
    del vocab[piece]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ExportError, match=r"vocab.json does not cover the pieces of source.spm"):
        export(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [({"num_beam": 3}, "does not know: num_beam"),
     ({"num_beams": "three"}, "num_beams is 'three' \\(str\\); expected int"),
     ({"do_sample": 1}, "do_sample is 1 \\(int\\); expected bool")],
)  # fmt: skip
def test_a_bad_generation_config_is_refused_naming_the_key(change, message, folders, tmp_path):
    folder = _broken(folders, tmp_path, "t5")
    path = folder / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ExportError, match=message) as info:
        export(folder, tmp_path / "out")
    assert "generation_config.json" in str(info.value)
    assert not (tmp_path / "out").exists()
