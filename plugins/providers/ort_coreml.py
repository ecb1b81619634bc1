"""Apple CPU, GPU and Neural Engine through ONNX Runtime's CoreML provider (macOS/iOS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class CoreMLOptions:
    """Options of ``CoreMLExecutionProvider`` (ORT's key names in ``ort_key``)."""

    model_format: Literal["MLProgram", "NeuralNetwork"] = field(
        default="MLProgram", metadata={"ort_key": "ModelFormat"}
    )
    compute_units: Literal["ALL", "CPUAndNeuralEngine", "CPUAndGPU", "CPUOnly"] = field(
        default="ALL", metadata={"ort_key": "MLComputeUnits"}
    )
    require_static_input_shapes: bool = field(
        default=False, metadata={"ort_key": "RequireStaticInputShapes"}
    )
    model_cache_directory: str = field(default="", metadata={"ort_key": "ModelCacheDirectory"})


class CoreMLProvider(Provider):
    """``CoreMLExecutionProvider``."""

    name: ClassVar[str] = "ort-coreml"
    ort_name: ClassVar[str] = "CoreMLExecutionProvider"
    Options: ClassVar[type] = CoreMLOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "fp16", "static-shapes", "dynamic-shapes"}
    )
    device_class: ClassVar[str] = "npu"
    install_hint: ClassVar[str] = (
        "use the macOS onnxruntime wheel (pip install onnxruntime on macOS)"
    )


@hookimpl
def register_providers(register):
    """Register the CoreML provider."""
    register(CoreMLProvider)
