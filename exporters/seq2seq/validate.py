"""Validation of seq2seq bundles against the PyTorch model.

For each validation input the PyTorch model decodes greedily (raw argmax, no processors),
then both sides score that sequence teacher-forced: PyTorch in one forward pass, ONNX
Runtime in one multi-token decoder call. The ONNX side also decodes step by step through
the KV cache.

- fp32: greedy tokens identical through the cache path, and logits within
  1e-3 x max(1, |logits|) of PyTorch;
- fp16 / int8: greedy next-token agreement over all teacher-forced positions is reported;
  the export fails below 90% (int8 dynamic is expected at >= 98%).

A static bundle's teacher-forced call runs its verify graph (K tokens a call), where it
has one, and the cache path its one-token step graph: both are checked against PyTorch.
How far the verify graph's logits move from the step graph's is measured too and stored,
with a margin, as ``verify_drift``: the lossless decoders recompute a verified position
one token per call when its top two logits are closer than that.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgert.errors import ValidationMismatchError
from edgert.export import Artifact, ExportContext, overall_precision
from edgert.exporters.seq2seq.graphs import layout
from edgert.exporters.validation import greedy_tokens, validation_session
from edgert.plugins.families.seq2seq.core import Layout, PositionBias, Seq2SeqCore
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, save_table
from edgert.plugins.families.seq2seq.static_core import StaticSeq2SeqCore

FP32_RELATIVE_ATOL = 1e-3
DRIFT_MARGIN = 2.0  # the stored verify drift: twice the largest seen on the inputs
MIN_AGREEMENT = 0.90
NEW_TOKENS = 12


def validation_inputs(ctx: ExportContext, count: int = 8) -> list[list[int]]:
    """Token ids of the validation texts, or seeded samples from the vocabulary."""
    from tokenizers import Tokenizer

    texts = ctx.extra.get("texts") or ()
    if texts:
        tokenizer = Tokenizer.from_str(ctx.extra["tokenizer_json"])
        return [tokenizer.encode(text).ids for text in texts]
    model = ctx.extra["model"]
    vocab = model.config.vocab_size
    eos = ctx.extra["defaults"]["eos_token_ids"][:1]
    rng = np.random.default_rng(0)
    low = min(4, vocab - 1)
    return [list(rng.integers(low, vocab, int(rng.integers(6, 24)))) + eos for _ in range(count)]


def _reference(
    model: Any, ids: list[int], start: int, eos: set[int]
) -> tuple[list[int], np.ndarray]:
    import torch

    with torch.inference_mode():
        source = torch.tensor([ids])
        encoded = model.get_encoder()(input_ids=source)
        tokens = [start]
        for _ in range(NEW_TOKENS):
            logits = model(encoder_outputs=encoded, decoder_input_ids=torch.tensor([tokens])).logits
            tokens.append(int(logits[0, -1].argmax()))
            if tokens[-1] in eos:
                break
        forced = model(
            encoder_outputs=encoded, decoder_input_ids=torch.tensor([tokens[:-1]])
        ).logits
    return tokens[1:], forced[0].float().numpy()


def _core(artifacts: dict[str, Artifact], ctx: ExportContext) -> tuple[Any, str]:
    encoder, where = validation_session(artifacts["encoder"].path, ctx)
    decoder, _ = validation_session(artifacts["decoder"].path, ctx)
    precision = overall_precision(artifacts)  # the embedding table is stored at this precision
    paths = {}
    for name, weights in ctx.extra["tables"].items():
        paths[name] = ctx.workdir / f"validate-{name}.npy"
        save_table(weights, paths[name], precision)
    enc, dec = (
        EmbeddingTable(paths[name], scale)
        for name, scale in (ctx.extra["roles"]["encoder"], ctx.extra["roles"]["decoder"])
    )
    lay = layout(ctx.extra["model"])
    sizes = Layout(lay.layers, lay.heads, lay.head_dim, lay.d_model, lay.vocab)
    start = ctx.extra["defaults"]["decoder_start_token_id"]
    static = ctx.extra.get("static")
    if static:
        verify = (
            validation_session(artifacts["verify"].path, ctx)[0] if "verify" in artifacts else None
        )
        core: Any = StaticSeq2SeqCore(
            encoder.session, decoder.session, (enc, dec), sizes, start,
            static["source_length"], static["max_total_length"], static["bias"],
            verify.session if verify else None, static["verify_width"],
        )  # fmt: skip
    else:
        vectors = ctx.extra.get("position_bias")
        bias = PositionBias(**vectors) if vectors else None
        core = Seq2SeqCore(encoder.session, decoder.session, (enc, dec), sizes, start, bias)
    return core, where


def validate_seq2seq(artifacts: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
    """Compare ONNX Runtime with PyTorch; raise when outside tolerance."""
    model, defaults = ctx.extra["model"], ctx.extra["defaults"]
    core, where = _core(artifacts, ctx)
    start, eos = defaults["decoder_start_token_id"], set(defaults["eos_token_ids"])
    precision = overall_precision(artifacts)
    agree = total = 0
    worst = 0.0
    greedy_equal = True
    drift = Drift() if isinstance(core, StaticSeq2SeqCore) and core.verify is not None else None
    inputs = validation_inputs(ctx)
    for ids in inputs:
        tokens, expected = _reference(model, ids, start, eos)
        core.encode(ids)
        got = core.step([start, *tokens[:-1]])
        worst = max(
            worst, float(np.max(np.abs(got - expected)) / max(1.0, np.max(np.abs(expected))))
        )
        agree += int(np.sum(got.argmax(-1) == expected.argmax(-1)))
        total += len(tokens)
        greedy_equal &= greedy_tokens(core, ids, len(tokens), eos) == tokens
        if drift:
            measure_drift(core, ids, [start, *tokens[:-1]], drift, got)
    result = {
        "inputs": len(inputs),
        "ran_on": where,
        "positions": total,
        "next_token_agreement": agree / total,
        "max_relative_logit_diff": worst,
        "greedy_identical": bool(greedy_equal),
    }
    if drift:
        result |= drift.result()
        if result["verify_agreement"] < MIN_AGREEMENT:
            raise ValidationMismatchError(
                f"the verify graph agrees with the step graph on {result['verify_agreement']:.1%}"
                f" of next tokens (needs {MIN_AGREEMENT:.0%})",
                step="validate",
                hint="pass --validation-text and calibration texts like the real inputs, or "
                "export with export.verify_width = 0 (greedy and sampling only)",
            )
    check_tolerance(result, precision)
    return result


def measure_drift(core: Any, ids: list[int], fed: list[int], drift: Drift,
                  wide: np.ndarray) -> None:  # fmt: skip
    """Verify-graph rows against one-token rows of the same ``fed`` tokens: ``wide``, the
    verify calls from position 0, and verify calls from several offsets after a prefix
    computed one token at a time, as a decoder verifies after an exact prefix."""
    width = core.width
    core.encode(ids)
    single = np.concatenate([core.step([t]) for t in fed])
    drift.add(wide, single)
    for offset in sorted({1, width // 2, width - 1} & set(range(1, len(fed)))):
        core.rollback(offset)
        drift.add(core.step(fed[offset:]), single[offset:])


class Drift:
    """How far verify-graph logits move from the step graph's on the same positions."""

    def __init__(self) -> None:
        self.absolute = self.relative = 0.0
        self.agree = self.rows = 0

    def add(self, wide: np.ndarray, single: np.ndarray) -> None:
        moved = np.abs(wide - single).max(axis=-1)
        scale = np.maximum(np.abs(single).max(axis=-1), 1e-6)
        self.absolute = max(self.absolute, float(moved.max()))
        self.relative = max(self.relative, float((moved / scale).max()))
        self.agree += int(np.sum(wide.argmax(-1) == single.argmax(-1)))
        self.rows += len(single)

    def result(self) -> dict[str, Any]:
        return {
            "verify_agreement": self.agree / max(1, self.rows),
            "verify_drift": [self.absolute * DRIFT_MARGIN, self.relative * DRIFT_MARGIN],
        }


def check_tolerance(result: dict[str, Any], precision: str) -> None:
    if precision == "fp32" and (
        not result["greedy_identical"] or result["max_relative_logit_diff"] > FP32_RELATIVE_ATOL
    ):
        raise ValidationMismatchError(
            f"fp32 graphs differ from PyTorch: greedy identical={result['greedy_identical']}, "
            f"max relative logit diff {result['max_relative_logit_diff']:.3g} "
            f"(tolerance {FP32_RELATIVE_ATOL})",
            step="validate",
            hint="report this with the model config; --keep-intermediate DIR keeps each step",
        )
    if result["next_token_agreement"] < MIN_AGREEMENT:
        raise ValidationMismatchError(
            f"{precision} graphs agree with PyTorch on {result['next_token_agreement']:.1%} of "
            f"{result['positions']} next tokens (needs {MIN_AGREEMENT:.0%})",
            step="validate",
            hint="export at higher precision (e.g. --device cpu-generic), or pass "
            "--validation-text with representative inputs",
        )
