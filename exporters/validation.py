"""Shared validation helpers: sessions on the profile's provider, or CPU when it is not here.

NPU bundles are validated on the NPU provider when it is available (QNN HTP simulator
included), with CPU fallback disabled, so an NPU bundle is proven to run wholly on the NPU
graph. When the profile's provider does not exist on this host (a GPU profile exported on
a laptop) validation runs on CPU and says so. Graphs whose full-range int8 products this
CPU would overflow run emulated (``exporters.int8_kernels``), and the label says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgert.export import ExportContext
from edgert.exporters.int8_kernels import emulated_copy
from edgert.kernels import QDQ
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
    emulated = ctx.emulated.get(str(path))
    if emulated == QDQ:
        profile = profile.with_runtime(emulate_int8=True)
    elif emulated:
        path = emulated_copy(path, path.parent / "emulated" / path.name)
    if emulated:
        note += " (int8 products emulated in float: this CPU's int8 kernels would overflow)"
    info = create_session(path, profile, ctx.catalog, allow_fallback=ctx.allow_fallback)
    return info, info.active + (" (simulated)" if info.simulated else "") + note


def greedy_tokens(core: Any, ids: list[int], steps: int, eos: set[int]) -> list[int]:
    """Up to ``steps`` greedy tokens through a family core's cache, one call per token
    (stops after an EOS id). Validation compares them with the source model; static
    calibration runs it on fp32 graphs to record realistic feeds."""
    logits = core.start(ids)[-1]
    tokens: list[int] = []
    while True:
        tokens.append(int(np.argmax(logits)))
        if tokens[-1] in eos or len(tokens) == steps:
            return tokens
        logits = core.step([tokens[-1]])[-1]
