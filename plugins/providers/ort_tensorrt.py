"""NVIDIA TensorRT (Jetson, data-centre GPUs) through ONNX Runtime's TensorRT provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class TensorRTOptions:
    """Options of ``TensorrtExecutionProvider``; engines are cached, building them is slow."""

    device_id: int = 0
    trt_fp16_enable: bool = True
    trt_int8_enable: bool = False
    trt_engine_cache_enable: bool = True
    trt_engine_cache_path: str = ""  # "" = ORT's default (the working directory)
    trt_max_workspace_size: int = 1 << 30


class TensorRTProvider(Provider):
    """``TensorrtExecutionProvider``."""

    name: ClassVar[str] = "ort-tensorrt"
    ort_name: ClassVar[str] = "TensorrtExecutionProvider"
    Options: ClassVar[type] = TensorRTOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "fp16", "int8-qdq", "dynamic-shapes", "static-shapes"}
    )
    device_class: ClassVar[str] = "gpu"
    install_hint: ClassVar[str] = (
        "install onnxruntime-gpu and TensorRT 10 (on Jetson: the JetPack onnxruntime-gpu wheel)"
    )


@hookimpl
def register_providers(register):
    """Register the TensorRT provider."""
    register(TensorRTProvider)
