"""Which exported graphs hold full-range int8 products, and a float emulation of them.

The export records, per graph, whether its int8 weights use the full 8-bit range in
integer products (``edgert.kernels`` explains why a CPU without VNNI gets those wrong).
That is read off the final graph, not inferred from the profile: a VNNI profile whose
graphs ended up weight-only or float makes a bundle that runs everywhere.

Validation must measure what the target CPU computes, not what this host's kernels make of
it. Where this host would overflow, it validates an emulation instead: QDQ graphs run
unfused (a session setting), and integer operators are rewritten into float ones on the
same quantized values (exact integers in float32 while a sum stays below 2**24, so equal to
the target's int32 result up to float rounding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgert.errors import ExportError
from edgert.kernels import INTEGER, QDQ

REDUCED_MAX = 64  # |weight| of a 7-bit range (onnxruntime's reduce_range: -64..64)
PRODUCTS = {"Conv", "ConvTranspose", "MatMul", "Gemm"}  # float ops a QDQ pattern fuses into
INTEGER_OPS = {
    "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention",
}  # fmt: skip
EMULATED_OPS = {"MatMulInteger", "ConvInteger"}  # what emulated_copy rewrites


def _full_range(initializers: dict[str, Any], name: str) -> bool:
    from onnx import TensorProto, numpy_helper

    tensor = initializers.get(name)
    if tensor is None or tensor.data_type != TensorProto.INT8:
        return False
    return int(np.abs(numpy_helper.to_array(tensor).astype(np.int16)).max(initial=0)) > REDUCED_MAX


def survey(path: Path) -> str | None:
    """``integer`` or ``qdq`` when the graph multiplies full-range int8 weights (integer
    operators win: they are the stricter case), else None."""
    import onnx

    graph = onnx.load(str(path)).graph
    initializers = {t.name: t for t in graph.initializer}
    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    kind = None
    for node in graph.node:
        wide = any(_full_range(initializers, name) for name in node.input)
        if not wide:
            continue
        if node.op_type in INTEGER_OPS:
            return INTEGER
        if node.op_type == "DequantizeLinear" and consumers.get(node.output[0], set()) & PRODUCTS:
            kind = QDQ
    return kind


def emulated_copy(path: Path, out: Path) -> Path:
    """``path`` with ``MatMulInteger`` / ``ConvInteger`` rewritten into float ops on the same
    integer values, written to ``out``; refuses graphs with other integer operators."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    others = sorted({n.op_type for n in graph.node if n.op_type in INTEGER_OPS - EMULATED_OPS})
    if others:
        raise ExportError(
            f"{path.name} has integer operators ({', '.join(others)}) that this CPU would "
            "compute with overflowing int8 kernels, and validation cannot emulate them",
            step="validate",
            hint="export on a CPU with VNNI, or for a profile this CPU runs (--device auto)",
        )
    nodes, used = [], set()

    def as_float(name: str, zero_point: str, tag: str, channel_axis: int | None) -> str:
        """``name - zero_point`` in float: folded when both are initializers."""
        if name in initializers and (not zero_point or zero_point in initializers):
            values = numpy_helper.to_array(initializers[name]).astype(np.float32)
            if zero_point:
                zp = numpy_helper.to_array(initializers[zero_point]).astype(np.float32)
                if zp.ndim == 1 and channel_axis is not None and zp.size > 1:
                    shape = [1] * values.ndim
                    shape[channel_axis] = zp.size
                    zp = zp.reshape(shape)
                values = values - zp
            used.update({name, zero_point} - {""})
            graph.initializer.append(numpy_helper.from_array(values, f"{name}_{tag}_f"))
            return f"{name}_{tag}_f"
        nodes.append(helper.make_node("Cast", [name], [f"{name}_{tag}_c"], to=TensorProto.FLOAT))
        if not zero_point:
            return f"{name}_{tag}_c"
        nodes.append(
            helper.make_node("Cast", [zero_point], [f"{zero_point}_{tag}_c"], to=TensorProto.FLOAT)
        )
        nodes.append(
            helper.make_node(
                "Sub", [f"{name}_{tag}_c", f"{zero_point}_{tag}_c"], [f"{name}_{tag}_s"]
            )
        )
        return f"{name}_{tag}_s"

    for index, node in enumerate(graph.node):
        if node.op_type not in EMULATED_OPS:
            nodes.append(node)
            continue
        inputs = [*node.input, "", "", ""][:4]
        tag = f"emu{index}"
        is_conv = node.op_type == "ConvInteger"
        a = as_float(inputs[0], inputs[2], tag + "a", None)
        b = as_float(inputs[1], inputs[3], tag + "b", 0 if is_conv else -1)
        product = f"{node.output[0]}_{tag}_f"
        op = helper.make_node("Conv" if is_conv else "MatMul", [a, b], [product])
        op.attribute.extend(node.attribute)
        nodes.append(op)
        nodes.append(helper.make_node("Cast", [product], [node.output[0]], to=TensorProto.INT32))
    still_used = {name for n in nodes for name in n.input}
    kept = [_copy(t) for t in graph.initializer if t.name not in used or t.name in still_used]
    nodes = [_copy(n) for n in nodes]  # copies: clearing a repeated field frees its items
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def _copy(message: Any) -> Any:
    duplicate = type(message)()
    duplicate.CopyFrom(message)
    return duplicate
