"""The ``cnn`` family: torch image classifiers exported to ONNX, run by ``Classifier``."""

from __future__ import annotations

from edgert.families import Family
from edgert.hookspecs import hookimpl

CNN = Family(
    name="cnn",
    runtime="edgert.plugins.families.cnn.runtime:Classifier",
    exporter="edgert.exporters.cnn.export:export_cnn",
    quantization="static-qdq",
    description="image classifiers (torch module or saved program) -> Classifier.classify",
)


@hookimpl
def register_families(register):
    """Register the CNN family."""
    register(CNN, source=__name__)
