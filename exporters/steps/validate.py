"""``validate`` (always last): the exported graph against its source model.

Runs on the profile's own provider when it is available here (QNN HTP simulator included,
CPU fallback disabled, so an NPU bundle is proven to run wholly on the NPU graph), else on
CPU, and records which. Tolerances by precision:

- fp32: identical top-1 on every validation input and max abs diff <= 1e-3 x output range;
- fp16: top-1 agreement >= 99%;
- int8: top-1 agreement >= 90% (the accuracy drop on labelled data is reported).
A graph outside its tolerance fails the export: a bundle that loads is a bundle that matches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgert.errors import ValidationMismatchError
from edgert.exporters.pipeline import Artifact, ExportContext
from edgert.providers import create_session

MIN_AGREEMENT = {"fp32": 1.0, "fp16": 0.99, "int8": 0.90}
FP32_RELATIVE_ATOL = 1e-3


class Validate:
    """Compare outputs and top-1 with the source model; write results to the report."""

    name: ClassVar[str] = "validate"

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Validate and pass ``artifact`` through unchanged."""
        run, where = self._runner(artifact, ctx)
        x = ctx.eval_data[0] if ctx.eval_data is not None else ctx.sample
        expected, got = ctx.reference(x), run(x)
        diff = float(np.max(np.abs(expected - got)))
        scale = float(max(1.0, np.max(np.abs(expected))))
        agreement = float(np.mean(expected.argmax(-1) == got.argmax(-1)))
        result: dict[str, Any] = {
            "inputs": len(x),
            "ran_on": where,
            "max_abs_diff": diff,
            "top1_agreement": agreement,
            "min_top1_agreement": MIN_AGREEMENT[artifact.precision],
        }
        if ctx.eval_data is not None:
            labels = ctx.eval_data[1]
            result["accuracy_source"] = float(np.mean(expected.argmax(-1) == labels))
            result["accuracy_exported"] = float(np.mean(got.argmax(-1) == labels))
            result["accuracy_drop"] = result["accuracy_source"] - result["accuracy_exported"]
        ctx.report["validation"] = result
        self._check(result, artifact.precision, diff, scale)
        return artifact

    def _check(self, result: dict[str, Any], precision: str, diff: float, scale: float) -> None:
        if result["top1_agreement"] < result["min_top1_agreement"]:
            raise ValidationMismatchError(
                f"{precision} graph agrees with the source model on "
                f"{result['top1_agreement']:.1%} of {result['inputs']} inputs (needs "
                f"{result['min_top1_agreement']:.0%}; max abs diff {diff:.3g})",
                step=self.name,
                hint="use more representative --calibration data, keep sensitive ops in float "
                "([export.quantization].keep_float_ops), or export at higher precision",
            )
        if precision == "fp32" and diff > FP32_RELATIVE_ATOL * scale:
            raise ValidationMismatchError(
                f"fp32 graph differs from the source model by {diff:.3g} "
                f"(tolerance {FP32_RELATIVE_ATOL * scale:.3g})",
                step=self.name,
                hint="report this with the model; rerun with --keep-intermediate to find the step",
            )

    def _runner(self, artifact: Artifact, ctx: ExportContext) -> tuple[Any, str]:
        profile = ctx.profile
        primary = ctx.catalog.providers.get(profile.runtime.providers[0])()
        note = ""
        if not primary.is_available():
            runtime = dataclasses.replace(
                profile.runtime, providers=("ort-cpu",), allow_fallback=False
            )
            profile = dataclasses.replace(profile, runtime=runtime)
            note = f" ({primary.name} unavailable here)"
        info = create_session(
            artifact.path, profile, ctx.catalog, allow_fallback=ctx.allow_fallback
        )
        where = info.active + (" (simulated)" if info.simulated else "") + note
        graph_input = info.session.get_inputs()[0]
        name, batch = graph_input.name, graph_input.shape[0]
        output = [info.session.get_outputs()[0].name]

        def run(x: np.ndarray) -> np.ndarray:
            x = np.ascontiguousarray(x, np.float32)
            if not isinstance(batch, int):
                return info.session.run(output, {name: x})[0]
            outs = []
            for i in range(0, len(x), batch):
                chunk = x[i : i + batch]
                pad = batch - len(chunk)
                if pad:
                    chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
                outs.append(info.session.run(output, {name: chunk})[0][: batch - pad])
            return np.concatenate(outs)

        return run, where
