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
    cache buffers as ``past_*`` and the new rows out; a padded encoder takes a mask. The
    verify graph is the decoder at a fixed width of K new tokens: the same names."""
    lean = lean_t5_io(layers)
    outputs = [LOGITS, *cache_names(layers).new]
    return lean | {
        "encoder_inputs": [INPUTS_EMBEDS, "attention_mask"],
        "decoder_outputs": outputs,
        "verify_inputs": lean["decoder_inputs"],
        "verify_outputs": outputs,
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


def check_layout(layout: dict, decoder: object, where: object, heads: str = "heads") -> dict:
    """The manifest's ``layout`` if its numbers are positive integers and agree with the
    decoder session's own cache inputs (count, heads, head size); else a ``BundleError``
    naming the field, at load, not inside the first decoder call."""
    from edgert.errors import BundleError

    def refuse(what: str) -> BundleError:
        return BundleError(f"the manifest of {where}: {what}", hint="re-export the bundle")

    if not isinstance(layout, dict):
        raise refuse("layout is not an object")
    for key, value in layout.items():
        if type(value) is not int or not 0 < value < 1 << 31:
            raise refuse(f"layout.{key} is {value!r}; expected a positive integer")
    inputs = {i.name: i.shape for i in decoder.get_inputs()}  # type: ignore[attr-defined]
    listed = sorted(n for n in inputs if n.startswith("past_"))
    layers = layout.get("layers", 0)  # counted first: a damaged count could be 10^9 names
    if 2 * layers != len(listed) or sorted(past := cache_names(layers).past) != listed:
        raise refuse(f"layout.layers is {layout.get('layers')!r}, the decoder graph caches "
                     f"{len(listed) // 2} layers")  # fmt: skip
    shape = inputs[past[0]]
    for axis, key in ((1, heads), (3, "head_dim")):
        if isinstance(shape[axis], int) and shape[axis] != layout.get(key):
            raise refuse(
                f"layout.{key} is {layout.get(key)!r}, the decoder graph has {shape[axis]}"
            )
    return layout


def check_inputs(io: dict[str, list[str]], sessions: dict[str, object], where: object,
                 field: str) -> None:  # fmt: skip
    """Each session takes exactly the inputs ``io`` lists for it (``<role>_inputs``), or a
    ``BundleError`` at load naming the manifest ``field`` that chose ``io``: a manifest that
    describes other graphs than the bundle holds would fail inside the first call."""
    from edgert.errors import BundleError

    for role, session in sessions.items():
        given = sorted(i.name for i in session.get_inputs())  # type: ignore[attr-defined]
        expected = sorted(io[f"{role}_inputs"])
        if given != expected:
            raise BundleError(
                f"the manifest of {where}: {field} describes graphs where {role}.onnx takes "
                f"{', '.join(expected)}; it takes {', '.join(given)}",
                hint="re-export the bundle",
            )
