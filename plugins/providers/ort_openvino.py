"""Intel CPUs, GPUs and NPUs through ONNX Runtime's OpenVINO provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class OpenVINOOptions:
    """Options of ``OpenVINOExecutionProvider``. The NPU needs static shapes."""

    device_type: str = "NPU"  # CPU | GPU | NPU | AUTO:NPU,CPU ...
    precision: Literal["FP32", "FP16", "ACCURACY", ""] = ""  # "" = the device's default
    num_of_threads: int | None = None
    cache_dir: str = ""  # compiled-blob cache; "" = none
    enable_qdq_optimizer: bool = False  # NPU: strip QDQ pairs OpenVINO does not need


class OpenVINOProvider(Provider):
    """``OpenVINOExecutionProvider``."""

    name: ClassVar[str] = "ort-openvino"
    ort_name: ClassVar[str] = "OpenVINOExecutionProvider"
    Options: ClassVar[type] = OpenVINOOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "fp16", "int8-qdq", "static-shapes", "dynamic-shapes"}
    )
    device_class: ClassVar[str] = "npu"
    install_hint: ClassVar[str] = (
        "pip uninstall onnxruntime && pip install onnxruntime-openvino "
        "(plus the Intel NPU driver for device_type NPU)"
    )


@hookimpl
def register_providers(register):
    """Register the OpenVINO provider."""
    register(OpenVINOProvider)
