"""``validate`` (always last): the exported graphs against their source model.

What "the same" means belongs to the family (top-1 for classifiers, logits and greedy
tokens for generators), so this step calls the family's validator and stores its results
in the manifest. A graph outside its tolerance fails the export: a bundle that loads is a
bundle that matches.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgert.exporters.pipeline import Artifact, ExportContext


class Validate:
    """Run the family validator once over all graphs."""

    name: ClassVar[str] = "validate"
    scope: ClassVar[str] = "bundle"

    def run_bundle(self, artifacts: dict[str, Artifact], ctx: ExportContext, out_dir: Path) -> None:
        """Validate; results go to ``ctx.report["validation"]``."""
        ctx.report["validation"] = ctx.validator(artifacts, ctx)

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Single-graph use: validate ``artifact`` as the family's only graph."""
        self.run_bundle({ctx.role: artifact}, ctx, out_dir)
        return artifact
