"""Wrapper modules that turn a Hugging Face encoder-decoder into edgert's two graphs.

Why own wrappers instead of optimum's seq2seq export: optimum writes a decoder and a
decoder-with-past that store the weights twice and pin the new-token dimension to 1, so
K drafted tokens cannot be verified in one call. edgert's graph contract:

    encoder:  inputs_embeds [B, S, D], attention_mask [B, S]
              -> cross_k_i, cross_v_i [B, H, S, Dh]   (every decoder layer's cross K/V,
                                                      computed once per input)
    decoder:  inputs_embeds [B, K, D] (K = 1..n new tokens), encoder_attention_mask [B, S],
              past_k_i, past_v_i [B, H, L, Dh] (L >= 0), cross_k_i, cross_v_i
              -> logits [B, K, V], present_k_i, present_v_i [B, H, L + K, Dh]

Token embeddings stay outside the graphs (one table shared by encoder and decoder,
quantized with the bundle), so they are stored once. The decoder wrapper rebuilds the
library's ``EncoderDecoderCache`` from the inputs and calls the model with
``cache_position = L + arange(K)``; one graph serves the first step (L = 0) and every
later one. T5-family models get the same contract with bias inputs in place of the masks,
from modules written out of their weights (``seq2seq_t5``); BART and Marian are traced here.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from edgert.errors import ExportError
from edgert.plugins.families.seq2seq.core import Layout
from edgert.plugins.families.seq2seq.names import encoder_decoder_io


def _cross_attention(model: Any, index: int) -> tuple[Any, Any, int, int]:
    """The (k, v) projections, heads and head size of decoder layer ``index``'s cross-attention."""
    decoder = model.get_decoder()
    if hasattr(decoder, "block"):  # T5 / mT5
        attn = decoder.block[index].layer[1].EncDecAttention
        return attn.k, attn.v, attn.n_heads, attn.key_value_proj_dim
    if hasattr(decoder, "layers"):  # BART / mBART / Marian
        attn = decoder.layers[index].encoder_attn
        return attn.k_proj, attn.v_proj, attn.num_heads, attn.head_dim
    raise ExportError(
        f"cannot find the cross-attention of {type(model).__name__}",
        hint="supported: T5, mT5, BART, mBART, Marian",
    )


def layout(model: Any) -> Layout:
    """Layer count, heads and sizes of the decoder."""
    decoder = model.get_decoder()
    layers = len(decoder.block if hasattr(decoder, "block") else decoder.layers)
    _, _, heads, head_dim = _cross_attention(model, 0)
    return Layout(layers, heads, head_dim, model.config.d_model, model.config.vocab_size)


class EncoderGraph(torch.nn.Module):
    """Encoder plus every decoder layer's cross-attention K/V projection."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.encoder = model.get_encoder()
        self.n = layout(model).layers

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> tuple:
        hidden = self.encoder(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, return_dict=True
        ).last_hidden_state
        return self.cross(hidden)

    def cross(self, hidden: torch.Tensor) -> tuple:
        """Every decoder layer's cross-attention keys and values of the encoder states."""
        batch, length, _ = hidden.shape
        outputs = []
        for index in range(self.n):
            k_proj, v_proj, heads, head_dim = _cross_attention(self.model, index)
            for proj in (k_proj, v_proj):
                outputs.append(proj(hidden).view(batch, length, heads, head_dim).transpose(1, 2))
        return tuple(outputs)


