"""Tokenization rules of a checkpoint's own tokenizer that a ``tokenizers`` tokenizer lacks.

Marian's ``MarianTokenizer`` turns a leading language code (``>>fra<<``) into that code's
vocabulary id before SentencePiece sees the text, and looks the text of every piece up in
``vocab.json``, so a run of characters the source model does not know becomes the id of
that run's text when the shared vocabulary has it (a target-language character), else
``<unk>``. SentencePiece decoding drops the spaces around the text, and T5's tokenizer does
not append ``</s>`` to text that already ends with it. A bundle's manifest names the rules it
needs (``text_rules``); the runtime applies
them around its tokenizer, so its ids equal the slow tokenizer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgert.errors import BundleError


@dataclass(frozen=True)
class TextRules:
    """The rules of a bundle (all off: the tokenizer alone)."""

    language_code_prefix: bool = False  # ">>xx<<" at the start is one vocabulary id
    vocabulary: Mapping[str, int] = field(default_factory=dict)  # piece text -> id
    unk_id: int | None = None  # what the tokenizer returns for unknown text
    strip: bool = False  # decoded text loses surrounding spaces (``.strip()``)
    eos_once: int | None = None  # this id is not appended again after text that ends with it

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], read: Any) -> TextRules:
        """The manifest's ``text_rules`` (``read(name)`` parses a bundle JSON file)."""
        rules = manifest.get("text_rules") or {}
        if not isinstance(rules, Mapping):
            raise BundleError(
                "the manifest's text_rules is not an object", hint="re-export the bundle"
            )
        vocabulary = read(rules["vocabulary"]) if rules.get("vocabulary") else {}
        if not isinstance(vocabulary, Mapping):
            raise BundleError(f"{rules['vocabulary']} is not a JSON object of piece -> id",
                              hint="re-export the bundle")  # fmt: skip
        return cls(
            language_code_prefix=bool(rules.get("language_code_prefix")),
            vocabulary=vocabulary,
            unk_id=rules.get("unk_id"),
            strip=bool(rules.get("strip")),
            eos_once=rules.get("eos_once"),
        )

    def encode(self, tokenizer: Any, text: str) -> list[int]:
        """Token ids of ``text`` (with the tokenizer's special tokens)."""
        prefix: list[int] = []
        if self.language_code_prefix and text.startswith(">>") and (end := text.find("<<")) >= 0:
            code, text = text[: end + 2], text[end + 2 :]
            prefix = [self.vocabulary.get(code, self.unk_id)]  # type: ignore[list-item]
        encoding = tokenizer.encode(text)
        ids = encoding.ids
        if self.vocabulary and self.unk_id is not None and self.unk_id in ids:
            ids = [
                self.vocabulary.get(text[start:end], i) if i == self.unk_id and end > start else i
                for i, (start, end) in zip(ids, encoding.offsets, strict=True)
            ]
        if self.eos_once is not None and ids[-2:] == [self.eos_once, self.eos_once]:
            ids = ids[:-1]  # T5's tokenizer adds </s> only where the text does not end with it
        return prefix + ids
