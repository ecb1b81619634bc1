"""ONNX Runtime's default CPU provider: always there, runs every op, fp32 and int8."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class CpuOptions:
    """The CPU provider's one option; threads and spinning live in ``[runtime]``."""

    use_arena: bool = True  # ORT's memory arena: faster allocation, higher peak RSS


class CpuProvider(Provider):
    """``CPUExecutionProvider``."""

    name: ClassVar[str] = "ort-cpu"
    ort_name: ClassVar[str] = "CPUExecutionProvider"
    Options: ClassVar[type] = CpuOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "int8", "int8-qdq", "int4", "dynamic-shapes", "static-shapes", "if-op"}
    )
    device_class: ClassVar[str] = "cpu"
    # ``benchmarks/verify_drift.py`` on the speller and random-weight T5 models: fp32 moves
    # by ~1e-5 (summation order); weight-only int8 with int8 compute by up to 2.5% of a
    # row's largest |logit| (0.19 on the speller), int4 by 1.0%: about 4x that, and at
    # least 0.5. fp16 is not listed: CPUs with fp16 arithmetic (Arm) were not measured.
    verify_drift: ClassVar[Mapping[str, tuple[float, float]]] = {
        "fp32": (1e-3, 1e-4),
        "int8": (0.5, 0.1),
        "int4": (0.5, 0.1),
    }

    def provider_options(self, options: CpuOptions) -> dict[str, str]:
        """The CPU provider takes one key, the arena switch."""
        return {"use_arena": "1" if options.use_arena else "0"}


@hookimpl
def register_providers(register):
    """Register the CPU provider."""
    register(CpuProvider)
