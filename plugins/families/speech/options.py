"""Export options of the ``speech`` family (no torch: ``edgert export`` builds flags)."""

from __future__ import annotations

from dataclasses import dataclass

from edgert.export import ExportOptions, flag, lines_of


@dataclass(frozen=True)
class SpeechExport(ExportOptions):
    """Options of one Whisper-class export (``edgert export`` flags)."""

    # source: a local Hugging Face folder (WhisperForConditionalGeneration) or a hub id
    revision: str | None = flag(None, "Hugging Face models: hub revision (branch, tag, commit).")
    validation_audio: tuple[str, ...] = flag(
        (), "Validation audio: a text file naming WAV/FLAC files, one per line "
        "[default: seeded speech-like signals].", parse=lines_of("validation audio"),
        name="validation-audio",
    )  # fmt: skip
