"""Where the time goes: top operators per graph, from ONNX Runtime's own profiler.

``edgert profile --ops N`` loads the bundle once more inside ``providers.recording_ops``,
runs the family's workload a few times, ends each session's profiling and reads the
traces ONNX Runtime wrote (Chrome trace format: one ``Node`` event per kernel run, with
``args.op_name`` and ``args.provider``). Operators are summed by (op type, provider) per
graph; a graph that an accelerator compiled whole shows as that provider's one fused node.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def top_operators(sessions: list[tuple[Path, Any]], top: int, catalog: Any) -> dict[str, Any]:
    """``{graph: {"total_ms", "ops": [{op, provider, ms, calls, share}]}}``, the ``top``
    costliest operator types of each graph, after ending each session's profiling."""
    graphs: dict[str, Any] = {}
    for path, session in sessions:
        trace = Path(session.end_profiling())
        totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
        for event in _events(trace):
            if event.get("cat") != "Node" or not str(event.get("name", "")).endswith(
                "_kernel_time"
            ):
                continue
            args = event.get("args") or {}
            key = (str(args.get("op_name", "?")), _provider(args.get("provider", ""), catalog))
            totals[key][0] += float(event.get("dur", 0)) / 1000
            totals[key][1] += 1
        whole = sum(ms for ms, _ in totals.values())
        ranked = sorted(totals.items(), key=lambda item: -item[1][0])[:top]
        name = path.stem if path.stem not in graphs else f"{path.stem}-{len(graphs)}"
        graphs[name] = {
            "total_ms": whole,
            "ops": [
                {"op": op, "provider": provider, "ms": ms, "calls": int(calls),
                 "share": ms / whole if whole else 0.0}
                for (op, provider), (ms, calls) in ranked
            ],
        }  # fmt: skip
    return graphs


def _events(trace: Path) -> list[dict[str, Any]]:
    data = json.loads(trace.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else data.get("traceEvents", [])


def _provider(ort_name: str, catalog: Any) -> str:
    for provider in catalog.providers:
        if provider.ort_name == ort_name:
            return provider.name
    return ort_name or "?"
