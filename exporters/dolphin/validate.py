"""Validation of decoder-decoder bundles against the PyTorch reference composition.

For each validation pair (a context, a question) the reference computes the memory rows
and decodes greedily without any cache; the ONNX side computes the memory with the memory
graph, runs the prompt and the reference's tokens teacher-forced through the cache in one
call, and decodes greedily step by step.

- fp32: greedy tokens identical, logits within 1e-3 x max(1, |logits|) of PyTorch;
- fp16 / int8: next-token agreement over all teacher-forced positions is reported and the
  export fails below 90%.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgert.export import Artifact, ExportContext, overall_precision
from edgert.exporters.dolphin.graphs import layout
from edgert.exporters.dolphin.source import Reference
from edgert.exporters.seq2seq.validate import check_tolerance
from edgert.exporters.validation import greedy_tokens, validation_session
from edgert.plugins.families.dolphin.core import MARKER, MEMORY, DolphinCore, memory_rows
from edgert.plugins.families.dolphin.static_core import StaticDolphinCore
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, save_table

NEW_TOKENS = 12


def validation_pairs(
    source: Any, count: int = 4, window: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """Seeded (context ids, prompt ids) pairs drawn from the ordinary vocabulary."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(source.tokenizer_json)
    before = source.template.replace("{question}", "").partition(MARKER)[0]
    head = tokenizer.encode(before).ids
    special = set(source.memory_ids) | set(source.eos_token_ids)
    context_vocab = int(source.encoder.config.vocab_size)
    main_vocab = int(source.main.config.vocab_size)
    rng = np.random.default_rng(0)

    def draw(vocab: int, n: int) -> list[int]:
        ids = [int(i) for i in rng.integers(0, vocab, 4 * n) if int(i) not in special]
        return ids[:n]

    window = max(8, min(window or source.context_window, 96))
    return [
        (draw(context_vocab, int(rng.integers(8, window))),
         [*head, MEMORY, *draw(main_vocab, int(rng.integers(2, 9)))])
        for _ in range(count)
    ]  # fmt: skip


def validate_dolphin(artifacts: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
    """Compare ONNX Runtime with the PyTorch reference; raise when outside tolerance."""
    source = ctx.extra["source"]
    reference = Reference(source)
    memory_info, where = validation_session(artifacts["memory"].path, ctx)
    decoder_info, _ = validation_session(artifacts["decoder"].path, ctx)
    precision = overall_precision(artifacts)
    table_path = ctx.workdir / "validate-embeddings.npy"
    save_table(ctx.extra["table"], table_path, precision)
    lay = layout(source.main, source.slots)
    static = ctx.extra.get("static")
    if static:
        core: Any = StaticDolphinCore(
            decoder_info.session, EmbeddingTable(table_path), lay, static["max_total"]
        )
        length = static["window"] + source.slots
    else:
        core, length = DolphinCore(decoder_info.session, EmbeddingTable(table_path), lay), None
    agree = total = 0
    worst = worst_memory = 0.0
    greedy_equal = True
    pairs = validation_pairs(source, window=static["window"] if static else None)
    for context, prompt in pairs:
        reference_rows = reference.memory(context)
        expected_memory = reference_rows.float().numpy()
        memory = memory_rows(memory_info.session, context, source.memory_ids, length)
        worst_memory = max(worst_memory, _relative(memory, expected_memory))
        tokens, expected = reference.greedy(reference_rows, prompt, NEW_TOKENS)
        core.use_memory(memory)
        got = core.start(prompt)
        if len(tokens) > 1:
            got = np.concatenate([got, core.step(tokens[:-1])])
        expected = expected.numpy()
        worst = max(worst, _relative(got, expected))
        agree += int(np.sum(got.argmax(-1) == expected.argmax(-1)))
        total += len(tokens)
        greedy_equal &= (
            greedy_tokens(core, prompt, len(tokens), set(source.eos_token_ids)) == tokens
        )
    result = {
        "inputs": len(pairs),
        "ran_on": where,
        "positions": total,
        "next_token_agreement": agree / total,
        "max_relative_logit_diff": worst,
        "max_relative_memory_diff": worst_memory,
        "greedy_identical": bool(greedy_equal),
    }
    check_tolerance(result, precision)
    return result


def _relative(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got - expected)) / max(1.0, float(np.max(np.abs(expected)))))
