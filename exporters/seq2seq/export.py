"""Exporter of the ``seq2seq`` family: T5 / BART / Marian -> encoder + one decoder graph.

Loads a local Hugging Face directory or a hub id with ``from_pretrained`` (safetensors or
``torch.load(weights_only=True)``, never arbitrary pickles), exports the graphs of
:mod:`edgert.exporters.seq2seq.graphs`, runs the profile's steps on both, stores the shared
embedding table once, the tokenizer and the generation defaults, and validates against the
PyTorch model before the bundle is renamed into place.
"""

from __future__ import annotations

import dataclasses
import json
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
from edgert.exporters.seq2seq.sentencepiece import is_marian_folder, marian_tokenizers
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


@dataclasses.dataclass(frozen=True)
class TokenizerFiles:
    """What a bundle stores to tokenize: ``tokenizer.json`` (encodes; also decodes unless
    ``target`` is given) and, for checkpoints whose tokenizer has rules no ``tokenizers``
    tokenizer has (Marian), the decoding tokenizer, the vocabulary and the rules."""

    source: str
    target: str | None = None
    vocabulary: dict[str, int] | None = None
    rules: dict[str, Any] | None = None


def load_tokenizers(source: str, revision: str | None, vocab_size: int) -> TokenizerFiles:
    """The bundle's tokenizers: the folder's ``tokenizer.json``; else, for a Marian folder
    (SentencePiece models and ``vocab.json``), two built from them; else the fast
    tokenizer transformers converts from the checkpoint's slow one (T5's ``spiece.model``)."""
    local = Path(source) / "tokenizer.json"
    if local.is_file():
        return TokenizerFiles(local.read_text(encoding="utf-8"))
    folder = marian_folder(source, revision)
    if folder is not None:
        encode, decode, vocabulary = marian_tokenizers(folder, vocab_size)
        rules = {"language_code_prefix": True, "vocabulary": "source_vocab.json",
                 "unk_id": vocabulary["<unk>"], "strip": True}  # fmt: skip
        return TokenizerFiles(encode, decode, vocabulary, rules)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, use_fast=True)
    except Exception as exc:
        raise ExportError(
            f"cannot load the tokenizer of {source!r}: {type(exc).__name__}: {exc}",
            hint="the folder needs tokenizer.json, or SentencePiece files (spiece.model; "
            "Marian: source.spm, target.spm and vocab.json) with sentencepiece installed",
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(
            f"the tokenizer of {source!r} ({type(tokenizer).__name__}) has no fast "
            "(tokenizers) version and edgert cannot build one from its files",
            hint="add a tokenizer.json made with the tokenizers library to the model folder",
        )
    rules: dict[str, Any] = {}
    if str(getattr(tokenizer, "vocab_file", "") or "").endswith(".model"):  # SentencePiece
        rules["strip"] = True
        if type(tokenizer).__name__.startswith(("T5", "MT5")):
            rules["eos_once"] = tokenizer.eos_token_id
    return TokenizerFiles(tokenizer.backend_tokenizer.to_str(), rules=rules or None)


def marian_folder(source: str, revision: str | None) -> Path | None:
    """A local folder with the Marian tokenizer files of ``source`` (a folder, or a hub id
    whose files are fetched into the hub cache), or None when it has none."""
    folder = Path(source)
    if folder.is_dir():
        return folder if is_marian_folder(folder) else None
    try:
        from huggingface_hub import hf_hub_download

        paths = [hf_hub_download(source, name, revision=revision)
                 for name in ("source.spm", "vocab.json")]  # fmt: skip
    except Exception:  # not a Marian repository (or no network): the generic path reports
        return None
    for name in ("target.spm", "tokenizer_config.json"):
        try:
            hf_hub_download(source, name, revision=revision)
        except Exception:
            continue
    return Path(paths[0]).parent


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
    """Token ids, limits and decoding defaults, as ``model.generate()`` would use them
    without arguments (``generation_config.json``, else the legacy ``config.json`` fields,
    else transformers' defaults), within what the profile's buffers hold."""
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
        "max_new_tokens": min(_new_tokens(gen, config), max_total - 1),
        "min_new_tokens": gen.min_new_tokens or max(0, (gen.min_length or 0) - 1),
        "max_input_length": max_input,
        "max_total_length": max_total,
        "do_sample": bool(gen.do_sample),
        "num_beams": gen.num_beams or 1,
        "length_penalty": gen.length_penalty,
        "early_stopping": gen.early_stopping,
        "no_repeat_ngram_size": gen.no_repeat_ngram_size or 0,
        "repetition_penalty": gen.repetition_penalty or 1.0,
    }


