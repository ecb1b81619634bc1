"""Run a folder written by ``optimum-cli export onnx --task text2text-generation-with-past``.

Users who already exported with optimum keep their files: ``edgert.load(folder)`` wraps
optimum's encoder, decoder and decoder-with-past graphs in the same step interface as an
edgert bundle, so every decoder plugin works on them. Differences, by optimum's design:
cross-attention K/V come from the first decoder call, the with-past graph takes one token
at a time (K drafted tokens are verified by K calls), and the folder carries no checksums
(reported as ``verified: False``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgert.decoding import ModelInfo
from edgert.errors import BundleError, InputError

REQUIRED = (
    "encoder_model.onnx",
    "decoder_model.onnx",
    "decoder_with_past_model.onnx",
    "config.json",
)


def is_optimum_folder(path: Path) -> bool:
    """A folder with optimum's seq2seq files and no edgert manifest."""
    path = Path(path)
    return (
        path.is_dir()
        and not (path / "manifest.json").exists()
        and (path / "encoder_model.onnx").exists()
    )


def generation_defaults(path: Path, max_total_length: int) -> dict[str, Any]:
    """The manifest-style generation defaults from ``config.json`` / ``generation_config.json``."""
    config = json.loads((path / "config.json").read_text())
    gen_file = path / "generation_config.json"
    gen = json.loads(gen_file.read_text()) if gen_file.exists() else {}

    def get(key: str, default: Any = None) -> Any:
        return gen.get(key, config.get(key, default))

    eos = get("eos_token_id")
    bad = get("bad_words_ids") or []
    if config.get("max_position_embeddings"):  # absolute positions end there (BART, Marian)
        max_total_length = min(max_total_length, int(config["max_position_embeddings"]))
    return {
        "decoder_start_token_id": get("decoder_start_token_id"),
        "eos_token_ids": sorted({eos} if isinstance(eos, int) else set(eos or [])),
        "pad_token_id": get("pad_token_id"),
        "forced_bos_token_id": get("forced_bos_token_id"),
        "forced_eos_token_id": get("forced_eos_token_id"),
        "suppress_token_ids": [ids[0] for ids in bad if len(ids) == 1],
        "max_new_tokens": min(
            get("max_new_tokens") or (get("max_length", 21) - 1), max_total_length - 1
        ),
        "max_input_length": max_total_length,
        "max_total_length": max_total_length,
        "num_beams": get("num_beams", 1),
        "length_penalty": get("length_penalty", 1.0),
        "early_stopping": get("early_stopping", False),
        "no_repeat_ngram_size": get("no_repeat_ngram_size", 0),
        "repetition_penalty": get("repetition_penalty", 1.0),
        "vocab_size": config["vocab_size"],
    }


