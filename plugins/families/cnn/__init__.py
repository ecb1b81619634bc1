"""The ``cnn`` family: torch image classifiers exported to ONNX, run by ``Classifier``.

Runtime and commands live here (no torch); the exporter is ``edgert.exporters.cnn``.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgert.families import BuiltinModel, Family
from edgert.hookspecs import hookimpl
from edgert.plugins.families.cnn.options import CnnExport

TORCH_FILES = (".pt2", ".pt", ".ts", ".torchscript", ".pth", ".pkl")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def detect(source: str) -> bool:
    """A saved torch program or a ``package.module:factory``."""
    path = Path(source)
    if path.suffix in TORCH_FILES:
        return True
    return bool(_FACTORY.match(source)) and not path.exists()


CNN = Family(
    name="cnn",
    runtime="edgert.plugins.families.cnn.runtime:Classifier",
    exporter="edgert.exporters.cnn.export:export_cnn",
    options=CnnExport,
    detect=detect,
    commands="edgert.plugins.families.cnn.commands:COMMANDS",
    quantization="static-qdq",
    description="image classifiers (torch module or saved program) -> Classifier.classify",
)

MODELS = (
    BuiltinModel(
        "digits",
        "cnn",
        "edgert.exporters.zoo.digits:digits_cnn",
        description="8x8 handwritten digits, a 5k-parameter CNN",
    ),
    BuiltinModel(
        "mobilenet-v3-small",
        "cnn",
        "edgert.exporters.zoo.mobilenet_v3:mobilenet_v3_small",
        description="MobileNetV3-Small, ImageNet classes (torchvision weights)",
    ),
)


@hookimpl
def register_families(register):
    """Register the CNN family."""
    register(CNN, source=__name__)


@hookimpl
def register_models(register):
    """The classifiers that ship with edgert."""
    for model in MODELS:
        register(model, source=__name__)
