"""Bundles: a directory with ``manifest.json`` and the files it lists, each with a sha256.

Writing goes through a temporary sibling directory that is renamed into place only when
complete, so an interrupted export never leaves a bundle that loads. Reading verifies the
schema version, every checksum, and that no listed path escapes the bundle directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from edgert.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("schema_version", "family", "graphs", "device", "precision", "files", "provenance")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_member(root: Path, relative: str) -> Path:
    """Resolve ``relative`` inside ``root``; refuse absolute paths, ``..`` and escaping links."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative or not pure.parts:
        raise BundleError(
            f"bundle lists an unsafe path {relative!r}",
            hint="bundle paths must be relative and stay inside the bundle; re-export it",
        )
    path = (root / pure).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BundleError(
            f"bundle path {relative!r} resolves outside the bundle ({path})",
            hint="remove the symbolic link or re-export the bundle",
        )
    return path


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: dict[str, Any]

    @property
    def family(self) -> str:
        """The model family ("cnn", "seq2seq", ...)."""
        return self.manifest["family"]

    def graph(self, role: str) -> dict[str, Any]:
        """The manifest entry of the graph with ``role`` (e.g. "model", "encoder")."""
        for graph in self.manifest["graphs"]:
            if graph["role"] == role:
                return graph
        roles = [g["role"] for g in self.manifest["graphs"]]
        raise BundleError(f"bundle {self.path} has no graph {role!r}; it has {roles}")

    def file(self, relative: str) -> Path:
        """Absolute path of a listed file."""
        return safe_member(self.path, relative)

    def size_bytes(self) -> int:
        """Total size of the listed files."""
        return sum(self.file(name).stat().st_size for name in self.manifest["files"])


def open_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read a bundle's manifest and (by default) verify every file's checksum."""
    root = Path(path)
    if not root.exists():
        raise BundleError(
            f"bundle not found: {root}",
            hint=f"export one first: edgert export SOURCE --device auto --out {root}",
        )
    manifest_path = root / MANIFEST
    if not root.is_dir() or not manifest_path.is_file():
        raise BundleError(
            f"{root} is not a bundle (no {MANIFEST})",
            hint="pass the folder written by 'edgert export'",
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}", hint="re-export") from exc
    _check_schema(manifest, manifest_path)
    bundle = Bundle(root, manifest)
    for relative, expected in manifest["files"].items():
        member = bundle.file(relative)
        if not member.is_file():
            raise BundleError(
                f"bundle {root} is incomplete: {relative} is missing",
                hint="re-export the bundle; files must not be removed from it",
            )
        if verify and sha256_file(member) != expected:
            raise BundleError(
                f"checksum mismatch for {relative} in {root}: the file was changed after export",
                hint="re-export the bundle, or restore the original file",
            )
    for graph in manifest["graphs"]:
        if graph.get("file") not in manifest["files"]:
            raise BundleError(
                f"graph {graph.get('role')!r} names unlisted file {graph.get('file')!r}"
            )
    return bundle


def _check_schema(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: manifest must be a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{where}: schema_version {version!r} is not supported (this edgert reads "
            f"{SCHEMA_VERSION})",
            hint="upgrade edgert (pip install -U edgert), or re-export with this version",
        )
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{where}: manifest lacks {', '.join(missing)}", hint="re-export")
    if not isinstance(manifest["files"], dict) or not isinstance(manifest["graphs"], list):
        raise BundleError(f"{where}: 'files' must be an object and 'graphs' a list")


def write_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add ``files`` (sha256 of everything under ``root``) and write ``manifest.json``."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            files[path.relative_to(root).as_posix()] = sha256_file(path)
    manifest = {"schema_version": SCHEMA_VERSION, **manifest, "files": files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def refuse_existing(target: Path, overwrite: bool) -> None:
    """A ``BundleError`` when ``target`` exists and may not be replaced."""
    if Path(target).exists() and not overwrite:
        raise BundleError(
            f"output {target} already exists",
            hint="choose another --out, or pass --force to replace it once the new one is done",
        )


@contextlib.contextmanager
def staged_directory(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; rename it to ``target`` on success.

    On any exception the temporary directory is removed and ``target`` is untouched. With
    ``overwrite`` an existing bundle is replaced only after the new one is complete.
    """
    target = Path(target)
    refuse_existing(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
