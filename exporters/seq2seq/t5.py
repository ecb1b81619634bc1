"""Lean T5 graphs: the relative position bias and the masks come in as inputs.

Traced through the library, a T5 decoder step spends about half its nodes (Range, Log,
Where, Shape, Gather, Concat...) recomputing position buckets and masks that depend only
on the sequence lengths. On a small model every node is mostly fixed cost, so those nodes
are a large share of each call. Here the graphs are written from the model's weights, the
runtime looks the bias up in per-distance vectors stored with the bundle
(``edgert.plugins.families.seq2seq.core.PositionBias``), and heads are split with constant-shape reshapes
(``0`` keeps the batch dimension), so no node computes a shape at run time. Q, K and V
(and, in the encoder, every decoder layer's cross K and V) come from one MatMul each:

    encoder:  inputs_embeds [B, S, D], attention_bias [1, H, S, S]   (relative bias + padding)
              -> cross_k_i, cross_v_i [B, H, S, Dh]
    decoder:  inputs_embeds [B, K, D], self_bias [1, H, K, L + K] (relative bias + causal
              mask), cross_bias [B, 1, 1, S] (padding), past_k_i, past_v_i [B, H, L, Dh],
              cross_k_i, cross_v_i -> logits [B, K, V], present_k_i, present_v_i

Validation compares the bundle's greedy tokens with the library's model, as for every
other graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgert.exporters.seq2seq.graphs import NEW, PAST, SOURCE, export_pair, layout
from edgert.plugins.families.seq2seq.names import lean_t5_io

T5_TYPES = ("t5", "mt5")


class _SplitHeads(torch.autograd.Function):
    """``[B, T, H * Dh] -> [B, T, H, Dh]`` exported as one Reshape with a constant shape."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
        return x.unflatten(-1, (heads, head_dim))

    @staticmethod
    def symbolic(g: Any, x: Any, heads: int, head_dim: int) -> Any:
        shape = g.op("Constant", value_t=torch.tensor([0, -1, heads, head_dim], dtype=torch.int64))
        return g.op("Reshape", x, shape)


class _MergeHeads(torch.autograd.Function):
    """``[B, T, H, Dh] -> [B, T, H * Dh]`` exported as one Reshape with a constant shape."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, width: int) -> torch.Tensor:
        return x.flatten(-2)

    @staticmethod
    def symbolic(g: Any, x: Any, width: int) -> Any:
        shape = g.op("Constant", value_t=torch.tensor([0, -1, width], dtype=torch.int64))
        return g.op("Reshape", x, shape)


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


class _T5Stack(torch.nn.Module):
    """What both graphs share: head handling, attention, feed-forward."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.lay = layout(model)
        self.eps = model.config.layer_norm_epsilon
        self.gated = model.config.is_gated_act

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        return _SplitHeads.apply(x, self.lay.heads, self.lay.head_dim).transpose(1, 2)

    def projections(self, x: torch.Tensor, *linears: Any) -> list[torch.Tensor]:
        """Several bias-free projections of ``x`` as one MatMul, split into heads each.

        Three (Q, K, V) or ``2 x layers`` (every cross-attention K and V) small matrix
        products cost about as much as one product with their weights side by side.
        """
        weight = torch.cat([linear.weight for linear in linears])  # folded at export
        both = torch.nn.functional.linear(x, weight)
        count, heads = len(linears), self.lay.heads
        split = _SplitHeads.apply(both, count * heads, self.lay.head_dim).transpose(1, 2)
        return list(split.split(heads, dim=1))

    def attend(self, q: Any, k: Any, v: Any, bias: Any) -> torch.Tensor:
        scores = torch.matmul(q, k.transpose(-1, -2)) + bias  # T5 does not scale by sqrt(d)
        out = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
        return _MergeHeads.apply(out, self.lay.heads * self.lay.head_dim)

    def feed_forward(self, layer: Any, h: torch.Tensor) -> torch.Tensor:
        dense = layer.DenseReluDense
        x = _rms(h, layer.layer_norm.weight, self.eps)
        hidden = dense.act(dense.wi_0(x)) * dense.wi_1(x) if self.gated else dense.act(dense.wi(x))
        return h + dense.wo(hidden)


