"""Validation of speech bundles against the PyTorch model.

For each validation window (the ``--validation-audio`` files, else seeded speech-like
signals) the features come from the bundle's own numpy front-end, so the check covers
what the runtime will feed. PyTorch decodes greedily from ``<|startoftranscript|>``
(raw argmax, no rules), then both sides score that sequence teacher-forced; the ONNX side
also decodes step by step through the KV cache. Tolerances are the seq2seq family's:
fp32 greedy tokens identical and logits within 1e-3 x max(1, |logits|); fp16 / int8 at
least 90% next-token agreement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgert.export import Artifact, ExportContext, overall_precision
from edgert.exporters.seq2seq.graphs import layout
from edgert.exporters.seq2seq.validate import check_tolerance
from edgert.exporters.validation import greedy_tokens, validation_session
from edgert.plugins.families.seq2seq.core import Layout
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, save_table
from edgert.plugins.families.speech.audio import seeded_speech
from edgert.plugins.families.speech.core import SpeechCore
from edgert.plugins.families.speech.features import FeatureSettings, log_mel

NEW_TOKENS = 12


def _core(artifacts: dict[str, Artifact], ctx: ExportContext) -> tuple[SpeechCore, str]:
    encoder, where = validation_session(artifacts["encoder"].path, ctx)
    decoder, _ = validation_session(artifacts["decoder"].path, ctx)
    path = ctx.workdir / "validate-embeddings.npy"
    save_table(ctx.extra["table"], path, overall_precision(artifacts))
    lay = layout(ctx.extra["model"])
    settings = FeatureSettings(**ctx.extra["settings"])
    core = SpeechCore(
        encoder.session, decoder.session, EmbeddingTable(path, ctx.extra["scale"]),
        Layout(lay.layers, lay.heads, lay.head_dim, lay.d_model, lay.vocab),
        (settings.feature_size, settings.frames),
    )  # fmt: skip
    return core, where


def _reference(model: Any, features: np.ndarray, prompt: list[int],
               eos: set[int]) -> tuple[list[int], np.ndarray]:  # fmt: skip
    import torch

    with torch.inference_mode():
        encoded = model.get_encoder()(torch.from_numpy(features[None]))
        tokens = list(prompt)
        for _ in range(NEW_TOKENS):
            logits = model(encoder_outputs=encoded, decoder_input_ids=torch.tensor([tokens])).logits
            tokens.append(int(logits[0, -1].argmax()))
            if tokens[-1] in eos:
                break
        forced = model(
            encoder_outputs=encoded, decoder_input_ids=torch.tensor([tokens[:-1]])
        ).logits
    return tokens[len(prompt) :], forced[0, len(prompt) - 1 :].float().numpy()


def validate_speech(artifacts: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
    """Compare ONNX Runtime with PyTorch on the front-end's features; raise when outside
    tolerance."""
    model, rules = ctx.extra["model"], ctx.extra["rules"]
    core, where = _core(artifacts, ctx)
    settings = FeatureSettings(**ctx.extra["settings"])
    audio = ctx.extra["audio"] or [
        seeded_speech(seconds, seed, settings.sampling_rate)
        for seed, seconds in enumerate((1.0, 2.5, 4.0))
    ]
    prompt = [rules["decoder_start_token_id"]]
    if rules["no_timestamps_token_id"] is not None:
        prompt.append(rules["no_timestamps_token_id"])
    eos = set(rules["eos_token_ids"])
    agree = total = 0
    worst = 0.0
    greedy_equal = True
    for signal in audio:
        features = log_mel(signal, ctx.extra["filters"], settings)
        tokens, expected = _reference(model, features, prompt, eos)
        core.listen(features)
        got = core.start_with(prompt, tokens[:-1])
        worst = max(
            worst, float(np.max(np.abs(got - expected)) / max(1.0, np.max(np.abs(expected))))
        )
        agree += int(np.sum(got.argmax(-1) == expected.argmax(-1)))
        total += len(tokens)
        greedy_equal &= greedy_tokens(core, prompt, len(tokens), eos) == tokens
    result = {
        "inputs": len(audio),
        "ran_on": where,
        "positions": total,
        "next_token_agreement": agree / total,
        "max_relative_logit_diff": worst,
        "greedy_identical": bool(greedy_equal),
    }
    check_tolerance(result, overall_precision(artifacts))
    return result
