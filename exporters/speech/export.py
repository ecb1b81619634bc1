"""Exporter of the ``speech`` family: a ``WhisperForConditionalGeneration`` folder -> bundle.

Loads the folder as transformers saves it (config, safetensors or ``weights_only``
weights, tokenizer files, ``preprocessor_config.json``, ``generation_config.json``),
exports the encoder (features -> cross K/V) and the cached decoder
(:mod:`edgert.exporters.speech.graphs`), runs the profile's steps on both, and stores
what the torch-free runtime needs: the decoder's embedding table, the tokenizer, the
feature extractor's mel filters and settings (so the numpy front-end uses its filters bit
for bit), and Whisper's decoding rules from the generation config. Validated against the
PyTorch model before the bundle is renamed into place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgert.bundle import Bundle
from edgert.errors import ExportError
from edgert.export import (
    Artifact,
    ExportContext,
    check_output,
    export_bundle,
    graph_entries,
    overall_precision,
    provenance,
)
from edgert.exporters.seq2seq.export import _scaled_table, load_tokenizers
from edgert.exporters.seq2seq.graphs import layout
from edgert.exporters.speech.graphs import export_graphs, window_frames
from edgert.exporters.speech.validate import validate_speech
from edgert.plugins.families.seq2seq.embeddings import save_table
from edgert.plugins.families.speech.names import speech_io
from edgert.plugins.families.speech.options import SpeechExport
from edgert.profiles import check_steps

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile

SUPPORTED = ("whisper",)


def load_model(source: str, revision: str | None) -> Any:
    """The PyTorch model, in eval mode with eager attention (exportable masks)."""
    from transformers import AutoConfig, WhisperForConditionalGeneration

    try:
        config = AutoConfig.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read a model config from {source!r}: {exc}",
                          hint="pass a local Whisper model folder (with config.json) or a hub id") from exc  # fmt: skip
    if config.model_type not in SUPPORTED:
        raise ExportError(
            f"{source!r} is a {config.model_type!r} model; the speech family exports "
            f"{', '.join(SUPPORTED)} checkpoints",
            hint="text encoder-decoders export with --family seq2seq",
        )
    model = WhisperForConditionalGeneration.from_pretrained(
        source, revision=revision, attn_implementation="eager", use_safetensors=None
    )
    return model.eval()


def feature_settings(source: str, revision: str | None, model: Any) -> tuple[dict, np.ndarray]:
    """The feature extractor's settings and mel filter bank ``[bins, mels]``, checked
    against the encoder's window (its input must be exactly ``2 * max_source_positions``
    frames)."""
    from transformers import WhisperFeatureExtractor

    try:
        extractor = WhisperFeatureExtractor.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"cannot read the feature extractor of {source!r}: {exc}",
            hint="the folder needs preprocessor_config.json (WhisperFeatureExtractor.save_pretrained)",
        ) from exc
    settings = {
        "sampling_rate": int(extractor.sampling_rate), "n_fft": int(extractor.n_fft),
        "hop_length": int(extractor.hop_length), "chunk_samples": int(extractor.n_samples),
        "feature_size": int(extractor.feature_size),
    }  # fmt: skip
    frames = settings["chunk_samples"] // settings["hop_length"]
    if frames != window_frames(model) or settings["feature_size"] != model.config.num_mel_bins:
        raise ExportError(
            f"the feature extractor makes {settings['feature_size']} x {frames} features; the "
            f"encoder takes {model.config.num_mel_bins} x {window_frames(model)}",
            hint="the folder's preprocessor_config.json belongs to another model: fix "
            "feature_size / chunk_length (n_samples) or save the model's own extractor",
        )
    return settings, np.asarray(extractor.mel_filters, np.float32)


def whisper_rules(model: Any, tokenizer_json: str) -> dict[str, Any]:
    """Whisper's decoding facts from the generation config: start, end and special ids,
    languages and tasks, suppressed tokens, timestamps. Refused naming what is missing
    where ``generate`` itself would fail."""
    gen, config = model.generation_config, model.config
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)

    def token(name: str) -> int | None:
        return tokenizer.token_to_id(name)

    # As generate() reads them: a generation config without Whisper's fields (a random
    # config's, or an old one) decodes from <|startoftranscript|> alone, without timestamps.
    no_timestamps = getattr(gen, "no_timestamps_token_id", None)
    eos = gen.eos_token_id if gen.eos_token_id is not None else config.eos_token_id
    start = gen.decoder_start_token_id
    if start is None:
        start = config.decoder_start_token_id
    forced = getattr(gen, "forced_decoder_ids", None) or getattr(config, "forced_decoder_ids", None)
    forced = [[int(i), None if t is None else int(t)] for i, t in forced or []]
    max_length = int(gen.max_length or config.max_target_positions)
    return {
        "decoder_start_token_id": int(start),
        "eos_token_ids": sorted({eos} if isinstance(eos, int) else set(eos or [])),
        "pad_token_id": gen.pad_token_id if gen.pad_token_id is not None else config.pad_token_id,
        "suppress_token_ids": [int(t) for t in (getattr(gen, "suppress_tokens", None) or [])],
        "begin_suppress_token_ids": [
            int(t) for t in (getattr(gen, "begin_suppress_tokens", None) or [])
        ],
        "forced_decoder_ids": forced,
        "lang_to_id": dict(getattr(gen, "lang_to_id", None) or {}),
        "task_to_id": dict(getattr(gen, "task_to_id", None) or {}),
        "is_multilingual": getattr(gen, "is_multilingual", None),
        "no_timestamps_token_id": None if no_timestamps is None else int(no_timestamps),
        "prev_sot_token_id": getattr(gen, "prev_sot_token_id", None) or token("<|startofprev|>"),
        "max_initial_timestamp_index": getattr(gen, "max_initial_timestamp_index", None),
        "return_timestamps": getattr(gen, "return_timestamps", None),
        "languages": _language_names(getattr(gen, "lang_to_id", None) or {}),
        "max_length": max_length,
        "max_total_length": int(config.max_target_positions),
        "max_input_length": window_frames(model),
        # per window: max_new_tokens where the config sets it, else max_length less the
        # prompt (transformers' default of 20 counts new tokens only)
        "max_new_tokens": min(
            gen.max_new_tokens or (20 if max_length == 20 else max_length - 1),
            int(config.max_target_positions) - 1,
        ),
        "max_new_tokens_given": gen.max_new_tokens is not None,
        "num_beams": gen.num_beams or 1,
        "top_k": gen.top_k,  # what a temperature fallback samples with
        "compression_ratio_threshold": getattr(gen, "compression_ratio_threshold", None),
        "logprob_threshold": getattr(gen, "logprob_threshold", None),
        "no_speech_threshold": getattr(gen, "no_speech_threshold", None),
        "length_penalty": gen.length_penalty,
        "early_stopping": gen.early_stopping,
        "do_sample": bool(gen.do_sample),
        "no_repeat_ngram_size": gen.no_repeat_ngram_size or 0,
        "repetition_penalty": gen.repetition_penalty or 1.0,
    }


def export_speech(options: SpeechExport, profile: DeviceProfile, catalog: Catalog) -> Bundle:
    """Export a Whisper-class model for ``profile``; returns the verified bundle."""
    check_steps(profile)
    check_output(options.out, options.force)
    if profile.export.static_shapes:
        raise ExportError(
            f"profile {profile.id!r} asks for static shapes; the speech family exports "
            "dynamic decoder graphs only so far",
            hint="export with a CPU or GPU profile (e.g. --device cpu-generic or --device auto)",
        )
    model = load_model(options.source, options.revision)
    settings, filters = feature_settings(options.source, options.revision, model)
    tokenizer_json = load_tokenizers(
        options.source, options.revision, model.config.vocab_size
    ).source
    rules = whisper_rules(model, tokenizer_json)
    table, scale = _decoder_table(model)
    lay = layout(model)
    audio = _validation_audio(options, settings["sampling_rate"])

    def graphs(out: Path) -> dict[str, Path]:
        return export_graphs(model, out, profile.export.opset)

    def files(staging: Path, final: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
        save_table(table, staging / "embeddings.npy", overall_precision(final))
        (staging / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        np.save(staging / "mel_filters.npy", filters)
        return {
            "graphs": graph_entries(speech_io(lay.layers), "encoder", "decoder"),
            "layout": dataclasses.asdict(lay),
            "embeddings": {"decoder": {"file": "embeddings.npy", "scale": scale}},
            "tokenizer": "tokenizer.json",
            "features": settings | {"mel_filters": "mel_filters.npy"},
            "generation": rules,
            "model_type": model.config.model_type,
            "provenance": provenance(options.source, revision=options.revision),
        }

    extra = {"model": model, "table": table, "scale": scale, "filters": filters,
             "settings": settings, "audio": audio, "rules": rules}  # fmt: skip
    return export_bundle(
        options, profile, catalog, family="speech", graphs=graphs, validator=validate_speech,
        extra=extra, files=files,
    )  # fmt: skip


def _decoder_table(model: Any) -> tuple[np.ndarray, float]:
    """The decoder's token embeddings and the scale its stack applies to looked-up rows."""
    import torch

    ids = torch.arange(min(7, model.config.vocab_size))[None]
    states = torch.randn(1, 3, model.config.d_model)

    def run(**kwargs: Any) -> Any:
        return model.get_decoder()(encoder_hidden_states=states, **kwargs).last_hidden_state

    return _scaled_table(model.get_decoder(), ids, run)


def _validation_audio(options: SpeechExport, rate: int) -> list[np.ndarray]:
    """The ``--validation-audio`` files as 16 kHz mono, or none (seeded signals then)."""
    from edgert.plugins.families.speech.audio import read_audio

    return [read_audio(Path(path), rate) for path in options.validation_audio]


def _language_names(lang_to_id: dict[str, int]) -> dict[str, str]:
    """Language names -> codes for the model's languages (``english`` -> ``en``), so the
    runtime takes names as transformers does, without transformers."""
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    known = {token.strip("<|>") for token in lang_to_id}
    return {name: code for name, code in sorted(TO_LANGUAGE_CODE.items()) if code in known}
