"""``edgert export`` report of an OFA subnet: the classifier's lines and how it was chosen.

Its bundles are classifier bundles, so ``run`` and ``profile`` are the classifier's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edgert.plugins.families.cnn.commands import ClassifierCommands


class SubnetCommands(ClassifierCommands):
    """Adds the subnet, its search and its measured latency to the export report."""

    def export_lines(self, manifest: Mapping[str, Any]) -> list[str]:
        lines = super().export_lines(manifest)
        section = manifest.get("ofa")
        if not section:
            return lines
        lines.append(f"subnet {json.dumps(section['subnet'])} at {section['resolution']} px, "
                     f"BN recalibrated on {section['bn_recalibration']['images']} images")  # fmt: skip
        search = section.get("search")
        if search:
            lines.append(f"chosen by {search['scorer']} among {search['evaluated']} candidates "
                         f"within {search['budget_ms']:g} ms (smallest: "
                         f"{search['smallest_ms']:.3f} ms)")  # fmt: skip
        measured = section.get("measured") or {}
        predicted = section.get("predicted_ms")
        line = f"predicted {predicted:.3f} ms, " if predicted is not None else ""
        if measured.get("ms") is not None:
            where = measured["provider"] + (" (simulated)" if measured.get("simulated") else "")
            lines.append(f"{line}measured {measured['ms']:.3f} ms on {where}")
        elif measured.get("note"):
            lines.append(f"{line}not measured: {measured['note']}")
        return lines


COMMANDS = SubnetCommands()
