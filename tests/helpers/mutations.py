"""Mutated bundles and profiles for the fuzzed loaders (tests/runtime/test_fuzz.py) and
``benchmarks/reliability.py``: hypothesis strategies and what they do to a copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**18), 10**18),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**15]), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["../../etc/passwd", "/etc/passwd", "model.onnx", ""]),
    st.lists(st.integers(-5, 10**15), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)  # fmt: skip

DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.integers(0, 1 << 30), min_size=1, max_size=8)),
    st.tuples(st.just("garbage"), st.binary(max_size=64)),
)


def paths(tree: Any, prefix: tuple = ()) -> Any:
    """Every path to a value in a JSON tree."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from paths(value, (*prefix, i))


def mutate(tree: Any, path: tuple, value: Any, delete: bool) -> Any:
    """A copy of ``tree`` with the value at ``path`` replaced (or its key deleted)."""
    if not path:
        return value
    tree = json.loads(json.dumps(tree))
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


def with_manifest(source: Path, copy: Path, manifest: Any) -> Path:
    """``source`` copied to ``copy`` with ``manifest`` written over its own."""
    from edgert.bundle import MANIFEST

    shutil.copytree(source, copy)
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


def damaged(source: Path, copy: Path, name: str, damage: tuple[str, Any]) -> Path:
    """``source`` copied to ``copy`` with file ``name`` truncated, bit-flipped or replaced,
    and checksums made to match (as a copy tool that recomputes them would)."""
    from edgert.bundle import MANIFEST, write_manifest

    manifest = json.loads((source / MANIFEST).read_text())
    shutil.copytree(source, copy)
    data = bytearray((copy / name).read_bytes())
    how, arg = damage
    if how == "truncate":
        data = data[: int(len(data) * arg)]
    elif how == "flip":
        for bit in arg:
            if data:
                data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    else:
        data = bytearray(arg)
    (copy / name).write_bytes(bytes(data))
    (copy / MANIFEST).unlink()
    write_manifest(copy, {k: v for k, v in manifest.items() if k not in ("files", "sizes")})
    return copy


def exercise(bundle: Path) -> str:
    """Load and use ``bundle``: "ran", or "refused" for edgert's own error; any other
    exception propagates (the defect the fuzzing looks for)."""
    import numpy as np

    import edgert
    from edgert.errors import EdgertError

    try:
        model = edgert.load(bundle)
        if hasattr(model, "classify"):  # a classifier family
            model.classify(np.ones((1, *model.input_shape[1:]), np.float32), top_k=1)
        else:
            model.generate("the quick brown fox", max_new_tokens=3)
    except EdgertError:
        return "refused"
    return "ran"
