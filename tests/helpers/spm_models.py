"""Checkpoint folders as the hub ships them, built here: SentencePiece models trained on local
text, tiny random weights, and transformers' own save code (no tokenizer.json).

* ``make_marian``: the opus-mt layout (config.json, weights, source.spm, target.spm,
  vocab.json, tokenizer_config.json, generation_config.json), bilingual or multilingual
  with language codes (``>>fra<<``), a non-zero ``final_logits_bias``, tied or untied.
* ``make_t5``: a T5 folder with ``spiece.model`` only.
"""

from __future__ import annotations

import json
from pathlib import Path

SOURCE_TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a small model runs on the edge of the network",
    "numbers 123 456 and 7.89, said the engineer",
    "please translate this short sentence",
    "naive cafe creme, a resume",
] * 20
TARGET_TEXT = [
    "le renard brun rapide saute par dessus le chien paresseux",
    "un petit modèle tourne au bord du réseau",
    "nombres 123 456 et 7,89 (dit l'ingénieur)",
    "veuillez traduire cette phrase courte !",
    "naïve café crème, un résumé",
] * 20
# Punctuation, digits, accents, CJK, emoji, characters no model knows, stray spaces.
VARIED = [
    "the quick brown fox",
    "  leading and trailing spaces  ",
    "café naïve Ünïcödé résumé",
    "digits 0123456789 and 3.14, 2,71",
    "punct: (a, b); 'q' \"x\" - !? ...",
    "CJK 你好世界 and 東京",
    "emoji 🙂🚀 here",
    "unknown ☃ ∑ ∂ characters",
    "a    b\tc\nd",
    "</s> inside </s>",
    "ALLCAPS MiXeD",
    "x" * 40,
]


def train_spm(path: Path, texts: list[str], vocab_size: int, **ids: int) -> Path:
    """A unigram SentencePiece model at ``path`` trained on ``texts`` (quietly)."""
    import sentencepiece as spm

    corpus = path.with_suffix(".txt")
    corpus.write_text("\n".join(texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(path.with_suffix("")), vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
        **{f"{k}_id": v for k, v in ids.items()},
    )  # fmt: skip
    path.with_suffix(".model").rename(path)
    corpus.unlink()
    path.with_suffix(".vocab").unlink()
    return path


def make_marian(folder: Path, *, languages: tuple[str, ...] = (), tied: bool = True,
                generation: dict | None = None, seed: int = 0) -> Path:  # fmt: skip
    """An opus-mt-style folder; ``languages`` adds ``>>xx<<`` codes (multilingual)."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    work = folder.parent / f"{folder.name}-spm"
    work.mkdir(parents=True, exist_ok=True)
    ids = {"eos": 0, "unk": 1, "bos": -1, "pad": -1}
    source = train_spm(work / "source.spm", SOURCE_TEXT, 61, **ids)
    target = train_spm(work / "target.spm", TARGET_TEXT, 67, **ids)
    vocab = {"</s>": 0, "<unk>": 1}
    vocab.update({f">>{code}<<": i + 2 for i, code in enumerate(languages)})
    for model in (source, target):  # one shared vocabulary, as opus-mt has
        sp = spm.SentencePieceProcessor(model_file=str(model))
        for i in range(sp.get_piece_size()):
            if not (sp.is_control(i) or sp.is_unknown(i)):
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(str(source), str(target), str(work / "vocab.json"))
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab), d_model=24, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=40,
        decoder_ffn_dim=40, max_position_embeddings=64, pad_token_id=vocab["<pad>"],
        eos_token_id=0, decoder_start_token_id=vocab["<pad>"], forced_eos_token_id=0,
        tie_word_embeddings=tied, share_encoder_decoder_embeddings=tied, init_std=0.5,
    )  # fmt: skip
    model = MarianMTModel(config).eval()
    with torch.no_grad():  # a bias the export must carry (opus-mt's is not all zeros)
        model.final_logits_bias.copy_(torch.randn_like(model.final_logits_bias))
    gen = {"bad_words_ids": [[vocab["<pad>"]]], "max_length": 16, "num_beams": 1}
    for key, value in {**gen, **(generation or {})}.items():
        setattr(model.generation_config, key, value)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_t5(folder: Path, *, generation: dict | None = None, seed: int = 0) -> Path:
    """A T5 folder whose tokenizer is ``spiece.model`` alone (no tokenizer.json)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    work = folder.parent / f"{folder.name}-spm"
    work.mkdir(parents=True, exist_ok=True)
    spiece = train_spm(work / "spiece.model", SOURCE_TEXT + TARGET_TEXT, 83, pad=0, eos=1,
                       unk=2, bos=-1)  # fmt: skip
    tokenizer = T5Tokenizer(str(spiece), extra_ids=0, legacy=True)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=tokenizer.vocab_size, d_model=24, d_kv=8, d_ff=40, num_layers=2,
        num_decoder_layers=2, num_heads=3, decoder_start_token_id=0, pad_token_id=0,
        eos_token_id=1, initializer_factor=3.0,
    )  # fmt: skip
    model = T5ForConditionalGeneration(config).eval()
    for key, value in (generation or {}).items():
        setattr(model.generation_config, key, value)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
