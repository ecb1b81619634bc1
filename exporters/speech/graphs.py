"""Wrapper modules that turn a ``WhisperForConditionalGeneration`` into edgert's two graphs.

    encoder:  input_features [B, mels, frames]  (the fixed window: 30 s, 3000 frames)
              -> cross_k_i, cross_v_i [B, H, S, Dh]   (every decoder layer's cross K/V)
    decoder:  inputs_embeds [B, K, D], past_k_i, past_v_i [B, H, L, Dh], cross_k_i, cross_v_i
              -> logits [B, K, V], present_k_i, present_v_i [B, H, L + K, Dh]

The text families' contract, less the encoder mask: Whisper never masks its window (the
audio is padded with silence). Token embeddings stay outside the graph as for seq2seq; the
decoder adds its learned positions ``L .. L + K - 1`` itself, so one graph serves the
prompt (K tokens at L = 0) and every later step, and K drafted tokens verify in one call.
"""

from __future__ import annotations

from typing import Any

import torch

from edgert.exporters.seq2seq import graphs as seq2seq_graphs
from edgert.exporters.seq2seq.graphs import export_pair, layout
from edgert.plugins.families.speech.names import speech_io


def window_frames(model: Any) -> int:
    """Feature frames of the encoder's window: two per encoder position (the stride-2 conv)."""
    return 2 * int(model.config.max_source_positions)


class EncoderGraph(seq2seq_graphs.EncoderGraph):
    """The speech encoder on features, plus every decoder layer's cross-attention K/V."""

    def forward(self, input_features: torch.Tensor) -> tuple:
        return self.cross(self.encoder(input_features, return_dict=True).last_hidden_state)


class DecoderGraph(torch.nn.Module):
    """K new tokens over a self-attention cache of any length; cross K/V are inputs."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.n = layout(model).layers
        self.d_model = model.config.d_model

    def forward(self, inputs_embeds: torch.Tensor, *kv: torch.Tensor) -> tuple:
        from transformers.cache_utils import EncoderDecoderCache

        n = self.n
        past, cross = kv[: 2 * n], kv[2 * n :]
        legacy = tuple(
            (past[2 * i], past[2 * i + 1], cross[2 * i], cross[2 * i + 1]) for i in range(n)
        )
        cache = EncoderDecoderCache.from_legacy_cache(legacy)
        new, seen = inputs_embeds.shape[1], past[0].shape[2]
        positions = torch.arange(new) + seen
        batch, length = cross[0].shape[0], cross[0].shape[2]
        # The causal mask, built here from the dynamic lengths: the library's own mask code
        # traces the example's sizes into constants.
        keys = torch.arange(seen + new)
        causal = torch.where(
            keys[None, :] <= positions[:, None], 0.0, torch.finfo(torch.float32).min
        )
        mask = causal[None, None].expand(batch, 1, new, seen + new).to(inputs_embeds.dtype)
        # Cross K/V come from the cache; the library still wants encoder states for shapes.
        states = torch.zeros(batch, length, self.d_model, dtype=inputs_embeds.dtype)
        out = self.model.get_decoder()(
            inputs_embeds=inputs_embeds,
            attention_mask=mask,
            encoder_hidden_states=states,
            past_key_values=cache,
            use_cache=True,
            cache_position=positions,
            return_dict=True,
        )
        results = [self.model.proj_out(out.last_hidden_state)]
        for index in range(n):
            layer = out.past_key_values.self_attention_cache.layers[index]
            results += [layer.keys, layer.values]
        return tuple(results)


def export_graphs(model: Any, out_dir: Any, opset: int) -> dict[str, Any]:
    """Export encoder.onnx (fixed window) and decoder.onnx into ``out_dir``."""
    lay = layout(model)
    features = torch.randn(1, model.config.num_mel_bins, window_frames(model))
    return export_pair(
        model,
        out_dir,
        opset,
        speech_io(lay.layers),
        (EncoderGraph(model), {"input_features": (features, {0: "batch"})}),
        (DecoderGraph(model), {
            "inputs_embeds": (torch.randn(1, 3, lay.d_model), {0: "batch", 1: "new"}),
        }),
    )  # fmt: skip
