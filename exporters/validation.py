"""Shared validation helpers: sessions on the profile's provider, or CPU when it is not here.

NPU bundles are validated on the NPU provider when it is available (QNN HTP simulator
included), with CPU fallback disabled, so an NPU bundle is proven to run wholly on the NPU
graph. When the profile's provider does not exist on this host (a GPU profile exported on
a laptop) validation runs on CPU and says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgert.exporters.pipeline import ExportContext
from edgert.providers import SessionInfo, create_session


def validation_session(path: Path, ctx: ExportContext) -> tuple[SessionInfo, str]:
    """A session for ``path`` and a label of where it ran (for the manifest)."""
    profile = ctx.profile
    primary = ctx.catalog.providers.get(profile.runtime.providers[0])()
    note = ""
    if not primary.is_available():
        runtime = dataclasses.replace(profile.runtime, providers=("ort-cpu",), allow_fallback=False)
        profile = dataclasses.replace(profile, runtime=runtime)
        note = f" ({primary.name} unavailable here)"
    info = create_session(path, profile, ctx.catalog, allow_fallback=ctx.allow_fallback)
    return info, info.active + (" (simulated)" if info.simulated else "") + note
