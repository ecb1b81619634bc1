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
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from helpers.mutations import DAMAGE, VALUES, damaged, exercise, mutate, paths, with_manifest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgert.bundle import MANIFEST  # noqa: E402

EXAMPLES = int(os.environ.get("EDGERT_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip


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
            exercise(with_manifest(source, Path(tmp) / "b", mutate(manifest, path, value, delete)))

    case()


@pytest.mark.parametrize("kind", ["cnn", "seq2seq"])
def test_every_manifest_field_null_or_deleted_gives_edgert_errors(kind, originals):
    """Not sampled: every field, so a new manifest field cannot slip past the sample."""
    source = originals[kind]
    manifest = json.loads((source / MANIFEST).read_text())
    for path in paths(manifest):
        for delete in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                exercise(
                    with_manifest(source, Path(tmp) / "b", mutate(manifest, path, None, delete))
                )


@pytest.mark.parametrize("kind", ["cnn", "seq2seq"])
def test_damaged_files_with_matching_checksums_give_edgert_errors(kind, originals):
    source = originals[kind]
    manifest = json.loads((source / MANIFEST).read_text())

    @FUZZ
    @given(st.sampled_from(sorted(manifest["files"])), DAMAGE)
    def case(name, damage):
        with tempfile.TemporaryDirectory() as tmp:
            exercise(damaged(source, Path(tmp) / "b", name, damage))

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
