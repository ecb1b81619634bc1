"""NVIDIA GPUs through ONNX Runtime's CUDA provider (``pip install onnxruntime-gpu``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class CudaOptions:
    """Options of ``CUDAExecutionProvider`` (names as ONNX Runtime spells them)."""

    device_id: int = 0
    gpu_mem_limit: int | None = None  # bytes; unset = no limit
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = "EXHAUSTIVE"
    do_copy_in_default_stream: bool = True
    enable_cuda_graph: bool = False  # needs static shapes and IO binding


class CudaProvider(Provider):
    """``CUDAExecutionProvider``."""

    name: ClassVar[str] = "ort-cuda"
    ort_name: ClassVar[str] = "CUDAExecutionProvider"
    Options: ClassVar[type] = CudaOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "fp16", "int8-qdq", "dynamic-shapes", "static-shapes", "if-op"}
    )
    device_class: ClassVar[str] = "gpu"
    install_hint: ClassVar[str] = (
        "install the GPU build: pip uninstall onnxruntime && pip install "
        "'onnxruntime-gpu[cuda,cudnn]' (needs an NVIDIA driver for the CUDA version that "
        "onnxruntime-gpu release is built for)"
    )
    # Measured on an H100 (``benchmarks/verify_drift.py --run-device nvidia-cuda-fp16``):
    # up to 0.2% of a row's largest |logit| for fp16 bundles, and 0.1% for fp32 ones, whose
    # matrix products run in TF32 by default (10x the CPU's fp32 bound). The bound is 5x
    # the fp16 drift, and at least 0.1. int8 on CUDA is not measured.
    verify_drift: ClassVar[Mapping[str, tuple[float, float]]] = {
        "fp32": (0.1, 0.01),
        "fp16": (0.1, 0.01),
    }


@hookimpl
def register_providers(register):
    """Register the CUDA provider."""
    register(CudaProvider)
