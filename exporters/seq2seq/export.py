"""Exporter of the ``seq2seq`` family: T5 / BART / Marian -> encoder + one decoder graph.

Loads a local Hugging Face directory or a hub id with ``from_pretrained`` (safetensors or
``torch.load(weights_only=True)``, never arbitrary pickles), exports the graphs of
:mod:`edgert.exporters.seq2seq.graphs`, runs the profile's steps on both, stores the shared
embedding table once, the tokenizer and the generation defaults, and validates against the
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
    read_lines,
)
from edgert.exporters.seq2seq import t5 as seq2seq_t5
from edgert.exporters.seq2seq.calibrate import calibration_traces
from edgert.exporters.seq2seq.graphs import export_graphs, layout
from edgert.exporters.seq2seq.static import (
    check_supported,
    export_static_graphs,
    relative_bias_table,
)
from edgert.exporters.seq2seq.validate import validate_seq2seq
from edgert.plugins.decoding.lexicon import DICTIONARY, Lexicon
from edgert.plugins.families.seq2seq.embeddings import save_table
from edgert.plugins.families.seq2seq.names import encoder_decoder_io, lean_t5_io, static_t5_io
from edgert.plugins.families.seq2seq.options import Seq2SeqExport
from edgert.profiles import check_steps

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile

SUPPORTED = ("t5", "mt5", "bart", "mbart", "marian")


def load_model(source: str, revision: str | None = None) -> Any:
    """The PyTorch model, in eval mode with eager attention (exportable masks)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    try:
        config = AutoConfig.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as exc:
        dolphin = "dolphin" in str(exc)
        raise ExportError(
            f"cannot read a model config from {source!r}: {exc}",
            hint="pass --family dolphin for decoder-decoder (Dolphin) checkpoints"
            if dolphin
            else "pass a local Hugging Face model folder (with config.json) or a hub id",
        ) from exc
    if not config.is_encoder_decoder or config.model_type not in SUPPORTED:
        raise ExportError(
            f"{source!r} is a {config.model_type!r} model, not an encoder-decoder this "
            f"exporter supports ({', '.join(SUPPORTED)})",
            hint="use --family cnn for image classifiers; decoder-only models are not seq2seq",
        )
    model = AutoModelForSeq2SeqLM.from_pretrained(
        source, revision=revision, attn_implementation="eager", use_safetensors=None
    )
    return model.eval()


def load_tokenizer_json(source: str, revision: str | None = None) -> str:
    """``tokenizer.json`` text: from the folder, or converted from a fast tokenizer."""
    local = Path(source) / "tokenizer.json"
    if local.is_file():
        return local.read_text(encoding="utf-8")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, use_fast=True)
    except Exception as exc:
        raise ExportError(f"cannot load the tokenizer of {source!r}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(
            f"the tokenizer of {source!r} has no fast (tokenizers) version",
            hint="add a tokenizer.json to the model folder (the runtime uses `tokenizers` only)",
        )
    return tokenizer.backend_tokenizer.to_str()


def lengths(model: Any, profile: DeviceProfile) -> tuple[int, int]:
    """The longest input and decoder sequence (start token included) a bundle takes.

    The profile's, within the position table of models with absolute positions: BART and
    Marian embed ``max_position_embeddings`` positions and fail past them (an index out of
    range in the graph, or a lossless decoder's draft running past the end), while T5's
    relative positions have no end.
    """
    inputs, total = profile.export.max_input_length, profile.export.max_total_length
    table = getattr(model.config, "max_position_embeddings", None)
    if table:
        inputs, total = min(inputs, int(table)), min(total, int(table))
    return inputs, total


def generation_defaults(model: Any, profile: DeviceProfile) -> dict[str, Any]:
    """Token ids and limits generation needs, from the model's generation config."""
    config, gen = model.config, model.generation_config
    max_input, max_total = lengths(model, profile)
    eos = gen.eos_token_id if gen.eos_token_id is not None else config.eos_token_id
    suppress = [ids[0] for ids in (gen.bad_words_ids or []) if len(ids) == 1]
    start = gen.decoder_start_token_id
    if start is None:
        start = config.decoder_start_token_id
    return {
        "decoder_start_token_id": start,
        "eos_token_ids": sorted({eos} if isinstance(eos, int) else set(eos or [])),
        "pad_token_id": gen.pad_token_id if gen.pad_token_id is not None else config.pad_token_id,
        "forced_bos_token_id": gen.forced_bos_token_id,
        "forced_eos_token_id": gen.forced_eos_token_id,
        "suppress_token_ids": suppress,
        # max_length counts the decoder start token; max_new_tokens wins when set.
        "max_new_tokens": min(gen.max_new_tokens or (gen.max_length or 21) - 1, max_total - 1),
        "max_input_length": max_input,
        "max_total_length": max_total,
        "num_beams": gen.num_beams or 1,
        "length_penalty": gen.length_penalty,
        "early_stopping": gen.early_stopping,
        "no_repeat_ngram_size": gen.no_repeat_ngram_size or 0,
        "repetition_penalty": gen.repetition_penalty or 1.0,
    }


