"""The ``speech`` family: Whisper-class encoder-decoders, run by ``SpeechModel``.

Written against the family interface alone (``edgert.families``): registration here,
runtime, rules, front-end and commands beside it (no torch), the exporter in
``edgert.exporters.speech``. The decoder is the seq2seq family's graph contract, so every
decoding plugin runs it; Whisper's own rules (prompt, suppressed tokens, timestamps,
30 s windows) are this family's.
"""

from __future__ import annotations

from pathlib import Path

from edgert.families import BuiltinModel, Family
from edgert.hookspecs import hookimpl
from edgert.plugins.families.seq2seq import looks_like_hub_id, model_type
from edgert.plugins.families.speech.options import SpeechExport

AUDIO_MODEL_TYPES = frozenset({"whisper"})


def detect(source: str) -> bool:
    """A Hugging Face folder whose model type is a speech encoder-decoder's, or a hub id
    naming Whisper."""
    if (Path(source) / "config.json").is_file():
        return model_type(Path(source)) in AUDIO_MODEL_TYPES
    return looks_like_hub_id(source) and "whisper" in source.lower()


SPEECH = Family(
    name="speech",
    runtime="edgert.plugins.families.speech.runtime:SpeechModel",
    exporter="edgert.exporters.speech.export:export_speech",
    options=SpeechExport,
    detect=detect,
    commands="edgert.plugins.families.speech.commands:COMMANDS",
    quantization="dynamic",
    description="speech encoder-decoders (Whisper) -> transcribe with timestamps",
)


COMMANDS_MODEL = BuiltinModel(
    "commands",
    "speech",
    "edgert.exporters.zoo:commands",
    folder=True,
    description="spoken commands and numbers, a tiny Whisper trained on synthesized speech",
)


@hookimpl
def register_families(register):
    """Register the speech family."""
    register(SPEECH, source=__name__)


@hookimpl
def register_models(register):
    """Register the embedded speech model."""
    register(COMMANDS_MODEL, source=__name__)
