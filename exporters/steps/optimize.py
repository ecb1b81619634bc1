"""``optimize``: ONNX Runtime's basic, provider-independent graph optimizations, offline.

Basic level only (constant folding, BatchNorm into Conv, redundant-node removal): the result
is plain ONNX every provider can load. Higher levels fuse into CPU-only contrib ops, which
would tie the bundle to one provider; sessions apply those at load time instead. Folding
also matters for NPUs: a QDQ graph with an unfolded BatchNormalization runs on the QNN HTP
backend but gives wrong results.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgert.export import Artifact, ExportContext


class OptimizeGraph:
    """Basic-level ORT optimization written back to ONNX."""

    name: ClassVar[str] = "optimize"

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Load the model once in ORT with ``optimized_model_filepath`` set."""
        import onnxruntime as ort

        target = out_dir / "model.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(target)
        so.log_severity_level = 3
        ort.InferenceSession(str(artifact.path), so, providers=["CPUExecutionProvider"])
        return Artifact(target, artifact.precision, artifact.opset)
