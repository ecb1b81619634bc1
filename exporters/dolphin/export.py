"""Exporter of the ``dolphin`` family: context encoder + projector, and the main decoder.

Loads a Dolphin-layout checkpoint or a composition (:mod:`.dolphin_source`), exports the
memory and decoder graphs (:mod:`.dolphin_graphs`), runs the profile's steps on both,
stores the main decoder's embedding table once, both tokenizers and the prompt layout,
and validates against the PyTorch reference before the bundle is renamed into place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from edgert.exporters.dolphin.graphs import export_graphs, layout
from edgert.exporters.dolphin.source import DolphinSource, load_source
from edgert.exporters.dolphin.static import calibration_traces, export_static_graphs
from edgert.exporters.dolphin.validate import validate_dolphin
from edgert.plugins.families.dolphin.options import DolphinExport
from edgert.plugins.families.seq2seq.embeddings import save_table
from edgert.plugins.families.seq2seq.names import decoder_decoder_io, static_decoder_decoder_io
from edgert.profiles import check_steps

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile


def static_settings(source: DolphinSource, profile: DeviceProfile) -> dict[str, int] | None:
    """Buckets of static-shape profiles (NPUs): the context window is the profile's
    ``max_input_length``, the K/V buffers hold ``max_total_length`` positions (prompt with
    its memory rows included)."""
    if not profile.export.static_shapes:
        return None
    window, total = profile.export.max_input_length, profile.export.max_total_length
    if total <= source.slots + 8:
        raise ExportError(
            f"profile {profile.id!r} holds {total} decoder positions, too few for "
            f"{source.slots} memory rows, a question and an answer",
            hint=f"raise [export] max_total_length above {source.slots + 64}",
        )
    return {"window": window, "max_total": total}


def export_dolphin(options: DolphinExport, profile: DeviceProfile, catalog: Catalog) -> Bundle:
    """Export a decoder-decoder model for ``profile``; returns the verified bundle."""
    check_steps(profile)
    check_output(options.out, options.force)
    if options.max_chunks < 1:
        raise ExportError(f"max_chunks must be >= 1, got {options.max_chunks}")
    source = load_source(options.source, options.revision)
    table = source.main.get_input_embeddings().weight.detach().float().numpy()
    static = static_settings(source, profile)
    opset = profile.export.opset

    def graphs(out: Path) -> dict[str, Path]:
        if static:
            return export_static_graphs(source, out, static["window"], static["max_total"], opset)
        return export_graphs(source, out, opset)

    def prepare(paths: dict[str, Path], ctx: ExportContext) -> None:
        ctx.per_graph = calibration_traces(paths, ctx)

    def files(staging: Path, final: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
        save_table(table, staging / "embeddings.npy", overall_precision(final))
        (staging / "tokenizer.json").write_text(source.tokenizer_json, encoding="utf-8")
        if context_tokenizer_file(source) != "tokenizer.json":
            (staging / "context_tokenizer.json").write_text(
                source.context_tokenizer_json, encoding="utf-8"
            )
        return _manifest(options, source, profile, static)

    return export_bundle(
        options, profile, catalog, family="dolphin", graphs=graphs, validator=validate_dolphin,
        extra={"source": source, "table": table, "static": static},
        prepare=prepare if static else None, files=files,
    )  # fmt: skip


def context_tokenizer_file(source: DolphinSource) -> str:
    """The Dolphin layout shares one tokenizer between both decoders: store it once."""
    same = source.context_tokenizer_json == source.tokenizer_json
    return "tokenizer.json" if same else "context_tokenizer.json"


def generation_defaults(source: DolphinSource, profile: DeviceProfile) -> dict[str, Any]:
    """Token ids and limits generation needs."""
    gen = getattr(source.main, "generation_config", None)
    max_new = getattr(gen, "max_new_tokens", None) or 64
    return {
        "decoder_start_token_id": None,
        "eos_token_ids": list(source.eos_token_ids),
        "pad_token_id": source.main.config.pad_token_id,
        "max_new_tokens": max_new,
        "max_input_length": profile.export.max_input_length,  # question tokens
        "max_total_length": int(source.main.config.max_position_embeddings),
        "num_beams": 1,
        "no_repeat_ngram_size": 0,
        "repetition_penalty": 1.0,
    }


def _manifest(
    options: DolphinExport, source: DolphinSource, profile: DeviceProfile, static: Any
) -> dict[str, Any]:
    """The decoder-decoder family's own manifest keys."""
    lay = layout(source.main, source.slots)
    names = (static_decoder_decoder_io if static else decoder_decoder_io)(lay.layers)
    d_in, d_out = source.projector.widths
    return {
        "graphs": graph_entries(names, "memory", "decoder"),
        "layout": dataclasses.asdict(lay),
        "embeddings": {"file": "embeddings.npy"},
        "tokenizer": "tokenizer.json",
        "dolphin": {
            "context_tokenizer": context_tokenizer_file(source),
            "memory_ids": list(source.memory_ids),
            "template": source.template,
            "context_window": static["window"] if static else source.context_window,
            "max_chunks": options.max_chunks,
            "projector": {"kind": source.projector.kind, "widths": [d_in, d_out]},
            "context_encoder": source.encoder.config.model_type,
            "main_decoder": source.main.config.model_type,
        },
        "generation": generation_defaults(source, profile),
        "static": static,
        "provenance": provenance(options.source, revision=options.revision),
    }
