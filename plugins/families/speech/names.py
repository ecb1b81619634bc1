"""Input and output names of the speech family's graphs, for exporter and runtime.

The decoder keeps the text families' cache layout and names (``past_*``, ``present_*``,
``cross_*``), so the seq2seq decoding stack runs it unchanged; the encoder takes log-mel
features instead of token embeddings, and nothing masks them (Whisper's window is always
full: audio is padded with silence). No torch: the runtime imports this.
"""

from __future__ import annotations

from edgert.plugins.families.seq2seq.names import INPUTS_EMBEDS, LOGITS, cache_names

INPUT_FEATURES = "input_features"


def speech_io(layers: int) -> dict[str, list[str]]:
    """Graph I/O of a Whisper-class bundle: features -> cross K/V; one decoder graph with
    the self-attention cache, for the prompt (many tokens) and every later step."""
    kv = cache_names(layers)
    return {
        "encoder_inputs": [INPUT_FEATURES],
        "encoder_outputs": kv.cross,
        "decoder_inputs": [INPUTS_EMBEDS, *kv.past, *kv.cross],
        "decoder_outputs": [LOGITS, *kv.present],
    }
