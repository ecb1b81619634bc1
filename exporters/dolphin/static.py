"""Static-shape (NPU) graphs of a decoder-decoder model, and their calibration traces.

NPUs compile a graph for fixed shapes, so both graphs get them:

    memory:   input_ids [1, S], attention_mask [1, 1, S, S] (additive), position_ids [1, S]
              -> memory [1, N, D]         (S = context bucket + N memory tokens; the
                                           runtime left-pads and masks the padding)
    decoder:  inputs_embeds [1, 1, D], attention_mask [1, 1, 1, T + 1], position_ids [1, 1],
              past_k_i, past_v_i [1, H_kv, T, Dh]  (fixed buffers the runtime fills)
              -> logits [1, 1, V], new_k_i, new_v_i [1, H_kv, 1, Dh]

One position per decoder call: the prompt is fed position by position, then each token.
The masks are inputs, so the graphs hold no shape-dependent logic at all.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from edgert.export import ExportContext
from edgert.exporters.dolphin.graphs import layout
from edgert.exporters.seq2seq.calibrate import Recorder
from edgert.exporters.validation import greedy_tokens
from edgert.plugins.families.dolphin.core import memory_rows
from edgert.plugins.families.dolphin.static_core import StaticDolphinCore
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, save_table
from edgert.plugins.families.seq2seq.names import static_decoder_decoder_io

MAX_DECODER_FEEDS = 96  # each feed holds every K/V buffer: bound the memory


class StaticMemoryGraph(torch.nn.Module):
    """Context encoder + projector over a fixed, left-padded window."""

    def __init__(self, encoder: Any, projector: Any, slots: int) -> None:
        super().__init__()
        self.encoder, self.projector, self.slots = encoder, projector, slots

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            use_cache=False, return_dict=True,
        ).last_hidden_state  # fmt: skip
        return self.projector(hidden[:, -self.slots :])


class StaticDecoderGraph(torch.nn.Module):
    """One main-decoder position against fixed-size K/V buffers; returns the new K/V rows."""

    def __init__(self, main: Any, layers: int) -> None:
        super().__init__()
        self.main, self.n = main, layers

    def forward(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
        position_ids: torch.Tensor, *past: torch.Tensor,
    ) -> tuple:  # fmt: skip
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache.from_legacy_cache(
            tuple((past[2 * i], past[2 * i + 1]) for i in range(self.n))
        )
        out = self.main(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask,
            position_ids=position_ids, past_key_values=cache, use_cache=True, return_dict=True,
        )  # fmt: skip
        results = [out.logits]
        for layer in out.past_key_values.layers[: self.n]:
            results += [layer.keys[:, :, -1:], layer.values[:, :, -1:]]
        return tuple(results)


def export_static_graphs(
    source: Any, out_dir: Path, window: int, max_total: int, opset: int
) -> dict[str, Path]:
    """Write the static memory.onnx and decoder.onnx; returns their paths."""
    lay = layout(source.main, source.slots)
    length = window + source.slots
    names = static_decoder_decoder_io(lay.layers)
    memory_path, decoder_path = out_dir / "memory.onnx", out_dir / "decoder.onnx"
    ids = torch.zeros(1, length, dtype=torch.long)
    ids[0, -source.slots :] = torch.tensor(source.memory_ids)
    mask = torch.zeros(1, 1, length, length)
    positions = torch.arange(length)[None]
    past = [torch.zeros(1, lay.kv_heads, max_total, lay.head_dim) for _ in range(2 * lay.layers)]
    with warnings.catch_warnings():
        for category in (torch.jit.TracerWarning, DeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        torch.onnx.export(
            StaticMemoryGraph(source.encoder, npu_projector(source.projector), source.slots).eval(),
            (ids, mask, positions), str(memory_path),
            input_names=names["memory_inputs"], output_names=names["memory_outputs"],
            opset_version=opset, dynamo=False,
        )  # fmt: skip
        torch.onnx.export(
            StaticDecoderGraph(source.main, lay.layers).eval(),
            (torch.zeros(1, 1, lay.d_model), torch.zeros(1, 1, 1, max_total + 1),
             torch.zeros(1, 1, dtype=torch.long), *past),
            str(decoder_path),
            input_names=names["decoder_inputs"], output_names=names["decoder_outputs"],
            opset_version=opset, dynamo=False,
        )  # fmt: skip
    for module in (source.encoder, source.projector, source.main):
        module.eval()
    return {"memory": memory_path, "decoder": decoder_path}


def npu_projector(projector: Any) -> Any:
    """The projector with GELU's tanh form: the HTP has no Erf, and the two differ by
    < 1e-3, far inside the 16-bit QDQ error the validation measures anyway."""
    import copy

    if projector.kind != "mlp":
        return projector
    twin = copy.deepcopy(projector)
    twin.context_projection[1] = torch.nn.GELU(approximate="tanh")
    return twin.eval()


def calibration_traces(paths: dict[str, Path], ctx: ExportContext) -> dict[str, Any]:
    """``per_graph`` calibration feeds recorded while the fp32 static graphs decode the
    validation pairs greedily on CPU (random buffers calibrate 16-bit QDQ badly)."""
    import onnxruntime as ort

    from edgert.exporters.dolphin.validate import validation_pairs

    source, static = ctx.extra["source"], ctx.extra["static"]
    options = ort.SessionOptions()
    options.log_severity_level = 3

    def session(path: Path) -> Recorder:
        return Recorder(
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        )

    memory, decoder = session(paths["memory"]), session(paths["decoder"])
    table_path = ctx.workdir / "calibrate-embeddings.npy"
    save_table(ctx.extra["table"], table_path, "fp32")
    core = StaticDolphinCore(
        decoder, EmbeddingTable(table_path), layout(source.main, source.slots), static["max_total"]
    )
    eos = set(source.eos_token_ids)
    length = static["window"] + source.slots
    for context, prompt in validation_pairs(source, count=8, window=static["window"]):
        core.use_memory(memory_rows(memory, context, source.memory_ids, length))
        room = static["max_total"] - len(prompt) - source.slots  # positions after the prompt
        greedy_tokens(core, prompt, 1 + max(0, min(12, room)), eos)  # start + up to 12 steps
    step = max(1, len(decoder.feeds) // MAX_DECODER_FEEDS)
    return {
        "memory": {"calibration": memory.feeds},
        "decoder": {"calibration": decoder.feeds[::step]},
    }
