"""``fp16``: convert weights and compute to float16 for GPU profiles, keeping fp32 IO.

fp32 inputs and outputs keep the runtime API identical across profiles; the casts at the
graph edges cost nothing next to the halved weight bandwidth.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgert.export import Artifact, ExportContext


class ConvertFp16:
    """onnxruntime's float16 converter with ``keep_io_types``."""

    name: ClassVar[str] = "fp16"

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Write the float16 model."""
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(artifact.path)), keep_io_types=True)
        target = out_dir / "model.onnx"
        onnx.save(model, str(target))
        return Artifact(target, "fp16", artifact.opset)
