"""Export options of the ``cnn`` family (no torch: ``edgert export`` builds flags from them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgert.errors import ExportError
from edgert.export import ExportOptions, flag


def shape(value: str) -> tuple[int, ...]:
    """``1,3,224,224`` or ``1x3x224x224`` -> a tuple of ints."""
    try:
        return tuple(int(part) for part in value.replace("x", ",").split(","))
    except ValueError:
        raise ExportError(
            f"--input-shape {value!r} is not a shape like 1,3,224,224",
            hint="e.g. --input-shape 1,3,224,224",
        ) from None


CALIBRATION_HELP = "int8: images (a folder), .npy or .npz."
EVAL_HELP = ".npz with x, y: accuracy before and after, in the manifest."
LABELS_HELP = "One label per line."


@dataclass(frozen=True)
class CnnExport(ExportOptions):
    """Options of one classifier export (``edgert export`` flags)."""

    # source: package.module:factory | file.pt2 | file.pt | zoo:NAME
    input_shape: tuple[int, ...] | None = flag(
        None, "Input shape, e.g. 1,3,224,224 [default: the source's].", parse=shape
    )
    calibration: Path | None = flag(None, CALIBRATION_HELP, parse=Path)
    eval_data: Path | None = flag(None, EVAL_HELP, parse=Path)
    labels: Path | None = flag(None, LABELS_HELP, parse=Path)
