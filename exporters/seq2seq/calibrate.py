"""Calibration data for static QDQ quantization of seq2seq graphs: decoding traces.

Random buffers calibrate badly (80% next-token agreement on a tiny T5 on the HTP): the
decoder's activations depend on real K/V histories. So the fp32 graphs decode sample
texts greedily on CPU and every encoder and decoder feed is recorded. The verify graph
then checks each decoded sequence K tokens per call, as a draft that is all accepted
would be checked, and those feeds calibrate it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgert.export import ExportContext
from edgert.exporters.validation import greedy_tokens
from edgert.plugins.families.seq2seq.core import Layout
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, save_table
from edgert.plugins.families.seq2seq.static_core import StaticSeq2SeqCore

MAX_DECODER_FEEDS = 96  # each feed holds every K/V buffer: bound the memory


class Recorder:
    """Wraps a session and keeps a copy of every feed it runs."""

    def __init__(self, session: Any) -> None:
        self.session, self.feeds = session, []

    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> Any:
        self.feeds.append({k: np.array(v, copy=True) for k, v in feed.items()})
        return self.session.run(outputs, feed)


def calibration_traces(paths: dict[str, Path], ctx: ExportContext, texts: tuple[str, ...]) -> dict:
    """``per_graph`` overrides with recorded feeds for ``encoder`` and ``decoder``."""
    import onnxruntime as ort

    from edgert.exporters.seq2seq.graphs import layout
    from edgert.exporters.seq2seq.validate import validation_inputs

    static, defaults = ctx.extra["static"], ctx.extra["defaults"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    encoder = Recorder(
        ort.InferenceSession(str(paths["encoder"]), options, providers=["CPUExecutionProvider"])
    )
    decoder, verify = (
        Recorder(
            ort.InferenceSession(str(paths[role]), options, providers=["CPUExecutionProvider"])
        )
        if role in paths
        else None
        for role in ("decoder", "verify")
    )
    tables = {}
    for name, weights in ctx.extra["tables"].items():
        tables[name] = ctx.workdir / f"calibrate-{name}.npy"
        save_table(weights, tables[name], "fp32")
    enc, dec = (
        EmbeddingTable(tables[name], scale)
        for name, scale in (ctx.extra["roles"]["encoder"], ctx.extra["roles"]["decoder"])
    )
    lay = layout(ctx.extra["model"])
    core = StaticSeq2SeqCore(
        encoder, decoder, (enc, dec), Layout(lay.layers, lay.heads, lay.head_dim, lay.d_model, lay.vocab),
        defaults["decoder_start_token_id"], static["source_length"], static["max_total_length"], static["bias"],
        verify, static["verify_width"],
    )  # fmt: skip
    eos = set(defaults["eos_token_ids"])
    samples = _samples(ctx, texts, validation_inputs, static["source_length"])
    for ids in samples:  # the start call and up to 32 steps, each feed recorded
        tokens = greedy_tokens(core, ids, 1 + max(0, min(32, static["max_total_length"] - 2)), eos)
        if verify is not None and len(tokens) > 1:  # the same sequence, K tokens a call
            core.rollback(1)
            core.step(tokens[:-1])
    per_graph = {"encoder": {"calibration": encoder.feeds}}
    for role, recorder in (("decoder", decoder), ("verify", verify)):
        if recorder is not None:
            step = max(1, len(recorder.feeds) // MAX_DECODER_FEEDS)
            per_graph[role] = {"calibration": recorder.feeds[::step]}
    return per_graph


def _samples(
    ctx: ExportContext, texts: tuple[str, ...], fallback: Any, limit: int
) -> list[list[int]]:
    from tokenizers import Tokenizer

    if texts:
        tokenizer = Tokenizer.from_str(ctx.extra["tokenizer_json"])
        return [tokenizer.encode(t).ids[:limit] for t in texts]
    return [ids[:limit] for ids in fallback(ctx, count=16)]
