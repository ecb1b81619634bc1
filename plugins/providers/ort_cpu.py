"""ONNX Runtime's default CPU provider: always there, runs every op, fp32 and int8."""

from __future__ import annotations

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
    # Only the precision's own rounding (``edgert.seq2seq.VERIFY_TOLERANCE``, measured here).
    verify_drift: ClassVar[tuple[float, float]] = (0.0, 0.0)

    def provider_options(self, options: CpuOptions) -> dict[str, str]:
        """The CPU provider takes one key, the arena switch."""
        return {"use_arena": "1" if options.use_arena else "0"}


@hookimpl
def register_providers(register):
    """Register the CPU provider."""
    register(CpuProvider)
