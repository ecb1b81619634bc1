"""``validate`` (always last): the exported graphs against their source model.

What "the same" means belongs to the family (top-1 for classifiers, logits and greedy
tokens for generators), so this step calls the family's validator and stores its results
in the manifest. A graph outside its tolerance fails the export: a bundle that loads is a
bundle that matches.

First it records which graphs multiply full-range int8 weights (``manifest["kernels"]``,
checked by ``edgert.load`` on every host). Where this host would compute those wrongly (no
VNNI), the validator runs an exact emulation of them, so the agreement written is the
target CPU's, never this host's overflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgert import host as hosts
from edgert import kernels
from edgert.export import Artifact, ExportContext
from edgert.exporters.int8_kernels import survey


class Validate:
    """Run the family validator once over all graphs."""

    name: ClassVar[str] = "validate"
    scope: ClassVar[str] = "bundle"

    def run_bundle(self, artifacts: dict[str, Artifact], ctx: ExportContext, out_dir: Path) -> None:
        """Validate; results go to ``ctx.report["validation"]``, the int8 kernel record to
        ``ctx.report["kernels"]``."""
        graphs = {role: kind for role, a in artifacts.items() if (kind := survey(a.path))}
        record = kernels.record(graphs, ctx.profile)
        flags = kernels.wrong_here(hosts.this_host(), record["exact_with"])
        if graphs and flags:
            ctx.emulated = {str(artifacts[role].path): kind for role, kind in graphs.items()}
            record["validated"] = (
                f"emulated: this CPU lacks {', '.join(flags)}, so the int8 products were "
                "computed in float on the same quantized values (the target's int32 results, "
                "up to float rounding)"
            )
        elif graphs:
            record["validated"] = "native int8 kernels (this CPU computes them exactly)"
        ctx.report["kernels"] = record
        ctx.report["validation"] = ctx.validator(artifacts, ctx)

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Single-graph use: validate ``artifact`` as the family's only graph."""
        self.run_bundle({ctx.role: artifact}, ctx, out_dir)
        return artifact
