"""The bundles an app serves: found under the paths it was given, named by short ids.

A bundle is a folder holding ``manifest.json``; a path given to the app is either a bundle
or a folder searched (two levels down) for bundles. The app refers to bundles by id only,
never by a path a client sends, so no request can name a file outside these folders.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edgert

# The page a family's bundles get, by the ``family`` field of the manifest. A family not
# listed here gets its page from what its loaded model can do (``Studio.page``).
PAGES = {"seq2seq": "text", "dolphin": "context", "cnn": "image", "ofa": "image",
         "speech": "audio"}  # fmt: skip
SEARCH_DEPTH = 2


@dataclass(frozen=True)
class Entry:
    """One bundle the app serves and the facts its manifest states."""

    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def family(self) -> str:
        return str(self.manifest.get("family", "?"))

    def facts(self) -> dict[str, Any]:
        """What the bundle list shows: family, profile, precision, size, validation."""
        device = self.manifest.get("device") or {}
        validation = self.manifest.get("validation") or {}
        files = self.manifest.get("files") or {}
        size = sum(_size(self.path / name) for name in files) if files else _tree_size(self.path)
        return {
            "id": self.id,
            "name": self.path.name,
            "family": self.family,
            "page": PAGES.get(self.family),
            "profile": device.get("id") if isinstance(device, dict) else None,
            "precision": self.manifest.get("precision"),
            "size_bytes": size,
            "validation": _validation(validation),
            "edgert_version": self.manifest.get("edgert_version"),
        }


def _validation(validation: Any) -> dict[str, Any]:
    """The validation figures worth a glance: agreement, errors and whether it passed."""
    if not isinstance(validation, dict):
        return {}
    keep = {}
    for key, value in validation.items():
        if isinstance(value, bool | int | float | str) and value is not None:
            keep[key] = value
    return keep


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tree_size(path: Path) -> int:
    return sum(_size(p) for p in path.rglob("*") if p.is_file())


def find_bundles(paths: list[str | Path]) -> list[Path]:
    """Bundle folders under ``paths``, in the order given, each once."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise edgert.InputError(
                f"no such bundle or folder: {raw}",
                hint="give bundle folders written by `edgert export`, or folders holding them",
            )
        if (path / "manifest.json").is_file():
            candidates = [path]
        else:
            candidates = sorted(
                p.parent for depth in range(1, SEARCH_DEPTH + 1)
                for p in path.glob("/".join(["*"] * depth) + "/manifest.json")
            )  # fmt: skip
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved not in found:
                found.append(resolved)
    return found


def build_library(paths: list[str | Path]) -> dict[str, Entry]:
    """Entries by id for every bundle under ``paths``; an unreadable manifest is refused."""
    entries: dict[str, Entry] = {}
    for path in find_bundles(paths):
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise edgert.BundleError(
                f"cannot read {path / 'manifest.json'}: {exc}",
                hint=f"`edgert verify {path}` says what changed; re-export it or leave it out",
            ) from exc
        if not isinstance(manifest, dict):
            raise edgert.BundleError(f"{path / 'manifest.json'} is not a JSON object",
                                     hint="re-export the bundle")  # fmt: skip
        entry_id = _unique(_slug(path.name), entries)
        entries[entry_id] = Entry(entry_id, path, manifest)
    return entries


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "bundle"


def _unique(base: str, taken: dict[str, Any]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
