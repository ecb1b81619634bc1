"""Qualcomm Hexagon NPU (HTP) through the QNN execution provider.

``onnxruntime-qnn`` is a plugin library for ONNX Runtime >= 1.24.2: it is registered once
per process and attached to a session through its EP device. On Linux x86-64 the wheel
ships the HTP backend as a simulator: correct results, meaningless timings. That is how NPU
bundles are validated off-device; ``simulated()`` says so and ``--device auto`` never picks it.
"""

from __future__ import annotations

import platform
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from edgert.hookspecs import hookimpl
from edgert.providers import Provider

_LOCK = threading.Lock()
_ELF_X86_64 = 62

PerformanceMode = Literal[
    "burst",
    "balanced",
    "default",
    "high_performance",
    "high_power_saver",
    "low_balanced",
    "low_power_saver",
    "power_saver",
    "extreme_power_saver",
    "sustained_high_performance",
]


@dataclass(frozen=True)
class QnnOptions:
    """QNN provider options (ONNX Runtime's names). ORT only warns on bad values, so the
    choices are checked here."""

    backend: Literal["htp", "cpu", "gpu"] = "htp"  # htp = Hexagon NPU
    htp_performance_mode: PerformanceMode = "burst"
    htp_graph_finalization_optimization_mode: Literal["0", "1", "2", "3"] = "3"
    soc_model: str = ""  # numeric id or chip name (e.g. "SM8650"); needed for fp16 on HTP
    htp_arch: str = ""  # e.g. "75"; "" = backend default
    enable_htp_fp16_precision: bool = False  # needs soc_model


def _import_qnn() -> Any:
    try:
        import onnxruntime_qnn
    except ImportError:
        return None
    return onnxruntime_qnn


def register_library() -> bool:
    """Register the QNN plugin library once per process; False when it is not installed.

    Registering twice fails in ORT, and unregistering with live sessions crashes, so it is
    registered on first use and kept for the life of the process.
    """
    qnn = _import_qnn()
    if qnn is None:
        return False
    import onnxruntime as ort

    if not hasattr(ort, "register_execution_provider_library"):
        return False
    with _LOCK:
        name = qnn.get_ep_name()
        if not any(d.ep_name == name for d in ort.get_ep_devices()):
            ort.register_execution_provider_library(name, qnn.get_library_path())
    return True


class QnnProvider(Provider):
    """``QNNExecutionProvider`` from the ``onnxruntime-qnn`` plugin library."""

    name: ClassVar[str] = "ort-qnn"
    ort_name: ClassVar[str] = "QNNExecutionProvider"
    Options: ClassVar[type] = QnnOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"int8-qdq", "int16-qdq", "static-shapes"})
    device_class: ClassVar[str] = "npu"
    install_hint: ClassVar[str] = "pip install 'edgert[qnn]' (the onnxruntime-qnn package)"

    def is_available(self) -> bool:
        """Available when the plugin library registers and exposes a device."""
        return register_library() and bool(self._devices())

    def unavailable_reason(self) -> str:
        """Say which part is missing."""
        if _import_qnn() is None:
            return "the onnxruntime-qnn package is not installed"
        return "onnxruntime-qnn is installed but exposes no QNN device on this host"

    def simulated(self) -> bool:
        """True when the HTP backend library is an x86-64 build (the simulator)."""
        qnn = _import_qnn()
        if qnn is None or platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        path = qnn.get_qnn_htp_path()
        if path.endswith(".dll"):
            return True
        with open(path, "rb") as handle:
            header = handle.read(20)
        return int.from_bytes(header[18:20], "little") == _ELF_X86_64

    def _devices(self) -> list[Any]:
        import onnxruntime as ort

        return [d for d in ort.get_ep_devices() if d.ep_name == self.ort_name]

    def provider_options(self, options: QnnOptions) -> dict[str, str]:
        """Backend library path plus the options that are set."""
        qnn = _import_qnn()
        backend = {
            "htp": qnn.get_qnn_htp_path,
            "cpu": qnn.get_qnn_cpu_path,
            "gpu": qnn.get_qnn_gpu_path,
        }
        out = {"backend_path": backend[options.backend]()}
        out.update(
            (key, value)
            for key, value in super().provider_options(options).items()
            if key != "backend" and not (key == "enable_htp_fp16_precision" and value == "0")
        )
        return out

    def attach(self, session_options: Any, options: QnnOptions) -> None:
        """Plugin-library providers attach through their devices, not ``providers=``."""
        session_options.add_provider_for_devices(self._devices(), self.provider_options(options))
        return None


@hookimpl
def register_providers(register):
    """Register the QNN provider."""
    register(QnnProvider)
