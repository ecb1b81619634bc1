"""XNNPACK: optimized Arm/x86 CPU kernels (mobile builds of ONNX Runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class XnnpackOptions:
    """Options of ``XnnpackExecutionProvider``."""

    intra_op_num_threads: int = 1  # XNNPACK's own pool; keep ORT's intra-op threads at 1


class XnnpackProvider(Provider):
    """``XnnpackExecutionProvider``."""

    name: ClassVar[str] = "ort-xnnpack"
    ort_name: ClassVar[str] = "XnnpackExecutionProvider"
    Options: ClassVar[type] = XnnpackOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "int8-qdq", "static-shapes", "dynamic-shapes"}
    )
    device_class: ClassVar[str] = "cpu"
    install_hint: ClassVar[str] = (
        "use an onnxruntime build with XNNPACK (onnxruntime-android, or build with --use_xnnpack)"
    )


@hookimpl
def register_providers(register):
    """Register the XNNPACK provider."""
    register(XnnpackProvider)