class OptimumCore:
    """Optimum's three graphs behind the step interface (``StepModel`` + batched helpers)."""

    def __init__(
        self, encoder: Any, first: Any, with_past: Any, decoder_start: int, vocab: int
    ) -> None:
        self.encoder, self.first, self.with_past = encoder, first, with_past
        self.decoder_start = decoder_start
        self.vocab_size = vocab
        self.info = ModelInfo(decoder_start=decoder_start)  # the runtime adds the rest
        self._past_names = [
            i.name for i in with_past.get_inputs() if i.name.startswith("past_key_values")
        ]
        self._present_names = [
            name.replace("past_key_values", "present") for name in self._past_names
        ]
        self._first_outputs = ["logits", *self._present_names]
        self._past_outputs = ["logits", *[n for n in self._present_names if ".decoder." in n]]
        self._state: dict[str, np.ndarray] = {}
        self._length = 0

    def encode(self, input_ids: Sequence[int], batch: int = 1) -> None:
        """Run the encoder once and keep its states for the first decoder call."""
        ids = np.asarray(input_ids, np.int64)[None].repeat(batch, axis=0)
        if ids.shape[1] == 0:
            raise InputError("the input is empty after tokenization", hint="pass some text")
        mask = np.ones_like(ids)
        hidden = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        self._mask, self._hidden = mask, hidden
        self._state, self._length = {}, 0

    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Encode and return logits after the decoder start token."""
        self.encode(input_ids)
        return self.step([self.decoder_start])

    def step(self, new_ids: Sequence[int]) -> np.ndarray:
        """Append tokens one call each (optimum's with-past graph takes one token)."""
        return np.concatenate([self.step_batch(np.array([[t]], np.int64))[0] for t in new_ids])

    def start_batch(self, input_ids: Sequence[int], batch: int) -> np.ndarray:
        """Encode for ``batch`` hypotheses; logits after the start token."""
        self.encode(input_ids, batch)
        return self.step_batch(np.full((batch, 1), self.decoder_start, np.int64))[:, -1]

    def step_batch(self, ids: np.ndarray) -> np.ndarray:
        """Append one token per row."""
        if ids.shape[1] != 1:
            return np.concatenate(
                [self.step_batch(ids[:, i : i + 1]) for i in range(ids.shape[1])], axis=1
            )
        if not self._state:
            feed = {
                "input_ids": ids,
                "encoder_attention_mask": self._mask,
                "encoder_hidden_states": self._hidden,
            }
            outputs = self.first.run(self._first_outputs, feed)
        else:
            feed = {"input_ids": ids, "encoder_attention_mask": self._mask, **self._state}
            outputs = self.with_past.run(self._past_outputs, feed)
        names = self._first_outputs if not self._state else self._past_outputs
        for name, value in zip(names[1:], outputs[1:], strict=True):
            self._state[name.replace("present", "past_key_values")] = value
        self._length += 1
        return outputs[0]

    def rollback(self, length: int) -> None:
        """Forget positions ``>= length`` (cross K/V are kept)."""
        if not 0 <= length <= self._length:
            raise ValueError(f"cannot roll back to {length}; {self._length} positions cached")
        if length == 0:
            self._state = {}
        for name, value in self._state.items():
            if ".decoder." in name:
                self._state[name] = np.ascontiguousarray(value[:, :, :length])
        self._length = length

    def reorder(self, rows: np.ndarray) -> None:
        """Keep cache rows ``rows`` (beam search)."""
        self._state = {name: value[rows] for name, value in self._state.items()}

    @property
    def length(self) -> int:
        """Decoder positions cached so far."""
        return self._length


def check_folder(path: Path) -> None:
    """Refuse folders missing one of optimum's files, naming it."""
    missing = [name for name in REQUIRED if not (path / name).exists()]
    if missing:
        raise BundleError(
            f"{path} looks like an optimum export but lacks {', '.join(missing)}",
            hint="export with: optimum-cli export onnx --model MODEL "
            "--task text2text-generation-with-past DIR",
        )
    if not (path / "tokenizer.json").exists():
        raise BundleError(
            f"{path} has no tokenizer.json", hint="save the fast tokenizer into the folder"
        )


def load_folder(path: Path, device: Any, allow_fallback: Any, threads: Any) -> Any:
    """An optimum-cli seq2seq folder, run like a bundle (its files carry no checksums)."""
    import dataclasses

    from edgert import resolve_device
    from edgert.bundle import Bundle
    from edgert.catalog import get_catalog
    from edgert.plugins.decoding.lexicon import DICTIONARY
    from edgert.plugins.families.seq2seq.runtime import Seq2SeqModel

    check_folder(path)
    profile, _ = resolve_device(device or "cpu-generic")
    if device is None:  # a default, not the caller's choice: no source (see _run_device)
        profile = dataclasses.replace(profile)
    manifest = {
        "format": "optimum",
        "family": "seq2seq",
        "verified": False,
        "precision": "fp32",
        "generation": generation_defaults(path, profile.export.max_total_length),
        "dictionary": DICTIONARY if (path / DICTIONARY).is_file() else None,
    }
    return Seq2SeqModel(
        Bundle(path, manifest),
        profile,
        get_catalog(),
        allow_fallback=allow_fallback,
        threads=threads,
    )
