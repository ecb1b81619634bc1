"""The ``dolphin`` family: decoder-decoder models, run by ``DolphinModel``.

Runtime and commands live here (no torch); the exporter is ``edgert.exporters.dolphin``.
"""

from __future__ import annotations

from pathlib import Path

from edgert.families import Family
from edgert.hookspecs import hookimpl
from edgert.plugins.families.dolphin.options import DolphinExport
from edgert.plugins.families.seq2seq import model_type


def detect(source: str) -> bool:
    """A composition ``.toml``, or a Hugging Face folder whose model type is ``dolphin``."""
    folder = Path(source)
    return folder.suffix == ".toml" or model_type(folder) == "dolphin"


DOLPHIN = Family(
    name="dolphin",
    runtime="edgert.plugins.families.dolphin.runtime:DolphinModel",
    exporter="edgert.exporters.dolphin.export:export_dolphin",
    options=DolphinExport,
    detect=detect,
    commands="edgert.plugins.families.dolphin.commands:COMMANDS",
    quantization="dynamic",
    description="decoder-decoder models (a context encoder's memory feeds a main decoder) "
    "-> generate / stream over a long context",
)


@hookimpl
def register_families(register):
    """Register the dolphin family."""
    register(DOLPHIN, source=__name__)
