"""``tokenizers`` tokenizers for checkpoints that ship SentencePiece models only.

Marian (opus-mt) folders hold ``source.spm`` and ``target.spm`` and map their pieces to model
ids through one ``vocab.json``; transformers has no fast Marian tokenizer, so the runtime's
``tokenizers``-only path needs one built here, at export time, where sentencepiece may be
imported. Two are built, as ``MarianTokenizer`` uses two:

* the source one encodes: the source model's pieces, scores and normalizer (converted with
  transformers' own ``SpmConverter``), each piece at its ``vocab.json`` id; ids whose piece
  the source model lacks (the target language's pieces in a shared vocabulary) get a piece no
  text can match, so segmentation is the source model's; ``</s>``, ``<unk>`` and ``<pad>``
  are special tokens and ``</s>`` is appended;
* the target one decodes: every ``vocab.json`` id to its piece, with the target model's
  decoder (SentencePiece writes pieces it does not know as they are).

Two of ``MarianTokenizer``'s rules are not a tokenizer's: a leading language code
(``>>fra<<``) becomes its vocabulary id (or ``<unk>``), and a run of characters the source
model does not know becomes the id of that run's text in ``vocab.json`` (or ``<unk>``). The
manifest names them (``text_rules``) and the runtime applies them around the tokenizer.

Both are checked against the slow tokenizer by the tests, on text with punctuation, digits,
accents, CJK, emoji, unknown characters and stray spaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from edgert.errors import ExportError

UNUSED = "\u0000unused:{}"  # a piece for an id the model has no piece for: matches no text
SPECIALS = ("</s>", "<unk>", "<pad>")
SPM_NORMAL, SPM_USER_DEFINED = 1, 4  # ModelProto.SentencePiece.Type


def is_marian_folder(folder: Path) -> bool:
    """An opus-mt layout: SentencePiece models and a vocabulary, no ``tokenizer.json``."""
    return (folder / "source.spm").is_file() and (folder / "vocab.json").is_file()


def _proto(path: Path) -> Any:
    """The SentencePiece ``ModelProto`` of ``path`` (a clear error when it is not one)."""
    from transformers.convert_slow_tokenizer import import_protobuf

    model = import_protobuf().ModelProto()
    try:
        model.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise ExportError(
            f"{path} is not a SentencePiece model: {type(exc).__name__}: {exc}",
            hint="replace it with the checkpoint's own .spm file",
        ) from exc
    if not model.pieces:
        raise ExportError(f"{path} is not a SentencePiece model: it has no pieces",
                          hint="replace it with the checkpoint's own .spm file")  # fmt: skip
    return model


def converted(path: Path) -> Any:
    """The ``tokenizers`` form of one SentencePiece model (its own ids), by transformers'
    ``SpmConverter``: normalizer, Metaspace pre-tokenizer and decoder, Unigram model."""
    from transformers.convert_slow_tokenizer import SpmConverter

    kind = _proto(path).trainer_spec.model_type  # a readable error before the converter's
    if kind != 1:
        names = {2: "BPE", 3: "word", 4: "char"}
        raise ExportError(
            f"{path} is a SentencePiece {names.get(kind, str(kind))} model; edgert converts "
            "unigram models (what Marian and T5 ship)",
            hint="add a tokenizer.json made with the tokenizers library to the model folder",
        )
    return SpmConverter(SimpleNamespace(vocab_file=str(path))).converted()


def _vocab(folder: Path) -> dict[str, int]:
    path = folder / "vocab.json"
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(
            f"cannot read {path}: {exc}", hint="it must be a JSON object of piece -> id"
        ) from exc
    if not isinstance(vocab, dict) or not all(
        isinstance(i, int) and i >= 0 for i in vocab.values()
    ):
        raise ExportError(f"{path} is not a JSON object of piece -> non-negative id",
                          hint="use the checkpoint's own vocab.json")  # fmt: skip
    missing = [s for s in ("<unk>", "<pad>", "</s>") if s not in vocab]
    if missing:
        raise ExportError(f"{path} lacks {', '.join(missing)}",
                          hint="a Marian vocabulary has </s>, <unk> and <pad>")  # fmt: skip
    return vocab


def marian_tokenizers(folder: Path, vocab_size: int) -> tuple[str, str, dict[str, int]]:
    """``(source, target, vocab)`` for a Marian folder: the two tokenizers' JSON, in the
    model's ids, and the ``vocab.json`` the runtime looks unknown pieces up in."""
    from tokenizers import AddedToken, Tokenizer, processors
    from tokenizers.models import Unigram

    vocab = _vocab(folder)
    config = _tokenizer_config(folder)
    if config.get("separate_vocabs"):
        raise ExportError(
            f"{folder} uses separate source and target vocabularies (separate_vocabs)",
            hint="edgert exports Marian models with one shared vocab.json (the opus-mt layout)",
        )
    if max(vocab.values()) >= vocab_size:
        raise ExportError(
            f"{folder / 'vocab.json'} has ids up to {max(vocab.values())}, the model "
            f"{vocab_size} embeddings", hint="the vocabulary and the weights are from different checkpoints",
        )  # fmt: skip
    pieces = {i: p for p, i in vocab.items()}
    target_spm = (
        folder / "target.spm" if (folder / "target.spm").is_file() else folder / "source.spm"
    )

    def build(spm: Path, encoding: bool) -> str:
        proto = _proto(spm)
        known = {p.piece: p.score for p in proto.pieces if p.type in (SPM_NORMAL, SPM_USER_DEFINED)}
        uncovered = [p for p in known if p not in vocab]
        if uncovered:
            raise ExportError(
                f"{folder / 'vocab.json'} does not cover the pieces of {spm.name}: "
                f"{len(uncovered)} missing, e.g. {uncovered[:3]}",
                hint="use the vocab.json that was built with these SentencePiece models",
            )
        floor = min(known.values(), default=0.0)
        table = []
        for i in range(vocab_size):
            piece = pieces.get(i)
            if piece is not None and (piece in known or piece in SPECIALS or not encoding):
                table.append((piece, known.get(piece, floor)))
            else:  # encoding: the source model does not know it, so it never segments to it
                table.append((UNUSED.format(i), floor))
        base = Tokenizer.from_str(converted(spm).to_str())  # normalizer, pre-tokenizer, decoder
        tok = Tokenizer(Unigram(table, unk_id=vocab["<unk>"], byte_fallback=False))
        tok.normalizer, tok.pre_tokenizer, tok.decoder = (
            base.normalizer, base.pre_tokenizer, base.decoder,
        )  # fmt: skip
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
        if encoding:
            tok.post_processor = processors.TemplateProcessing(
                single="$A </s>", pair="$A $B </s>", special_tokens=[("</s>", vocab["</s>"])]
            )
        return tok.to_str()

    return build(folder / "source.spm", True), build(target_spm, False), vocab


def _tokenizer_config(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"cannot read {path}: {exc}", hint="fix or remove it") from exc
    return data if isinstance(data, dict) else {}
