"""Validation of classifier bundles against the torch model.

Tolerances by precision:

- fp32: identical top-1 on every validation input and max abs diff <= 1e-3 x output range;
- fp16: top-1 agreement >= 99%;
- int8: top-1 agreement >= 90% (the accuracy drop on labelled data is reported).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgert.errors import ValidationMismatchError
from edgert.export import Artifact, ExportContext
from edgert.exporters.validation import validation_session

MIN_AGREEMENT = {"fp32": 1.0, "fp16": 0.99, "int8": 0.90}
FP32_RELATIVE_ATOL = 1e-3


def validate_classifier(artifacts: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
    """Compare outputs and top-1 of the exported graph with the source model.

    ``ctx.extra`` holds ``reference`` (torch model as a numpy function), ``sample``
    (validation inputs) and optionally ``eval_data`` (labelled ``(x, y)``).
    """
    artifact = artifacts["model"]
    run, where = _runner(artifact, ctx)
    eval_data = ctx.extra.get("eval_data")
    x = eval_data[0] if eval_data is not None else ctx.extra["sample"]
    expected, got = ctx.extra["reference"](x), run(x)
    diff = float(np.max(np.abs(expected - got)))
    scale = float(max(1.0, np.max(np.abs(expected))))
    result: dict[str, Any] = {
        "inputs": len(x),
        "ran_on": where,
        "max_abs_diff": diff,
        "top1_agreement": float(np.mean(expected.argmax(-1) == got.argmax(-1))),
        "min_top1_agreement": MIN_AGREEMENT[artifact.precision],
    }
    if eval_data is not None:
        labels = eval_data[1]
        result["accuracy_source"] = float(np.mean(expected.argmax(-1) == labels))
        result["accuracy_exported"] = float(np.mean(got.argmax(-1) == labels))
        result["accuracy_drop"] = result["accuracy_source"] - result["accuracy_exported"]
    _check(result, artifact.precision, diff, scale)
    return result


def _check(result: dict[str, Any], precision: str, diff: float, scale: float) -> None:
    if result["top1_agreement"] < result["min_top1_agreement"]:
        raise ValidationMismatchError(
            f"{precision} graph agrees with the source model on "
            f"{result['top1_agreement']:.1%} of {result['inputs']} inputs (needs "
            f"{result['min_top1_agreement']:.0%}; max abs diff {diff:.3g})",
            step="validate",
            hint="use more representative --calibration data, keep sensitive ops in float "
            "([export.quantization].keep_float_ops), or export at higher precision",
        )
    if precision == "fp32" and diff > FP32_RELATIVE_ATOL * scale:
        raise ValidationMismatchError(
            f"fp32 graph differs from the source model by {diff:.3g} "
            f"(tolerance {FP32_RELATIVE_ATOL * scale:.3g})",
            step="validate",
            hint="report this with the model; rerun with --keep-intermediate to find the step",
        )


def _runner(artifact: Artifact, ctx: ExportContext) -> tuple[Any, str]:
    info, where = validation_session(artifact.path, ctx)
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
