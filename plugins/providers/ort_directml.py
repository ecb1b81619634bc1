"""Any DirectX 12 GPU (or NPU) on Windows through ONNX Runtime's DirectML provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class DirectMLOptions:
    """Options of ``DmlExecutionProvider``."""

    device_id: int = 0
    performance_preference: Literal["default", "high_performance", "minimum_power"] = "default"
    device_filter: Literal["gpu", "npu", "any"] = "gpu"


class DirectMLProvider(Provider):
    """``DmlExecutionProvider``."""

    name: ClassVar[str] = "ort-directml"
    ort_name: ClassVar[str] = "DmlExecutionProvider"
    Options: ClassVar[type] = DirectMLOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "fp16", "int8-qdq", "static-shapes", "dynamic-shapes"}
    )
    device_class: ClassVar[str] = "gpu"
    install_hint: ClassVar[str] = (
        "on Windows: pip uninstall onnxruntime && pip install onnxruntime-directml"
    )


@hookimpl
def register_providers(register):
    """Register the DirectML provider."""
    register(DirectMLProvider)