def _new_tokens(gen: Any, config: Any) -> int:
    """New tokens ``generate()`` makes without arguments: ``max_new_tokens`` when set;
    else ``max_length`` counts the decoder start token, except that transformers' own
    default of 20 means 20 new tokens (within the position table)."""
    if gen.max_new_tokens:
        return int(gen.max_new_tokens)
    length = gen.max_length if gen.max_length is not None else 20
    if length == 20:
        table = getattr(config, "max_position_embeddings", None)
        return min(21, int(table)) - 1 if table else 20
    return max(1, int(length) - 1)


# Where each default comes from: the keys of ``generation_defaults`` -> GenerationConfig's.
_SOURCE_KEYS = {
    "decoder_start_token_id": ("decoder_start_token_id",), "eos_token_ids": ("eos_token_id",),
    "pad_token_id": ("pad_token_id",), "forced_bos_token_id": ("forced_bos_token_id",),
    "forced_eos_token_id": ("forced_eos_token_id",), "suppress_token_ids": ("bad_words_ids",),
    "max_new_tokens": ("max_new_tokens", "max_length"),
    "min_new_tokens": ("min_new_tokens", "min_length"), "do_sample": ("do_sample",),
    "num_beams": ("num_beams",), "length_penalty": ("length_penalty",),
    "early_stopping": ("early_stopping",), "no_repeat_ngram_size": ("no_repeat_ngram_size",),
    "repetition_penalty": ("repetition_penalty",),
}  # fmt: skip


def generation_sources(
    model: Any, defaults: dict[str, Any], source: str, revision: str | None
) -> dict[str, str]:
    """For each default: ``generation_config.json (key)``, ``config.json (key)`` (legacy
    fields, read when the folder has no generation config), ``transformers default``, or
    ``profile`` where the profile's buffers cap it."""
    files = {name: _json_keys(source, revision, name)
             for name in ("generation_config.json", "config.json")}  # fmt: skip
    origin = (
        "generation_config.json" if files["generation_config.json"] is not None else "config.json"
    )
    given = files[origin] or set()
    sources = {}
    for key, names in _SOURCE_KEYS.items():
        found = next((n for n in names if n in given), None)
        sources[key] = f"{origin} ({found})" if found else "transformers default"
    if defaults["max_new_tokens"] < _new_tokens(model.generation_config, model.config):
        sources["max_new_tokens"] = "profile (max_total_length)"
    sources["max_input_length"] = sources["max_total_length"] = "profile"
    return sources


def _json_keys(source: str, revision: str | None, name: str) -> set[str] | None:
    """The top-level keys of the checkpoint's ``name`` (a local file or the hub's), or None."""
    path = Path(source) / name
    if not path.is_file() and not Path(source).is_dir():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, name, revision=revision))
        except Exception:
            return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return set(data) if isinstance(data, dict) else None


def check_generation_config(source: str) -> None:
    """A local ``generation_config.json`` whose keys transformers does not know, or whose
    values have the wrong type, is refused naming the key (transformers would keep an
    unknown key silently, and a misspelt ``num_beam`` would change nothing)."""
    path = Path(source) / "generation_config.json"
    if not path.is_file():
        return
    from transformers import GenerationConfig

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(
            f"cannot read {path}: {exc}", hint="fix the JSON or remove the file"
        ) from exc
    if not isinstance(data, dict):
        raise ExportError(f"{path} is not a JSON object", hint="fix it or remove the file")
    known = vars(GenerationConfig())
    extra = {"transformers_version", "_from_model_config", "_commit_hash"}
    unknown = sorted(k for k in data if k not in known and k not in extra)
    if unknown:
        raise ExportError(
            f"{path} has keys transformers' GenerationConfig does not know: {', '.join(unknown)}",
            hint="fix their spelling or remove them (valid keys include "
            "num_beams, max_new_tokens, max_length, no_repeat_ngram_size, bad_words_ids)",
        )
    for key, value in data.items():
        default = known.get(key)
        expected = _TYPES.get(key)
        wrong_bool = isinstance(value, bool) and bool not in (expected or (bool,))
        if expected and value is not None and (wrong_bool or not isinstance(value, expected)):
            raise ExportError(
                f"{path}: {key} is {value!r} ({type(value).__name__}); expected "
                f"{' or '.join(t.__name__ for t in expected)}",
                hint=f"set it to a valid value (transformers' default: {default!r}) or remove it",
            )


