"""Fuzzed loaders: mutated manifests, damaged files (with checksums made to match, as a copy
tool that recomputes them would) and mutated device profiles. Every case ends in edgert's
own error (or loads and runs), never another exception.

Seeded and bounded for ``make test``; ``make fuzz`` runs many more cases
(``EDGERT_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import edgert  # noqa: E402
from edgert.bundle import MANIFEST, write_manifest  # noqa: E402
from edgert.errors import EdgertError  # noqa: E402

EXAMPLES = int(os.environ.get("EDGERT_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**18), 10**18),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**15]), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["../../etc/passwd", "/etc/passwd", "model.onnx", ""]),
    st.lists(st.integers(-5, 10**15), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)  # fmt: skip


def paths(tree, prefix=()):
    """Every path to a value in a JSON tree."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from paths(value, (*prefix, i))


def mutate(tree, path, value, delete):
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


def exercise(bundle: Path) -> None:
    """Load and use ``bundle``; only edgert's errors may come out."""
    try:
        model = edgert.load(bundle)
        if hasattr(model, "classify"):
            model.classify(np.ones((1, *model.input_shape[1:]), np.float32), top_k=1)
        else:
            model.generate("the quick brown fox", max_new_tokens=3)
    except EdgertError:
        pass


@pytest.fixture(scope="module")
def originals(tmp_path_factory, seq2seq_bundles):
    from helpers.bundles import make_bundle

    root = tmp_path_factory.mktemp("fuzz")
    return {"cnn": make_bundle(root / "cnn"), "seq2seq": seq2seq_bundles["t5"]}


@pytest.mark.parametrize("kind", ["cnn", "seq2seq"])
def test_mutated_manifests_give_edgert_errors(kind, originals):
    source = originals[kind]
    manifest = json.loads((source / MANIFEST).read_text())
    every = list(paths(manifest))

    @FUZZ
    @given(st.sampled_from(every), VALUES, st.booleans())
    def case(path, value, delete):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "b"
            shutil.copytree(source, copy)
            (copy / MANIFEST).write_text(json.dumps(mutate(manifest, path, value, delete)))
            exercise(copy)

    case()


DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.integers(0, 1 << 30), min_size=1, max_size=8)),
    st.tuples(st.just("garbage"), st.binary(max_size=64)),
)


@pytest.mark.parametrize("kind", ["cnn", "seq2seq"])
def test_damaged_files_with_matching_checksums_give_edgert_errors(kind, originals):
    source = originals[kind]
    manifest = json.loads((source / MANIFEST).read_text())

    @FUZZ
    @given(st.sampled_from(sorted(manifest["files"])), DAMAGE)
    def case(name, damage):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "b"
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
            rest = {k: v for k, v in manifest.items() if k not in ("files", "sizes")}
            write_manifest(copy, rest)  # checksums that match the damage
            exercise(copy)

    case()


def test_mutated_device_profiles_give_profile_errors():
    import tomllib

    from edgert.errors import DeviceProfileError
    from edgert.profiles import parse_profile

    root = Path(__file__).resolve().parents[2] / "devices"
    profiles = [tomllib.loads(p.read_text()) for p in sorted(root.glob("*.toml"))]

    @FUZZ
    @given(st.sampled_from(range(len(profiles))), st.data(), VALUES, st.booleans())
    def case(index, data, value, delete):
        path = data.draw(st.sampled_from(list(paths(profiles[index]))))
        with contextlib.suppress(DeviceProfileError):
            parse_profile(mutate(profiles[index], path, value, delete), "fuzzed.toml")

    case()
