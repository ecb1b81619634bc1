"""Model families: what a bundle's ``family`` field names, and how to build or run one.

Exporter and runtime are ``"module:attribute"`` strings, resolved only when used, so the
runtime never imports torch and a third-party family costs nothing until it is needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from edgert.errors import PluginError


@dataclass(frozen=True)
class Family:
    """A model family.

    Args:
        name: id stored in bundles ("cnn", "seq2seq", ...).
        runtime: ``"module:Class"`` built as ``Class(bundle, sessions)`` at load time.
        exporter: ``"module:function"`` called by ``edgert export``.
        quantization: default ``[export.quantization].method`` when a profile names none
            ("static-qdq" for CNNs, which have calibration images; "dynamic" for text).
        description: one line for ``edgert plugins list``.
    """

    name: str
    runtime: str
    exporter: str
    quantization: str = "static-qdq"
    description: str = ""

    def runtime_class(self) -> Any:
        """Import and return the runtime class."""
        return resolve(self.runtime, f"runtime of family {self.name!r}")

    def exporter_function(self) -> Any:
        """Import and return the exporter function (imports torch)."""
        return resolve(self.exporter, f"exporter of family {self.name!r}")


def resolve(target: str, what: str) -> Any:
    """Import ``"module:attribute"``, with an error naming ``what`` when that fails."""
    module_name, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except ModuleNotFoundError as exc:
        hint = (
            "exporting needs the export extra: pip install 'edgert[export]'"
            if exc.name in {"torch", "onnx", "onnxscript", "safetensors"}
            else None
        )
        raise PluginError(f"cannot import {what} ({target}): {exc}", hint=hint) from exc
    except AttributeError as exc:
        raise PluginError(f"{what}: {target} does not exist") from exc