_INT, _NUM = (int,), (int, float)
_TYPES: dict[str, tuple[type, ...]] = {
    "num_beams": _INT, "max_new_tokens": _INT, "max_length": _INT, "min_length": _INT,
    "min_new_tokens": _INT, "no_repeat_ngram_size": _INT, "decoder_start_token_id": _INT,
    "forced_bos_token_id": _INT, "forced_eos_token_id": _INT, "pad_token_id": _INT,
    "eos_token_id": (int, list), "bad_words_ids": (list,), "length_penalty": _NUM,
    "repetition_penalty": _NUM, "do_sample": (bool,), "early_stopping": (bool, str),
    "num_beam_groups": _INT, "temperature": _NUM, "top_k": _INT, "top_p": _NUM,
}  # fmt: skip


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
    check_generation_config(options.source)
    model = load_model(options.source, options.revision)
    tokenizers = load_tokenizers(options.source, options.revision, model.config.vocab_size)
    tokenizer_json = tokenizers.source
    options = _texts_from_folder(options)
    spelt = check_dictionary(options.dictionary, tokenizers.target or tokenizer_json)
    defaults = generation_defaults(model, profile)
    static = _static_settings(model, profile)
    if static:
        profile = verify_like_decoder(profile)
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
                model, out, static["source_length"], static["max_total_length"], opset,
                static["verify_width"],
            )  # fmt: skip
        return (seq2seq_t5.export_t5_graphs if lean else export_graphs)(model, out, opset)

    def prepare(paths: dict[str, Path], ctx: ExportContext) -> None:
        ctx.per_graph = calibration_traces(paths, ctx, options.calibration_texts)

    def files(staging: Path, final: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
        precision = overall_precision(final)
        for name, weights in tables.items():
            save_table(weights, staging / f"{name}.npy", precision)
        (staging / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        if tokenizers.target is not None:
            (staging / "target_tokenizer.json").write_text(tokenizers.target, encoding="utf-8")
        if tokenizers.vocabulary is not None:
            (staging / "source_vocab.json").write_text(
                json.dumps(tokenizers.vocabulary, ensure_ascii=False), encoding="utf-8"
            )
        if options.dictionary:
            (staging / DICTIONARY).write_text("\n".join(options.dictionary) + "\n", "utf-8")
        if static:
            np.save(staging / "self_bias.npy", static["bias"].astype(np.float32))
        for role, vector in (bias or {}).items():
            np.save(staging / f"{role}_position_bias.npy", vector)
        part = _manifest(options, model, defaults, roles, static, bias)
        if tokenizers.target is not None:
            part["target_tokenizer"] = "target_tokenizer.json"
        if tokenizers.rules:
            part["text_rules"] = tokenizers.rules
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
    width = profile.export.verify_width
    if width >= max_total_length:
        raise ExportError(
            f"export.verify_width is {width}, and the decoder's window "
            f"(export.max_total_length) holds {max_total_length} positions: a verify call "
            "must fit in the window",
            hint="lower export.verify_width (8 is the default) or raise export.max_total_length "
            "in the profile, then export again",
        )
    if width and "validate" not in profile.export.steps:
        raise ExportError(
            f"profile {profile.id!r} exports a verify graph (export.verify_width = {width}) "
            "but has no 'validate' step: validation measures how far its logits move from "
            "the step graph's, which the lossless decoders need to stay greedy's",
            hint="add 'validate' as the last of [export].steps, or set export.verify_width = 0",
        )
    return {
        "source_length": source_length, "max_total_length": max_total_length,
        "verify_width": width,
    }  # fmt: skip


def verify_like_decoder(profile: DeviceProfile) -> DeviceProfile:
    """The profile with the verify graph quantized as the decoder is, unless it names the
    verify graph itself: it is the decoder at another width, with the same activations."""
    q = profile.export.quantization
    types, methods = dict(q.graph_activation_types), dict(q.graph_methods)
    for table in (types, methods):
        if "decoder" in table:
            table.setdefault("verify", table["decoder"])
    quantization = dataclasses.replace(q, graph_activation_types=types, graph_methods=methods)
    export = dataclasses.replace(profile.export, quantization=quantization)
    copy = dataclasses.replace(profile, export=export)
    object.__setattr__(copy, "source", profile.source)
    return copy


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
    verify = ("verify",) if static and static["verify_width"] else ()
    return {
        "graphs": graph_entries(names, "encoder", "decoder", *verify),
        "layout": dataclasses.asdict(lay),
        "embeddings": {
            role: {"file": f"{name}.npy", "scale": scale} for role, (name, scale) in roles.items()
        },
        "tokenizer": "tokenizer.json",
        "dictionary": DICTIONARY if options.dictionary else None,
        "generation": defaults,
        "generation_sources": generation_sources(model, defaults, options.source, options.revision),
        "model_type": model.config.model_type,
        "static": (
            {k: v for k, v in static.items() if k != "bias"} | {"bias": "self_bias.npy"}
            if static
            else None
        ),
        "position_bias": ({role: f"{role}_position_bias.npy" for role in bias} if bias else None),
        "provenance": provenance(options.source, revision=options.revision),
    }
