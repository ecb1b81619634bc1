"""Export options of the ``ofa`` family (no torch: ``edgert export`` builds flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgert.errors import ExportError
from edgert.export import ExportOptions, flag
from edgert.plugins.families.cnn.options import CALIBRATION_HELP, EVAL_HELP, LABELS_HELP


def budget(value: str) -> float:
    """``8ms``, ``8`` or ``0.5s`` -> milliseconds."""
    text = value.strip().lower().replace(" ", "")
    scale = 1000.0 if text.endswith("s") and not text.endswith("ms") else 1.0
    try:
        return float(text.removesuffix("ms").removesuffix("s")) * scale
    except ValueError:
        raise ExportError(
            f"--latency-budget {value!r} is not a latency like 8ms or 0.5s",
            hint="e.g. --latency-budget 8ms",
        ) from None


@dataclass(frozen=True)
class OfaExport(ExportOptions):
    """Options of one OFA subnet export (``edgert export ofa:...`` flags).

    Exactly one of ``subnet`` and ``latency_budget_ms`` is given.
    """

    # source: ofa:<net id> | ofa:<spec.json>
    resolution: int = flag(224, "Input size [default: 224].", parse=int)
    subnet: str | None = flag(None, 'Subnet config as JSON, e.g. \'{"ks": 3, "e": 4, "d": 2}\'.')
    latency_budget_ms: float | None = flag(
        None, "Search a subnet within e.g. 8ms.", parse=budget, name="latency-budget"
    )
    latency_table: Path | None = flag(None, "From edgert ofa table.", parse=Path)
    force_table: bool = flag(False, "Use a table measured for another target.")
    accuracy_predictor: str | None = flag(None, "module:function(config, resolution) -> score.")
    checkpoint: Path | None = flag(None, "Supernet weights file.", parse=Path)
    sha256: str | None = flag(None, "Trusted hash of the published weights to download.")
    calibration: Path | None = flag(None, CALIBRATION_HELP + " Also recalibrates BN.", parse=Path)
    eval_data: Path | None = flag(None, EVAL_HELP, parse=Path)
    labels: Path | None = flag(None, LABELS_HELP, parse=Path)
    # search settings (budget filled in): Python API only
    evolution: Any = field(default=None, metadata={"cli": False})
