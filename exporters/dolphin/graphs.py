"""The two graphs of a decoder-decoder bundle.

    memory:   input_ids [1, S]  (context tokens followed by the N memory tokens)
              -> memory [1, N, D_main]   (context encoder, last N states, projector)
    decoder:  inputs_embeds [B, K, D_main] (K = 1..n new positions), past_k_i, past_v_i
              [B, H_kv, L, Dh] (L >= 0) -> logits [B, K, V], present_k_i, present_v_i

The main decoder's token embeddings stay outside the graphs (a table in the bundle), so
the runtime can splice the memory rows into the prompt and a decoding plugin can feed
1..K tokens at any cache length: prefill, single steps and K-token verification are the
same graph. Both wrappers pass an explicit 4-D causal mask (``0`` where a query may attend,
a large negative number elsewhere) built from the input shapes, so the traced graph holds
for every length instead of baking in the library's mask construction.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from edgert.plugins.families.dolphin.core import Layout
from edgert.plugins.families.seq2seq.names import decoder_decoder_io

MASKED = -1.0e4  # large enough to zero a softmax term, small enough for 16-bit formats


def layout(main: Any, slots: int) -> Layout:
    """Cache and table sizes of the main decoder."""
    config = main.config
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    return Layout(
        layers=int(config.num_hidden_layers), kv_heads=kv_heads, head_dim=head_dim,
        d_model=int(config.hidden_size), vocab=int(config.vocab_size), slots=slots,
    )  # fmt: skip


def causal_mask(new: int | torch.Tensor, past: int | torch.Tensor) -> torch.Tensor:
    """``[1, 1, new, past + new]``: position ``past + i`` sees keys ``0 .. past + i``."""
    queries = torch.arange(new)[:, None] + past
    keys = torch.arange(past + new)[None, :]
    return torch.where(keys <= queries, 0.0, MASKED)[None, None].to(torch.float32)


class MemoryGraph(torch.nn.Module):
    """Context encoder + projector: context ids -> ``N`` memory embeddings."""

    def __init__(self, encoder: Any, projector: Any, slots: int) -> None:
        super().__init__()
        self.encoder, self.projector, self.slots = encoder, projector, slots

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        hidden = self.encoder(
            input_ids=input_ids,
            attention_mask=causal_mask(length, 0),
            position_ids=torch.arange(length)[None],
            use_cache=False,
            return_dict=True,
        ).last_hidden_state
        return self.projector(hidden[:, -self.slots :])


class DecoderGraph(torch.nn.Module):
    """Main decoder over K new positions given as embeddings, with a cache of any length."""

    def __init__(self, main: Any, layers: int) -> None:
        super().__init__()
        self.main, self.n = main, layers

    def forward(self, inputs_embeds: torch.Tensor, *past: torch.Tensor) -> tuple:
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache.from_legacy_cache(
            tuple((past[2 * i], past[2 * i + 1]) for i in range(self.n))
        )
        start, new = past[0].shape[2], inputs_embeds.shape[1]
        positions = torch.arange(new)[None] + start
        out = self.main(
            inputs_embeds=inputs_embeds,
            attention_mask=causal_mask(new, start),
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            cache_position=positions[0],
            return_dict=True,
        )
        results = [out.logits]
        for layer in out.past_key_values.layers[: self.n]:
            results += [layer.keys, layer.values]
        return tuple(results)


def export_graphs(source: Any, out_dir: Any, opset: int) -> dict[str, Any]:
    """Write memory.onnx and decoder.onnx into ``out_dir``; returns their paths.

    Tracer warnings about the library's cache code are silenced: the traced branches are
    the general ones (past > 0, K > 1) and validation checks prefill and single steps.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _export(source, out_dir, opset)


def _export(source: Any, out_dir: Any, opset: int) -> dict[str, Any]:
    lay = layout(source.main, source.slots)
    names = decoder_decoder_io(lay.layers)
    memory_path, decoder_path = out_dir / "memory.onnx", out_dir / "decoder.onnx"
    context = torch.tensor([[*([3] * 5), *source.memory_ids]], dtype=torch.long)
    torch.onnx.export(
        MemoryGraph(source.encoder, source.projector, source.slots).eval(),
        (context,),
        str(memory_path),
        input_names=names["memory_inputs"],
        output_names=names["memory_outputs"],
        dynamic_axes={"input_ids": {1: "context"}},
        opset_version=opset,
        dynamo=False,
    )
    batch, past, new = 1, 2, 3
    kv = [torch.randn(batch, lay.kv_heads, past, lay.head_dim) for _ in range(2 * lay.layers)]
    dynamic = {"inputs_embeds": {0: "batch", 1: "new"}, "logits": {0: "batch", 1: "new"}}
    for name in names["decoder_inputs"][1:]:
        dynamic[name] = {0: "batch", 2: "past"}
    for name in names["decoder_outputs"][1:]:
        dynamic[name] = {0: "batch", 2: "total"}
    torch.onnx.export(
        DecoderGraph(source.main, lay.layers).eval(),
        (torch.randn(batch, new, lay.d_model), *kv),
        str(decoder_path),
        input_names=names["decoder_inputs"],
        output_names=names["decoder_outputs"],
        dynamic_axes=dynamic,
        opset_version=opset,
        dynamo=False,
    )
    for module in (source.encoder, source.projector, source.main):
        module.eval()  # torch.onnx.export restores the wrappers' previous mode recursively
    return {"memory": memory_path, "decoder": decoder_path}
