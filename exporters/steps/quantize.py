"""``quantize``: int8 with onnxruntime.quantization, as the profile's section says.

- ``static-qdq`` (CNNs, NPUs): QDQ format calibrated on real inputs. ``recipe = "qnn"`` uses
  ORT's QNN config (uint16 activations where asked, ops HTP supports).
- ``dynamic`` (text models on CPU): weights int8, activations quantized at run time.

Which nodes are quantized is data in the profile (``op_types``, ``min_weight_elements``,
``keep_float_ops``): on x86 CPUs, measured with ``benchmarks/cnn.py``, int8 pays only where
weights are large enough for memory traffic to dominate (classifier Gemms), while quantized
convolutions followed by HardSwish/HardSigmoid bounce between int8 and float and are slower
than fp32, whose kernels fuse those activations. When no node qualifies the graph stays
fp32 and the report says so, rather than shipping a slower "int8" bundle.

ISA presets (``edgert/isa.toml``): AVX2 and AVX-512 without VNNI saturate full-range u8*s8
products, so the ``avx2`` and portable ``any`` presets quantize weights with ``reduce_range``
(7 bits); ``avx512-vnni`` and ``arm64`` use the full range, and the bundle records which of
its graphs then need a CPU that computes it exactly (``edgert.kernels``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgert.errors import ExportError
from edgert.export import Artifact, ExportContext
from edgert.kernels import reduce_range


class _Reader:
    """Feeds calibration samples one at a time (ORT's CalibrationDataReader protocol).

    ``data`` is an array of single-input samples, or a list of complete feed dicts for
    graphs with several inputs (decoder steps recorded while decoding sample text).
    """

    def __init__(self, name: str, data: Any, batch: int) -> None:
        if isinstance(data, list):
            self._batches: Iterator[Any] = iter(data)
        else:
            self._batches = iter(
                {name: np.ascontiguousarray(data[i : i + batch], np.float32)}
                for i in range(0, len(data) - batch + 1, batch)
            )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not used by single-pass calibrators
        pass


class Quantize:
    """Static QDQ or dynamic int8 quantization."""

    name: ClassVar[str] = "quantize"

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Quantize ``artifact`` into ``out_dir/model.onnx``."""
        import onnx

        target = out_dir / "model.onnx"
        model = onnx.load(str(artifact.path))
        selected, total = select_nodes(model, ctx.profile.export.quantization)
        report = {
            "method": ctx.quantization_method,
            "quantized_nodes": len(selected),
            "nodes": total,
        }
        if ctx.role == "model":
            ctx.report["quantization"] = report
        else:  # one report per graph of the bundle
            ctx.report.setdefault("quantization", {})[ctx.role] = report
        if not selected:
            report["note"] = (
                "no node passes the profile's int8 selection (op_types / min_weight_elements); "
                "kept fp32, which is faster here"
            )
            return artifact
        source = out_dir / "named.onnx"  # the quantizer addresses nodes by name
        onnx.save(model, str(source))
        bits = 4 if ctx.profile.export.precision == "int4" else 8
        if ctx.quantization_method == "weight-only":
            report["method"] = f"weight-only int{bits}"
            report["quantized_nodes"] = self._weight_only(model, target, ctx, bits)
            return Artifact(target, f"int{bits}", _opset(target))
        if ctx.quantization_method == "dynamic":
            self._dynamic(source, target, ctx, selected)
        else:
            self._static(model, source, target, ctx, selected)
        return Artifact(target, "int8", _opset(target))

    def _weight_only(self, model: Any, target: Path, ctx: ExportContext, bits: int) -> int:
        """Block-wise weight-only quantization (MatMulNBits); returns how many MatMuls.

        One fused kernel per MatMul, and at 4 bits half the bytes of int8, for
        memory-bound decoder steps. Every MatMul with a constant weight is taken, small
        ones too (the profile's ``min_weight_elements`` only decides whether the graph is
        quantized at all): at one token per call MatMulNBits beats the float MatMul even
        on 128 x 128 weights (the speller's int8 decoder step: 0.094 ms, against 0.120 ms
        with only the weights of 65,536 elements or more quantized).
        """
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        q = ctx.profile.export.quantization
        quantizer = MatMulNBitsQuantizer(
            model,
            bits=bits,
            block_size=q.block_size,
            is_symmetric=True,
            accuracy_level=q.accuracy_level,
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
        return sum(node.op_type == "MatMulNBits" for node in quantizer.model.model.graph.node)

    def _dynamic(self, source: Path, target: Path, ctx: ExportContext, selected: list[str]) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = ctx.profile.export.quantization
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8 if q.weight_type == "int8" else QuantType.QUInt8,
            per_channel=q.per_channel,
            reduce_range=reduce_range(q.isa),
            nodes_to_quantize=selected,
        )

    def _static(
        self, model: Any, source: Path, target: Path, ctx: ExportContext, selected: list[str]
    ) -> None:
        if ctx.calibration is None:
            raise ExportError(
                "static int8 quantization needs calibration data",
                step=self.name,
                hint="pass --calibration with a folder of images or an .npy of inputs",
            )
        inputs = [i.name for i in model.graph.input]
        dims = model.graph.input[0].type.tensor_type.shape.dim
        batch = dims[0].dim_value if dims and dims[0].HasField("dim_value") else 1
        samples = ctx.calibration[: ctx.profile.export.quantization.calibration_samples]
        if isinstance(samples, list):
            batch = 1
        if len(samples) < batch:
            raise ExportError(
                f"{len(samples)} calibration samples are fewer than the fixed batch {batch}",
                step=self.name,
                hint="pass more calibration samples",
            )
        reader = _Reader(inputs[0], samples, batch)
        excluded = [n.name for n in model.graph.node if n.name not in set(selected)]
        if ctx.profile.export.quantization.recipe == "qnn":
            self._qnn(source, target, reader, excluded, ctx)
        else:
            self._ort(source, target, reader, selected, ctx)

    def _ort(
        self, source: Path, target: Path, reader: Any, selected: list[str], ctx: ExportContext
    ) -> None:
        from onnxruntime.quantization import QuantFormat, quantize_static

        q = ctx.profile.export.quantization
        quantize_static(
            str(source),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=_qtype(q.graph_activation_types.get(ctx.role, q.activation_type)),
            weight_type=_qtype(q.weight_type),
            per_channel=q.per_channel,
            reduce_range=reduce_range(q.isa),
            nodes_to_quantize=selected,
            calibrate_method=_calibration(q.calibration),
            extra_options={
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
                "OpTypesToExcludeOutputQuantization": list(q.float_outputs),
            },
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
            activation_type=_qtype(q.graph_activation_types.get(ctx.role, q.activation_type)),
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


def select_nodes(model: Any, q: Any) -> tuple[list[str], int]:
    """Names of the nodes the profile wants in int8, and the total node count.

    A node qualifies when its op type is in ``op_types`` (or that list is empty), it is not
    in ``keep_float_ops``, and its largest initializer has at least ``min_weight_elements``.
    Nodes without a name get one, so exclusion lists can address them.
    """
    sizes = {init.name: int(np.prod(init.dims)) for init in model.graph.initializer}
    selected = []
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
        if node.op_type in q.keep_float_ops or (q.op_types and node.op_type not in q.op_types):
            continue
        weight = max((sizes.get(name, 0) for name in node.input), default=0)
        if q.min_weight_elements and weight < q.min_weight_elements:
            continue
        selected.append(node.name)
    return selected, len(model.graph.node)
