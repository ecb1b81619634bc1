"""``fix-shapes``: pin every symbolic dimension, as NPUs (QNN HTP, OpenVINO NPU) require.

The family exporter names its symbolic dims (``batch`` for CNNs) and the values to pin
them to (``ctx.static_dims``, from the profile). A symbolic dim left over is an error:
an NPU would reject the graph, or worse, run it on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgert.errors import ExportError
from edgert.export import Artifact, ExportContext


class FixShapes:
    """Replace ``dim_param`` dims with fixed values and re-infer shapes."""

    name: ClassVar[str] = "fix-shapes"

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Fix the dims named in ``ctx.static_dims``; fail on any other symbolic dim."""
        import onnx
        from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

        model = onnx.load(str(artifact.path))
        for name, value in ctx.static_dims.items():
            make_dim_param_fixed(model.graph, name, value)
        fix_output_shapes(model)
        model = onnx.shape_inference.infer_shapes(model)
        left = sorted(
            {
                dim.dim_param or "?"
                for value in (*model.graph.input, *model.graph.output)
                for dim in value.type.tensor_type.shape.dim
                if not dim.HasField("dim_value")
            }
        )
        if left:
            raise ExportError(
                f"symbolic dimensions remain after fixing shapes: {', '.join(left)}",
                step=self.name,
                hint="the family exporter must name every dynamic dim in static_dims",
            )
        target = out_dir / "model.onnx"
        onnx.save(model, str(target))
        return Artifact(target, artifact.precision, artifact.opset)
