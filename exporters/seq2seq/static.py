"""Static-shape seq2seq graphs for NPUs (QNN HTP, OpenVINO NPU): T5 family.

NPUs compile a graph once for fixed shapes, so nothing may grow:

    encoder:  inputs_embeds [1, S, D], attention_mask [1, S]   (S = the profile's
              max_input_length bucket; inputs are padded)  -> cross_k_i, cross_v_i [1, H, S, Dh]
    decoder:  inputs_embeds [1, 1, D], self_bias [1, H, 1, M + 1], cross_bias [1, 1, 1, S],
              past_k_i, past_v_i [1, H, M, Dh] (fixed-size buffers, M = max_total_length),
              cross_k_i, cross_v_i -> logits [1, 1, V], new_k_i, new_v_i [1, H, 1, Dh]
    verify:   the decoder at a fixed width of K new tokens (the profile's
              ``export.verify_width``): inputs_embeds [1, K, D], self_bias [1, H, K, M + K]
              -> logits [1, K, V], new_k_i, new_v_i [1, H, K, Dh]

The runtime writes each step's new K/V into buffer slot ``position`` and passes the
relative-position bias plus the validity mask as ``self_bias``, computed outside the graph:
T5's bucketing uses ``Log``, which the HTP rejects. Rollback is free: slots past the
current length are masked.

The verify graph lets lossless decoders check a draft in one call, where a static graph
would otherwise take one call per token. A draft shorter than K is padded; the mask keeps
real rows from seeing the padding (causal) and each padding row sees only itself, so the
padding changes nothing and may sit past the end of the buffers. The runtime writes the
fed rows' K/V and rolls back by length what is not accepted.

The decoder step is written here from the model's weights (not by tracing the library),
because the library's cache appends keys and would give the new key the wrong relative
position inside a fixed-size buffer.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgert.errors import ExportError
from edgert.exporters.seq2seq.graphs import EncoderGraph, layout
from edgert.exporters.seq2seq.t5 import T5DecoderGraph
from edgert.plugins.families.seq2seq.names import static_t5_io


def check_supported(model: Any) -> None:
    """Static export exists for the T5 family (the embedded model is one)."""
    if model.config.model_type not in ("t5", "mt5"):
        raise ExportError(
            f"static-shape (NPU) export supports T5-family models; this is {model.config.model_type!r}",
            hint="export BART/Marian for a CPU or GPU profile (e.g. --device x86-avx2-int8)",
        )


class StaticT5Decoder(T5DecoderGraph):
    """One T5 decoder step over fixed-size self-attention buffers.

    The same layers as the dynamic graph; only the cache differs: the step returns the new
    token's K/V (the runtime writes them into its buffers) instead of the grown cache.
    """

    grown = False


def relative_bias_table(model: Any, max_total: int) -> np.ndarray:
    """Self-attention bias ``[H, M + 1, M + 1]``: entry (query i, key j) for real positions.

    Computed once at export with the model's own bucketing, stored in the bundle; the
    runtime picks row ``position`` and adds the validity mask.
    """
    attn = model.get_decoder().block[0].layer[0].SelfAttention
    with torch.inference_mode():
        bias = attn.compute_bias(max_total + 1, max_total + 1)  # [1, H, q, k]
    return bias[0].float().numpy()


def export_static_graphs(
    model: Any, out_dir: Path, source_len: int, max_total: int, opset: int, width: int = 0
) -> dict:
    """Export static encoder.onnx and decoder.onnx, and verify.onnx when ``width`` >= 2;
    returns their paths."""
    check_supported(model)
    lay = layout(model)
    paths = {role: out_dir / f"{role}.onnx" for role in ("encoder", "decoder", "verify")}
    if width < 2:
        del paths["verify"]
    names = static_t5_io(lay.layers)
    buffers = [torch.zeros(1, lay.heads, max_total, lay.head_dim) for _ in range(2 * lay.layers)]
    cross = [torch.randn(1, lay.heads, source_len, lay.head_dim) for _ in range(2 * lay.layers)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            EncoderGraph(model).eval(),
            (torch.randn(1, source_len, lay.d_model), torch.ones(1, source_len, dtype=torch.int64)),
            str(paths["encoder"]),
            input_names=names["encoder_inputs"],
            output_names=names["encoder_outputs"],
            opset_version=opset,
            dynamo=False,
        )
        soften_mask_constants(paths["encoder"])
        for role in [r for r in paths if r != "encoder"]:
            new = width if role == "verify" else 1
            torch.onnx.export(
                StaticT5Decoder(model).eval(),
                (
                    torch.randn(1, new, lay.d_model),
                    torch.zeros(1, lay.heads, new, max_total + new),
                    torch.zeros(1, 1, 1, source_len),
                    *buffers,
                    *cross,
                ),
                str(paths[role]),
                input_names=names[f"{role}_inputs"],
                output_names=names[f"{role}_outputs"],
                opset_version=opset,
                dynamo=False,
            )
    model.eval()
    return paths


SOFT_MASK = -1.0e4


def soften_mask_constants(path: Path) -> int:
    """Replace the library's padding-mask constant (float32 min, -3.4e38) with -1e4.

    Both zero a softmax weight, but a 16-bit QDQ activation range that has to reach
    -3.4e38 keeps no precision for real attention scores: the quantized encoder then
    ignores its input. Returns how many constants were changed.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    lowest = np.finfo(np.float32).min
    changed = 0
    tensors = list(model.graph.initializer) + [
        attr.t
        for node in model.graph.node
        if node.op_type == "Constant"
        for attr in node.attribute
        if attr.name == "value"
    ]
    for tensor in tensors:
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32 and array.size and np.any(array <= lowest):
            tensor.CopyFrom(
                numpy_helper.from_array(
                    np.where(array <= lowest, SOFT_MASK, array).astype(np.float32), tensor.name
                )
            )
            changed += 1
    onnx.save(model, str(path))
    return changed
