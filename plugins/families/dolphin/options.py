"""Export options of the ``dolphin`` family (no torch: ``edgert export`` builds flags)."""

from __future__ import annotations

from dataclasses import dataclass

from edgert.export import ExportOptions, flag


@dataclass(frozen=True)
class DolphinExport(ExportOptions):
    """Options of one decoder-decoder export (``edgert export`` flags)."""

    # source: a Dolphin folder or hub id, or a composition .toml
    revision: str | None = flag(None, "Hugging Face models: hub revision (branch, tag, commit).")
    max_chunks: int = flag(
        4, "Context windows one prompt may hold (--context-policy chunk) [default: 4].",
        parse=int,
    )  # fmt: skip
