"""``quantize``: int8 with onnxruntime.quantization, as the profile's section says.

- ``static-qdq`` (CNNs, NPUs): QDQ format calibrated on real inputs. ``recipe = "qnn"`` uses
  ORT's QNN config (uint16 activations where asked, ops HTP supports). Op types listed in
  ``keep_float_ops`` stay float: on CPU, quantizing HardSigmoid/HardSwish regions makes
  ORT bounce between int8 and float and ends up slower than fp32.
- ``dynamic`` (text models on CPU): weights int8, activations quantized at run time.

ISA presets: AVX2 and AVX-512 without VNNI can saturate u8*s8 products, so they quantize
weights with ``reduce_range`` (7 bits); VNNI and Arm64 use the full range.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from edgert.exporters.pipeline import Artifact, ExportContext

from edgert.errors import ExportError

_REDUCE_RANGE = {"avx2": True, "avx512-vnni": False, "arm64": False, "any": False}


class _Reader:
    """Feeds calibration samples one at a time (ORT's CalibrationDataReader protocol)."""

    def __init__(self, name: str, data: np.ndarray, batch: int) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            data[i : i + batch] for i in range(0, len(data) - batch + 1, batch)
        )
        self.name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.name: np.ascontiguousarray(batch, np.float32)}

    def rewind(self) -> None:  # pragma: no cover - not used by single-pass calibrators
        pass


class Quantize:
    """Static QDQ or dynamic int8 quantization."""

    name: ClassVar[str] = "quantize"

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Quantize ``artifact`` into ``out_dir/model.onnx``."""
        target = out_dir / "model.onnx"
        method = ctx.quantization_method
        if method == "dynamic":
            self._dynamic(artifact.path, target, ctx)
        else:
            self._static(artifact.path, target, ctx)
        return Artifact(target, "int8", _opset(target))

    def _dynamic(self, source: Path, target: Path, ctx: ExportContext) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = ctx.profile.export.quantization
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8 if q.weight_type == "int8" else QuantType.QUInt8,
            per_channel=q.per_channel,
            reduce_range=_REDUCE_RANGE[q.isa],
        )

    def _static(self, source: Path, target: Path, ctx: ExportContext) -> None:
        import onnx

        if ctx.calibration is None:
            raise ExportError(
                "static int8 quantization needs calibration data",
                step=self.name,
                hint="pass --calibration with a folder of images or an .npy of inputs",
            )
        model = onnx.load(str(source))
        inputs = [i.name for i in model.graph.input]
        dims = model.graph.input[0].type.tensor_type.shape.dim
        batch = dims[0].dim_value if dims and dims[0].HasField("dim_value") else 1
        samples = ctx.calibration[: ctx.profile.export.quantization.calibration_samples]
        if len(samples) < batch:
            raise ExportError(
                f"{len(samples)} calibration samples are fewer than the fixed batch {batch}",
                step=self.name,
                hint="pass more calibration samples",
            )
        reader = _Reader(inputs[0], samples, batch)
        keep_float = set(ctx.profile.export.quantization.keep_float_ops)
        excluded = [n.name for n in model.graph.node if n.op_type in keep_float]
        if ctx.profile.export.quantization.recipe == "qnn":
            self._qnn(source, target, reader, excluded, ctx)
        else:
            self._ort(source, target, reader, excluded, ctx)

    def _ort(
        self, source: Path, target: Path, reader: Any, excluded: list[str], ctx: ExportContext
    ) -> None:
        from onnxruntime.quantization import QuantFormat, quantize_static

        q = ctx.profile.export.quantization
        quantize_static(
            str(source),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=_qtype(q.activation_type),
            weight_type=_qtype(q.weight_type),
            per_channel=q.per_channel,
            reduce_range=_REDUCE_RANGE[q.isa],
            nodes_to_exclude=excluded,
            calibrate_method=_calibration(q.calibration),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )

    def _qnn(
        self, source: Path, target: Path, reader: Any, excluded: list[str], ctx: ExportContext
    ) -> None:
        from onnxruntime.quantization import quantize
        from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

        q = ctx.profile.export.quantization
        config = get_qnn_qdq_config(
            str(source),
            reader,
            activation_type=_qtype(q.activation_type),
            weight_type=_qtype(q.weight_type),
            per_channel=q.per_channel,
            calibrate_method=_calibration(q.calibration),
        )
        config.nodes_to_exclude = excluded
        quantize(str(source), str(target), config)


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {
        "uint8": QuantType.QUInt8,
        "int8": QuantType.QInt8,
        "uint16": QuantType.QUInt16,
    }[name]


def _calibration(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
