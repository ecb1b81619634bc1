"""The export pipeline: a family exporter makes the first ONNX artifact, then the steps
the device profile lists turn it into the final one, each in its own sub-directory.

Steps never modify their input, so a failed export can be inspected step by step
(``--keep-intermediate``) and a step can be retried alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from edgert.errors import ExportError
from edgert.profiles import check_steps

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.families import Family
    from edgert.profiles import DeviceProfile


@dataclass(frozen=True)
class Artifact:
    """An ONNX model file produced by a step."""

    path: Path
    precision: str  # fp32 | fp16 | int8
    opset: int


@dataclass
class ExportContext:
    """What steps may read: profile, data for calibration/validation, and a report to fill.

    Args:
        profile: the device profile being exported for.
        catalog: registries (providers for validation sessions).
        family: the model family.
        workdir: where steps write their sub-directories.
        reference: the source model as ``f(np.ndarray batch) -> np.ndarray outputs``.
        sample: validation inputs (also used by ``fix-shapes`` to check the batch).
        calibration: calibration inputs for static quantization, or None.
        eval_data: optional labelled ``(x, y)`` to report accuracy before and after.
        static_dims: dim_param -> value pinned by ``fix-shapes``.
    """

    profile: DeviceProfile
    catalog: Catalog
    family: Family
    workdir: Path
    reference: Callable[[np.ndarray], np.ndarray]
    sample: np.ndarray
    calibration: np.ndarray | None = None
    eval_data: tuple[np.ndarray, np.ndarray] | None = None
    static_dims: dict[str, int] = field(default_factory=dict)
    allow_fallback: bool | None = None
    report: dict[str, Any] = field(default_factory=lambda: {"steps": [], "validation": None})

    def step_dir(self, index: int, name: str) -> Path:
        """A fresh sub-directory for step ``index``."""
        path = self.workdir / f"{index:02d}-{name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def quantization_method(self) -> str:
        """The profile's method, or the family's default when the profile leaves it open."""
        method = self.profile.export.quantization.method
        return self.family.quantization if method == "family-default" else method


class ExportStep(Protocol):
    """An ONNX -> ONNX step registered through ``register_export_steps``."""

    name: ClassVar[str]

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Write a new model into ``out_dir`` and return it; never change ``artifact``."""
        ...


def run_steps(first: Artifact, ctx: ExportContext) -> Artifact:
    """Run the profile's steps in order, recording each in ``ctx.report``."""
    check_steps(ctx.profile)
    artifact = first
    for index, name in enumerate(ctx.profile.export.steps, start=1):
        step = ctx.catalog.export_steps.get(name)()
        started = time.perf_counter()
        try:
            artifact = step.run(artifact, ctx, ctx.step_dir(index, name))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"{type(exc).__name__}: {exc}",
                step=name,
                hint="rerun with EDGERT_DEBUG=1 for the traceback and --keep-intermediate DIR "
                "to inspect each step's output",
            ) from exc
        ctx.report["steps"].append(
            {
                "name": name,
                "seconds": round(time.perf_counter() - started, 3),
                "precision": artifact.precision,
                "bytes": artifact.path.stat().st_size,
            }
        )
    return artifact