class DecoderGraph(torch.nn.Module):
    """One decoder step over K new tokens with a self-attention cache of any length."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.n = layout(model).layers
        self.d_model = model.config.d_model

    def forward(
        self, inputs_embeds: torch.Tensor, encoder_attention_mask: torch.Tensor, *kv: torch.Tensor
    ) -> tuple:
        from transformers.cache_utils import EncoderDecoderCache

        n = self.n
        past, cross = kv[: 2 * n], kv[2 * n :]
        legacy = tuple(
            (past[2 * i], past[2 * i + 1], cross[2 * i], cross[2 * i + 1]) for i in range(n)
        )
        cache = EncoderDecoderCache.from_legacy_cache(legacy)
        start = past[0].shape[2]
        positions = torch.arange(inputs_embeds.shape[1]) + start
        batch, length = encoder_attention_mask.shape
        # Cross K/V come from the cache; the library still wants encoder states for shapes.
        encoder_states = torch.zeros(batch, length, self.d_model, dtype=inputs_embeds.dtype)
        out = self.model(
            decoder_inputs_embeds=inputs_embeds,
            encoder_outputs=(encoder_states,),
            attention_mask=encoder_attention_mask,
            past_key_values=cache,
            use_cache=True,
            cache_position=positions,
            return_dict=True,
        )
        results = [out.logits]
        for index in range(n):
            layer = out.past_key_values.self_attention_cache.layers[index]
            results += [layer.keys, layer.values]
        return tuple(results)


SOURCE, PAST, NEW = 5, 2, 3  # example lengths the graphs are traced with (all dynamic)

Inputs = dict[str, tuple[torch.Tensor, dict[int, str]]]  # name -> (example, dynamic axes)


def export_graphs(model: Any, out_dir: Any, opset: int) -> dict[str, Any]:
    """Export encoder.onnx and decoder.onnx into ``out_dir``; returns their paths.

    Tracer warnings about the library's cache code are silenced: the traced branches are
    the general ones (past length > 0, K > 1) and validation checks the others.
    """
    lay = layout(model)
    mask = (torch.ones(1, SOURCE, dtype=torch.int64), {0: "batch", 1: "source"})
    return export_pair(
        model,
        out_dir,
        opset,
        encoder_decoder_io(lay.layers),
        (EncoderGraph(model), {
            "inputs_embeds": (torch.randn(1, SOURCE, lay.d_model), {0: "batch", 1: "source"}),
            "attention_mask": mask,
        }),
        (DecoderGraph(model), {
            "inputs_embeds": (torch.randn(1, NEW, lay.d_model), {0: "batch", 1: "new"}),
            "encoder_attention_mask": mask,
        }),
    )  # fmt: skip


def export_pair(
    model: Any,
    out_dir: Any,
    opset: int,
    names: dict[str, list[str]],
    encoder: tuple[torch.nn.Module, Inputs],
    decoder: tuple[torch.nn.Module, Inputs],
) -> dict[str, Any]:
    """Export an encoder and a decoder module with the graph contract above.

    Each module comes with its inputs before the caches; the cache inputs (``PAST``
    positions, ``SOURCE`` cross positions) and every output get the contract's axes.
    """
    lay = layout(model)
    paths = {"encoder": out_dir / "encoder.onnx", "decoder": out_dir / "decoder.onnx"}
    kv_axes = {0: "batch", 2: "source"}
    kv = [torch.randn(1, lay.heads, PAST, lay.head_dim) for _ in range(2 * lay.layers)]
    cross = [torch.randn(1, lay.heads, SOURCE, lay.head_dim) for _ in range(2 * lay.layers)]
    dynamic = {"logits": {0: "batch", 1: "new"}}
    for name in names["decoder_inputs"][len(decoder[1]) :]:
        dynamic[name] = {0: "batch", 2: "past" if name.startswith("past") else "source"}
    for name in names["decoder_outputs"][1:]:
        dynamic[name] = {0: "batch", 2: "total"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        for role, (module, inputs), extra, axes in (
            ("encoder", encoder, [], {name: kv_axes for name in names["encoder_outputs"]}),
            ("decoder", decoder, [*kv, *cross], dynamic),
        ):
            torch.onnx.export(
                module.eval(),
                (*(example for example, _ in inputs.values()), *extra),
                str(paths[role]),
                input_names=names[f"{role}_inputs"],
                output_names=names[f"{role}_outputs"],
                dynamic_axes={name: axes for name, (_, axes) in inputs.items()} | axes,
                opset_version=opset,
                dynamo=False,
            )
    model.eval()  # torch.onnx.export restores the wrappers' previous mode recursively
    return paths
