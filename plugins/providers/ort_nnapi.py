"""Android NNAPI (phone DSPs, GPUs and NPUs) through ONNX Runtime's NNAPI provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgert.hookspecs import hookimpl
from edgert.providers import Provider


@dataclass(frozen=True)
class NnapiOptions:
    """NNAPI flags; ORT reads each flag from the presence of its key."""

    use_fp16: bool = False  # NNAPI_FLAG_USE_FP16: relax fp32 to fp16
    use_nchw: bool = False  # NNAPI_FLAG_USE_NCHW
    cpu_disabled: bool = True  # NNAPI_FLAG_CPU_DISABLED: never use NNAPI's own CPU reference
    cpu_only: bool = False  # NNAPI_FLAG_CPU_ONLY: debugging only


class NnapiProvider(Provider):
    """``NnapiExecutionProvider``."""

    name: ClassVar[str] = "ort-nnapi"
    ort_name: ClassVar[str] = "NnapiExecutionProvider"
    Options: ClassVar[type] = NnapiOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"fp32", "fp16", "int8-qdq", "static-shapes"}
    )
    device_class: ClassVar[str] = "npu"
    install_hint: ClassVar[str] = "use the onnxruntime-android package on an Android device"

    def provider_options(self, options: NnapiOptions) -> dict[str, str]:
        """Set keys only for enabled flags: ORT treats a present key as on."""
        flags = {
            "NNAPI_FLAG_USE_FP16": options.use_fp16,
            "NNAPI_FLAG_USE_NCHW": options.use_nchw,
            "NNAPI_FLAG_CPU_DISABLED": options.cpu_disabled,
            "NNAPI_FLAG_CPU_ONLY": options.cpu_only,
        }
        return {key: "1" for key, on in flags.items() if on}


@hookimpl
def register_providers(register):
    """Register the NNAPI provider."""
    register(NnapiProvider)
