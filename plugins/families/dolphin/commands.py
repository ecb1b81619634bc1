"""What ``edgert run`` and ``profile`` do with a decoder-decoder bundle: text generation
about a context (``--context FILE``; a seeded context of ``--context-tokens``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgert.errors import InputError
from edgert.families import RunRequest
from edgert.plugins.families.dolphin.core import MEMORY
from edgert.plugins.families.seq2seq.commands import TextCommands


class ContextCommands(TextCommands):
    """Questions about a long context."""

    def extra_options(self, model: Any, request: RunRequest) -> dict[str, Any]:
        if request.context_path is None:
            raise InputError(
                "decoder-decoder bundles answer questions about a context: pass --context FILE",
                hint=f'edgert run {request.bundle} "your question" --context document.txt',
            )
        if not Path(request.context_path).is_file():
            raise InputError(f"context file not found: {request.context_path}")
        return {
            "context": Path(request.context_path).read_text(encoding="utf-8"),
            "context_policy": request.context_policy,
        }

    def prompt(self, model: Any, options: Any) -> dict[str, Any]:
        """A seeded context of ``context_tokens`` tokens (at most the encoder's window) and
        the question as a prompt with the memory marker; first-token times include
        encoding it."""
        question = super().prompt(model, options)
        rng = np.random.default_rng(1)
        tokenizer = model.context_tokenizer
        memory_ids = set(model.settings["memory_ids"])
        target = min(options.context_tokens, model.context_window)
        ids = [int(t) for t in rng.integers(0, tokenizer.get_vocab_size(), 2 * target)]
        ids = [t for t in ids if t not in memory_ids][:target]
        for _ in range(4):  # decoding and re-encoding may merge or split tokens: trim to fit
            context = tokenizer.decode(ids, skip_special_tokens=True)
            ids = tokenizer.encode(context).ids
            if len(ids) <= target:
                break
            ids = ids[:target]
        prompt = question.get("input_ids") or model.encode_text(question["text"])
        if MEMORY not in prompt:
            prompt = [MEMORY, *prompt[: model.defaults["max_input_length"] - 1]]
        return {"input_ids": prompt, "context": context}

    def encoder_stage(self, model: Any, prompt: dict[str, Any], runs: int) -> dict | None:
        """None: the context encoder is this family's encoder stage (``context_encoder``)."""
        return None

    def before_run(self, model: Any) -> None:
        model.memory_cache.clear()  # time the context encoder on every run, as for a new one

    def profile(self, model: Any, options: Any, tick: Any) -> dict:
        report = super().profile(model, options, tick)
        report["context_tokens"] = min(options.context_tokens, model.context_window)
        return report


COMMANDS = ContextCommands()
