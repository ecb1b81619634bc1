"""Where a torch classifier comes from: ``package.module:factory``, a saved
``torch.export`` program (``.pt2``) or a TorchScript file, or a built-in ``zoo:`` name.

Nothing here unpickles arbitrary objects: ``.pt2`` goes through ``torch.export.load`` and
TorchScript through ``torch.jit.load``; plain pickled modules (``torch.save(model)``) are
refused because loading them runs arbitrary code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgert.errors import ExportError


@dataclass
class TorchSource:
    """A loaded torch model plus what its defining module says about it."""

    model: Any
    spec: str
    input_shape: tuple[int, ...] | None = None
    labels: tuple[str, ...] | None = None
    module: Any = None  # the defining module, for calibration_data() / eval_data()
    static_batch: bool = False  # a torch.export program is specialised to its example batch


def load_source(spec: str) -> TorchSource:
    """Load a torch classifier from ``spec`` (see module docstring)."""
    if spec.startswith("zoo:"):
        from edgert.catalog import get_catalog

        model = get_catalog().models.get(spec.removeprefix("zoo:"))  # the one catalog
        return _from_factory(model.locate(), spec)
    path = Path(spec)
    if path.suffix in (".pt2", ".pt", ".ts", ".torchscript", ".pth", ".pkl"):
        return _from_file(path)
    if ":" in spec and not path.exists():
        return _from_factory(spec, spec)
    raise ExportError(
        f"cannot tell what kind of model source {spec!r} is",
        hint="pass package.module:factory, a .pt2 (torch.export.save) or .pt TorchScript "
        "file, or zoo:digits",
    )


def _from_factory(target: str, spec: str) -> TorchSource:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ExportError(
            f"cannot import {module_name!r} for model source {spec!r}: {exc}",
            hint="check the module path, or run from the folder that contains the package",
        ) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ExportError(f"{module_name} has no callable {attribute!r} (from {spec!r})")
    model = factory()
    return TorchSource(
        model=model.eval(),
        spec=spec,
        input_shape=tuple(getattr(module, "INPUT_SHAPE", ())) or None,
        labels=tuple(getattr(module, "LABELS", ())) or None,
        module=module,
    )


def _from_file(path: Path) -> TorchSource:
    import torch

    if path.suffix in (".pth", ".pkl"):
        raise ExportError(
            f"refusing to unpickle {path}: pickled modules run arbitrary code when loaded",
            hint="save the model with torch.export.save(...) (.pt2) or TorchScript, or pass "
            "package.module:factory that loads safetensors weights",
        )
    if not path.is_file():
        raise ExportError(f"model file not found: {path}", hint="check the path")
    if path.suffix == ".pt2":
        try:
            program = torch.export.load(str(path))
        except Exception as exc:
            raise ExportError(f"{path} is not a torch.export program: {exc}") from exc
        return TorchSource(model=_Frozen(program.module()), spec=str(path), static_batch=True)
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ExportError(f"{path} is not a TorchScript file: {exc}") from exc
    return TorchSource(model=model.eval(), spec=str(path))


def _frozen_class() -> type:
    import torch

    class Frozen(torch.nn.Module):
        """Wraps a ``torch.export`` module, whose ``train()``/``eval()`` raise: the ONNX
        exporter toggles modes, and an exported program is already in inference form."""

        def __init__(self, module: Any) -> None:
            super().__init__()
            self.inner = module

        def train(self, mode: bool = True) -> Frozen:
            return self

        def forward(self, *args: Any) -> Any:
            return self.inner(*args)

    return Frozen


def _Frozen(module: Any) -> Any:
    return _frozen_class()(module)
