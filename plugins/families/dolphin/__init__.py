"""The ``dolphin`` family: decoder-decoder models, run by ``DolphinModel``."""

from __future__ import annotations

from edgert.families import Family
from edgert.hookspecs import hookimpl

DOLPHIN = Family(
    name="dolphin",
    runtime="edgert.plugins.families.dolphin.runtime:DolphinModel",
    exporter="edgert.exporters.dolphin.export:export_dolphin",
    quantization="dynamic",
    description="decoder-decoder models (a context encoder's memory feeds a main decoder) "
    "-> generate / stream over a long context",
)


@hookimpl
def register_families(register):
    """Register the dolphin family."""
    register(DOLPHIN, source=__name__)