class T5EncoderGraph(_T5Stack):
    """Encoder plus every decoder layer's cross-attention K/V projection."""

    def forward(self, inputs_embeds: torch.Tensor, attention_bias: torch.Tensor) -> tuple:
        encoder = self.model.get_encoder()
        h = inputs_embeds
        for block in encoder.block:
            attn = block.layer[0].SelfAttention
            x = _rms(h, block.layer[0].layer_norm.weight, self.eps)
            q, k, v = self.projections(x, attn.q, attn.k, attn.v)
            h = h + attn.o(self.attend(q, k, v, attention_bias))
            h = self.feed_forward(block.layer[1], h)
        h = _rms(h, encoder.final_layer_norm.weight, self.eps)
        crosses = [block.layer[1].EncDecAttention for block in self.model.get_decoder().block]
        return tuple(self.projections(h, *[p for c in crosses for p in (c.k, c.v)]))


class T5DecoderGraph(_T5Stack):
    """K new tokens over a self-attention cache of any length; returns the grown cache."""

    grown = True  # False: return only the new positions' K/V (static NPU buffers)

    def forward(self, inputs_embeds, self_bias, cross_bias, *kv):
        n = self.lay.layers
        past, cross = kv[: 2 * n], kv[2 * n :]
        h = inputs_embeds
        present = []
        for i, block in enumerate(self.model.get_decoder().block):
            attn = block.layer[0].SelfAttention
            x = _rms(h, block.layer[0].layer_norm.weight, self.eps)
            q, k, v = self.projections(x, attn.q, attn.k, attn.v)
            keys = torch.cat([past[2 * i], k], dim=2)
            values = torch.cat([past[2 * i + 1], v], dim=2)
            h = h + attn.o(self.attend(q, keys, values, self_bias))
            cross_attn = block.layer[1].EncDecAttention
            x = _rms(h, block.layer[1].layer_norm.weight, self.eps)
            q = self.heads(cross_attn.q(x))
            h = h + cross_attn.o(self.attend(q, cross[2 * i], cross[2 * i + 1], cross_bias))
            h = self.feed_forward(block.layer[2], h)
            present += [keys, values] if self.grown else [k, v]
        h = _rms(h, self.model.get_decoder().final_layer_norm.weight, self.eps)
        if self.model.config.tie_word_embeddings:
            h = h * (self.lay.d_model**-0.5)
        return (self.model.lm_head(h), *present)


def bias_vectors(model: Any, source_len: int, total_len: int) -> dict[str, np.ndarray]:
    """The relative position bias per distance, computed with the model's own bucketing.

    ``encoder`` is ``[H, 2N - 1]`` over key minus query position ``-(N-1)..N-1``;
    ``decoder`` is ``[H, M]`` over query minus key position ``0..M-1``. Both reach past
    the model's ``relative_attention_max_distance``, beyond which every distance falls in
    the last bucket, so the runtime may clamp longer distances to the last entry.
    """
    reach = model.config.relative_attention_max_distance + 1
    n, m = max(source_len, reach), max(total_len, reach)
    vectors = {}
    for name, stack, distances, bidirectional in (
        ("encoder", model.get_encoder(), torch.arange(-(n - 1), n), True),
        ("decoder", model.get_decoder(), -torch.arange(m), False),
    ):
        attn = stack.block[0].layer[0].SelfAttention
        buckets = attn._relative_position_bucket(
            distances,
            bidirectional=bidirectional,
            num_buckets=attn.relative_attention_num_buckets,
            max_distance=attn.relative_attention_max_distance,
        )
        with torch.inference_mode():
            vectors[name] = attn.relative_attention_bias(buckets).T.float().numpy().copy()
    return vectors


def export_t5_graphs(model: Any, out_dir: Path, opset: int) -> dict[str, Path]:
    """Export the lean encoder.onnx and decoder.onnx into ``out_dir``; returns their paths."""
    lay = layout(model)
    heads = lay.heads
    return export_pair(
        model,
        out_dir,
        opset,
        lean_t5_io(lay.layers),
        (T5EncoderGraph(model), {
            "inputs_embeds": (torch.randn(1, SOURCE, lay.d_model), {0: "batch", 1: "source"}),
            "attention_bias": (torch.zeros(1, heads, SOURCE, SOURCE), {2: "source", 3: "source"}),
        }),
        (T5DecoderGraph(model), {
            "inputs_embeds": (torch.randn(1, NEW, lay.d_model), {0: "batch", 1: "new"}),
            "self_bias": (torch.zeros(1, heads, NEW, PAST + NEW), {2: "new", 3: "total"}),
            "cross_bias": (torch.zeros(1, 1, 1, SOURCE), {0: "bias_batch", 3: "source"}),
        }),
    )  # fmt: skip
