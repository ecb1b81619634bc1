"""Built-in export steps, registered like any plugin's. A profile lists them by name."""

from __future__ import annotations

from edgert.hookspecs import hookimpl


@hookimpl
def register_export_steps(register):
    """Register optimize, fix-shapes, fp16, quantize and validate.

    The step modules import onnx/onnxruntime tools only inside ``run``, so registering
    them costs nothing at run time.
    """
    from edgert.exporters.steps.fix_shapes import FixShapes
    from edgert.exporters.steps.fp16 import ConvertFp16
    from edgert.exporters.steps.optimize import OptimizeGraph
    from edgert.exporters.steps.quantize import Quantize
    from edgert.exporters.steps.validate import Validate

    for step in (OptimizeGraph, FixShapes, ConvertFp16, Quantize, Validate):
        register(step)