def embedding_tables(model: Any) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, float]]]:
    """Tables to store (one when encoder and decoder share it) and, per role, which table
    and which scale to apply to looked-up rows.

    The graphs take embeddings, not ids, so any scale a stack applies only when it looks
    ids up itself (BART's scaled embedding, Marian's encoder but not its decoder) is
    applied by the runtime. Which scale that is differs between models and library
    versions, so it is measured: ``stack(inputs_embeds=scale * W[ids])`` must equal
    ``stack(input_ids=ids)``.
    """
    import torch

    ids = torch.arange(min(7, model.config.vocab_size))[None]
    encoder_states = torch.randn(1, 3, model.config.d_model)

    def run_encoder(**kwargs: Any) -> Any:
        return model.get_encoder()(**kwargs).last_hidden_state

    def run_decoder(**kwargs: Any) -> Any:
        return model.get_decoder()(encoder_hidden_states=encoder_states, **kwargs).last_hidden_state

    encoder, encoder_scale = _scaled_table(model.get_encoder(), ids, run_encoder)
    decoder, decoder_scale = _scaled_table(model.get_decoder(), ids, run_decoder)
    if encoder.shape == decoder.shape and np.array_equal(encoder, decoder):
        tables = {"embeddings": encoder}
        roles = {"encoder": ("embeddings", encoder_scale), "decoder": ("embeddings", decoder_scale)}
    else:
        tables = {"encoder_embeddings": encoder, "decoder_embeddings": decoder}
        roles = {"encoder": ("encoder_embeddings", encoder_scale),
                 "decoder": ("decoder_embeddings", decoder_scale)}  # fmt: skip
    return tables, roles


def _scaled_table(stack: Any, ids: Any, run: Any) -> tuple[np.ndarray, float]:
    import torch

    weight = stack.embed_tokens.weight.detach().float()
    inner = float(getattr(stack.embed_tokens, "embed_scale", 1.0))
    outer = float(getattr(stack, "embed_scale", 1.0))
    with torch.inference_mode():
        expected = run(input_ids=ids)
        for scale in dict.fromkeys((inner * outer, inner, outer, 1.0)):
            if torch.allclose(run(inputs_embeds=weight[ids] * scale), expected, atol=1e-5):
                return weight.numpy(), scale
    raise ExportError(
        f"cannot reproduce the token embeddings of {type(stack).__name__} from its table",
        hint="this architecture scales embeddings in a way edgert does not know; report it",
    )


