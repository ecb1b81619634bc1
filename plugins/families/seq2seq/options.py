"""Export options of the ``seq2seq`` family (no torch: ``edgert export`` builds flags)."""

from __future__ import annotations

from dataclasses import dataclass

from edgert.export import ExportOptions, flag, lines_of


@dataclass(frozen=True)
class Seq2SeqExport(ExportOptions):
    """Options of one encoder-decoder export (``edgert export`` flags)."""

    # source: a local Hugging Face directory or hub id
    revision: str | None = flag(None, "Hugging Face models: hub revision (branch, tag, commit).")
    validation_texts: tuple[str, ...] = flag(
        (), "Validation inputs, one per line.", parse=lines_of("validation text"),
        name="validation-text",
    )  # fmt: skip
    calibration_texts: tuple[str, ...] = flag(
        (), "int8 on static-shape profiles: a text file, one input per line.",
        parse=lines_of("calibration text"), name="calibration",
    )  # fmt: skip
    dictionary: tuple[str, ...] = flag(
        (), "A dictionary for input-guided decoding, one word per line, most frequent first "
        "[default: words.txt beside a local model].", parse=lines_of("dictionary"), name="words",
    )  # fmt: skip
