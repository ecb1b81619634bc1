"""Exporter of the ``cnn`` family: torch image classifier -> verified bundle.

torch -> ONNX (dynamic batch named ``batch``) -> the profile's steps -> bundle written
atomically. Calibration and evaluation data are checked before anything is exported.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgert.bundle import Bundle
from edgert.errors import ExportError
from edgert.export import Artifact, ExportContext, check_output, export_bundle, provenance
from edgert.exporters.cnn.calibration import load_inputs, load_labelled
from edgert.exporters.cnn.sources import TorchSource, load_source
from edgert.exporters.cnn.validate import validate_classifier
from edgert.exporters.steps.fix_shapes import FixShapes
from edgert.profiles import check_steps

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile


from edgert.plugins.families.cnn.options import CnnExport

Annotate = Callable[[Artifact, ExportContext], dict[str, Any]]


def export_cnn(options: CnnExport, profile: DeviceProfile, catalog: Catalog) -> Bundle:
    """Export a classifier for ``profile``; returns the verified bundle."""
    check_steps(profile)
    return export_torch_classifier(load_source(options.source), options, profile, catalog)


def export_torch_classifier(
    source: TorchSource,
    options: CnnExport,
    profile: DeviceProfile,
    catalog: Catalog,
    annotate: Annotate | None = None,
) -> Bundle:
    """Export an already built classifier (families that build their own torch module, such
    as OFA subnets, share these steps instead of repeating them).

    Args:
        source: the torch module and what is known about it.
        options: output folder, data and flags.
        profile: the device profile.
        catalog: registries.
        annotate: called with the final graph before the manifest is written; the dict it
            returns is added to the manifest (e.g. an ``ofa`` section with measurements).
    """
    check_steps(profile)
    check_output(options.out, options.force)
    shape = _input_shape(options, source)
    calibration, eval_data = _data(options, source, shape)
    labels = _labels(options, source)

    def graphs(out_dir: Path) -> dict[str, Path]:
        first = to_onnx(source, shape, profile.export.opset, out_dir)
        if source.static_batch and "fix-shapes" not in profile.export.steps:
            pinned = out_dir.parent / "00-fix-batch"
            pinned.mkdir()
            first = FixShapes().run(first, _batch_only(shape), pinned)
        return {"model": first.path}

    def files(staging: Path, final: dict[str, Artifact], ctx: ExportContext) -> dict[str, Any]:
        part = _manifest(options, source, final["model"], labels)
        return part | (annotate(final["model"], ctx) if annotate else {})

    reference = _reference(
        source.model, shape[0] if source.static_batch else 256, fixed=source.static_batch
    )
    return export_bundle(
        options, profile, catalog, family="cnn", graphs=graphs, validator=validate_classifier,
        extra={"reference": reference, "sample": _sample(calibration, shape), "eval_data": eval_data},
        context={"calibration": calibration, "static_dims": _static_dims(profile, source, shape)},
        files=files,
    )  # fmt: skip


def _input_shape(options: CnnExport, source: TorchSource) -> tuple[int, ...]:
    shape = options.input_shape or source.input_shape
    if not shape:
        raise ExportError(
            f"the input shape of {options.source!r} is unknown",
            hint="pass --input-shape, e.g. --input-shape 1,3,224,224",
        )
    if any(not isinstance(d, int) or d < 1 for d in shape) or len(shape) < 2:
        raise ExportError(f"invalid input shape {shape}", hint="e.g. --input-shape 1,3,224,224")
    return tuple(shape)


def _data(
    options: CnnExport, source: TorchSource, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    from edgert.exporters.cnn.calibration import check_inputs

    module = source.module
    if options.calibration:
        calibration = load_inputs(options.calibration, shape)
    elif module is not None and hasattr(module, "calibration_data"):
        calibration = check_inputs(module.calibration_data(), shape, f"{source.spec} calibration")
    else:
        calibration = None
    if options.eval_data:
        eval_data = load_labelled(options.eval_data, shape)
    elif module is not None and hasattr(module, "eval_data") and not options.calibration:
        x, y = module.eval_data()
        eval_data = (check_inputs(x, shape, f"{source.spec} eval data"), y)
    else:
        eval_data = None
    return calibration, eval_data


def _labels(options: CnnExport, source: TorchSource) -> list[str] | None:
    if options.labels:
        if not Path(options.labels).is_file():
            raise ExportError(f"labels file not found: {options.labels}")
        return [
            line.strip() for line in Path(options.labels).read_text().splitlines() if line.strip()
        ]
    return list(source.labels) if source.labels else None


def to_onnx(source: TorchSource, shape: tuple[int, ...], opset: int, out_dir: Path) -> Artifact:
    """The first artifact: ``source.model`` traced to ONNX with a dynamic batch ``batch``."""
    import onnx
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.onnx"
    dummy = torch.zeros(shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # opset 17 needs this exporter
            torch.onnx.export(
                source.model,
                (dummy,),
                str(target),
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:
        raise ExportError(f"{type(exc).__name__}: {exc}", step="torch-to-onnx") from exc
    finally:
        source.model.eval()  # torch.onnx.export restores the model's previous mode recursively
    try:
        onnx.checker.check_model(str(target))
    except onnx.checker.ValidationError as exc:
        raise ExportError(
            f"torch produced an invalid ONNX graph: {exc}", step="torch-to-onnx"
        ) from exc
    return Artifact(target, "fp32", opset)


def _static_dims(profile: DeviceProfile, source: TorchSource, shape: tuple[int, ...]) -> dict:
    if source.static_batch:
        return {"batch": shape[0]}
    return {"batch": profile.export.batch_size} if profile.export.static_shapes else {}


def _batch_only(shape: tuple[int, ...]) -> Any:
    """A minimal context for pinning the batch of a program exported at a fixed batch."""

    class Pin:
        static_dims: ClassVar[dict] = {"batch": shape[0]}

    return Pin()


def _reference(model: Any, chunk: int, *, fixed: bool = False) -> Any:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for i in range(0, len(x), chunk):
                part = x[i : i + chunk]
                n = len(part)
                if fixed and n < chunk:  # a fixed-batch program: pad the last chunk
                    part = np.concatenate(
                        [part, np.zeros((chunk - n, *part.shape[1:]), part.dtype)]
                    )
                outs.append(model(torch.from_numpy(part)).numpy()[:n])
        return np.concatenate(outs)

    return run


def _sample(calibration: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if calibration is not None:
        return calibration[:64]
    return np.random.default_rng(0).standard_normal((16, *shape[1:])).astype(np.float32)


def _io(path: Path) -> tuple[list[dict], list[dict]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def describe(value: Any) -> dict:
        tensor = value.type.tensor_type
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim
        ]
        return {
            "name": value.name,
            "shape": dims,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
        }

    return [describe(v) for v in model.graph.input], [describe(v) for v in model.graph.output]


def _manifest(
    options: CnnExport, source: TorchSource, final: Artifact, labels: list[str] | None
) -> dict[str, Any]:
    """The classifier's own manifest keys."""
    inputs, outputs = _io(final.path)
    return {
        "graphs": [{"role": "model", "file": "model.onnx", "inputs": inputs, "outputs": outputs}],
        "labels": labels,
        "postprocess": "softmax",
        "provenance": provenance(
            options.source, calibration=str(options.calibration) if options.calibration else None
        ),
    }