def export_seq2seq(options: Seq2SeqExport, profile: DeviceProfile, catalog: Catalog) -> Bundle:
    """Export a seq2seq model for ``profile``; returns the verified bundle."""
    check_steps(profile)
    check_output(options.out, options.force)
    model = load_model(options.source, options.revision)
    tokenizer_json = load_tokenizer_json(options.source, options.revision)
    options = _texts_from_folder(options)
    spelt = check_dictionary(options.dictionary, tokenizer_json)
    defaults = generation_defaults(model, profile)
    static = _static_settings(model, profile)
    lean = not static and model.config.model_type in seq2seq_t5.T5_TYPES
    opset = profile.export.opset
    tables, roles = embedding_tables(model)
    if static:
        static["bias"] = relative_bias_table(model, static["max_total_length"])
    bias = (
        seq2seq_t5.bias_vectors(
            model, profile.export.max_input_length, profile.export.max_total_length
        )
        if lean
        else None
    )

    def graphs(out: Path) -> dict[str, Path]:
        if static:
            return export_static_graphs(
                model, out, static["source_length"], static["max_total_length"], opset
            )
        return (seq2seq_t5.export_t5_graphs if lean else export_graphs)(model, out, opset)

    def prepare(paths: dict[str, Path], ctx: ExportContext) -> None:
        ctx.per_graph = calibration_traces(paths, ctx, options.calibration_texts)

    def files(staging: Path, final: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
        precision = overall_precision(final)
        for name, weights in tables.items():
            save_table(weights, staging / f"{name}.npy", precision)
        (staging / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        if options.dictionary:
            (staging / DICTIONARY).write_text("\n".join(options.dictionary) + "\n", "utf-8")
        if static:
            np.save(staging / "self_bias.npy", static["bias"].astype(np.float32))
        for role, vector in (bias or {}).items():
            np.save(staging / f"{role}_position_bias.npy", vector)
        part = _manifest(options, model, defaults, roles, static, bias)
        if options.dictionary:
            part["dictionary_words"] = {"listed": len(options.dictionary), "spelt": spelt}
        return part

    extra = {
        "model": model, "tables": tables, "roles": roles, "tokenizer_json": tokenizer_json,
        "defaults": defaults, "texts": options.validation_texts, "static": static,
        "position_bias": bias,
    }  # fmt: skip
    return export_bundle(
        options, profile, catalog, family="seq2seq", graphs=graphs, validator=validate_seq2seq,
        extra=extra, prepare=prepare if static else None, files=files,
    )  # fmt: skip


def _texts_from_folder(options: Seq2SeqExport) -> Seq2SeqExport:
    """``validation.txt`` / ``calibration.txt`` / ``words.txt`` next to a local model fill
    unset options."""
    folder = Path(options.source)
    found = {}
    for name, attribute in (
        ("validation.txt", "validation_texts"),
        ("calibration.txt", "calibration_texts"),
        (DICTIONARY, "dictionary"),
    ):
        path = folder / name
        if not getattr(options, attribute) and path.is_file():
            found[attribute] = read_lines(path, name)
    return dataclasses.replace(options, **found) if found else options


def check_dictionary(words: tuple[str, ...], tokenizer_json: str) -> int:
    """How many of the dictionary's words the tokenizer spells as a word (the others are
    never corrections). Refuses a dictionary that is not one word per line, or of which
    the tokenizer spells no word: input-guided drafts would silently fall back to the
    vocabulary's words."""
    if not words:
        return 0
    for number, word in enumerate(words, 1):
        if len(word.split()) != 1:
            raise ExportError(
                f"dictionary entry {number} is not one word: {word!r}",
                hint="write one word per line, most frequent first (no counts or phrases)",
            )
    from tokenizers import Tokenizer

    lexicon = Lexicon.from_tokenizer(Tokenizer.from_str(tokenizer_json), words)
    if not lexicon.from_dictionary:
        raise ExportError(
            f"the tokenizer spells none of the dictionary's {len(words)} words as a word "
            f"(e.g. {words[0]!r})",
            hint="check that the dictionary is in the model's language and script",
        )
    return len(lexicon.words)


def _static_settings(model: Any, profile: DeviceProfile) -> dict[str, Any] | None:
    """Bucket sizes for static-shape profiles (NPUs), or None."""
    if not profile.export.static_shapes:
        return None
    check_supported(model)
    source_length, max_total_length = lengths(model, profile)
    return {"source_length": source_length, "max_total_length": max_total_length}


def _manifest(
    options: Seq2SeqExport,
    model: Any,
    defaults: dict[str, Any],
    roles: dict[str, tuple[str, float]],
    static: dict[str, Any] | None,
    bias: dict[str, Any] | None,
) -> dict[str, Any]:
    """The seq2seq family's own manifest keys."""
    lay = layout(model)
    names = (static_t5_io if static else lean_t5_io if bias else encoder_decoder_io)(lay.layers)
    return {
        "graphs": graph_entries(names, "encoder", "decoder"),
        "layout": dataclasses.asdict(lay),
        "embeddings": {
            role: {"file": f"{name}.npy", "scale": scale} for role, (name, scale) in roles.items()
        },
        "tokenizer": "tokenizer.json",
        "dictionary": DICTIONARY if options.dictionary else None,
        "generation": defaults,
        "model_type": model.config.model_type,
        "static": (
            {k: v for k, v in static.items() if k != "bias"} | {"bias": "self_bias.npy"}
            if static
            else None
        ),
        "position_bias": ({role: f"{role}_position_bias.npy" for role in bias} if bias else None),
        "provenance": provenance(options.source, revision=options.revision),
    }
