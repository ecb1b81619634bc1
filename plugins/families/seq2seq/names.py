"""Input and output names of the text families' decoder graphs, for exporter and runtime.

The exporter names the graphs' tensors with these and the runtime feeds and reads them by
the same names, so a renamed cache tensor is one change here, not a silent mismatch
between a bundle and the code that runs it. No torch: the runtime imports this.
The decoder-decoder family uses the same cache layout and names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

INPUTS_EMBEDS = "inputs_embeds"
LOGITS = "logits"


@dataclass(frozen=True)
class CacheNames:
    """Names of the key/value cache tensors of a decoder with ``layers`` layers, in the
    order the graphs list them (layer by layer, key before value)."""

    layers: int

    @functools.cached_property
    def pairs(self) -> tuple[str, ...]:
        return tuple(f"{kind}_{i}" for i in range(self.layers) for kind in ("k", "v"))

    @functools.cached_property
    def past(self) -> list[str]:
        """Decoder inputs: the self-attention cache so far."""
        return [f"past_{p}" for p in self.pairs]

    @functools.cached_property
    def present(self) -> list[str]:
        """Decoder outputs (dynamic graphs): the whole self-attention cache, new rows included."""
        return [f"present_{p}" for p in self.pairs]

    @functools.cached_property
    def new(self) -> list[str]:
        """Decoder outputs (static graphs): the one new row per layer, written into a
        fixed-size buffer by the runtime."""
        return [f"new_{p}" for p in self.pairs]

    @functools.cached_property
    def cross(self) -> list[str]:
        """Encoder outputs and decoder inputs: cross-attention keys and values, computed
        once per input."""
        return [f"cross_{p}" for p in self.pairs]


@functools.cache
def cache_names(layers: int) -> CacheNames:
    """The (shared) ``CacheNames`` for ``layers`` decoder layers."""
    return CacheNames(layers)


def encoder_decoder_io(layers: int) -> dict[str, list[str]]:
    """Graph I/O of the dynamic encoder-decoder bundles (BART, Marian, T5 with masks)."""
    kv = cache_names(layers)
    return {
        "encoder_inputs": [INPUTS_EMBEDS, "attention_mask"],
        "encoder_outputs": kv.cross,
        "decoder_inputs": [INPUTS_EMBEDS, "encoder_attention_mask", *kv.past, *kv.cross],
        "decoder_outputs": [LOGITS, *kv.present],
    }


def lean_t5_io(layers: int) -> dict[str, list[str]]:
    """Graph I/O of the lean T5 bundles: position biases and masks are inputs."""
    kv = cache_names(layers)
    return {
        "encoder_inputs": [INPUTS_EMBEDS, "attention_bias"],
        "encoder_outputs": kv.cross,
        "decoder_inputs": [INPUTS_EMBEDS, "self_bias", "cross_bias", *kv.past, *kv.cross],
        "decoder_outputs": [LOGITS, *kv.present],
    }


def static_t5_io(layers: int) -> dict[str, list[str]]:
    """Graph I/O of the static (NPU) T5 bundles: the lean decoder's inputs, with fixed-size
    cache buffers as ``past_*`` and the new rows out; a padded encoder takes a mask."""
    return lean_t5_io(layers) | {
        "encoder_inputs": [INPUTS_EMBEDS, "attention_mask"],
        "decoder_outputs": [LOGITS, *cache_names(layers).new],
    }


def decoder_decoder_io(layers: int) -> dict[str, list[str]]:
    """Graph I/O of the dynamic decoder-decoder bundles (context memory + main decoder)."""
    kv = cache_names(layers)
    return {
        "memory_inputs": ["input_ids"],
        "memory_outputs": ["memory"],
        "decoder_inputs": [INPUTS_EMBEDS, *kv.past],
        "decoder_outputs": [LOGITS, *kv.present],
    }


def static_decoder_decoder_io(layers: int) -> dict[str, list[str]]:
    """Graph I/O of the static (NPU) decoder-decoder bundles."""
    kv = cache_names(layers)
    return {
        "memory_inputs": ["input_ids", "attention_mask", "position_ids"],
        "memory_outputs": ["memory"],
        "decoder_inputs": [INPUTS_EMBEDS, "attention_mask", "position_ids", *kv.past],
        "decoder_outputs": [LOGITS, *kv.new],
    }
