"""Bundles: a directory with ``manifest.json`` and the files it lists, each with a sha256.

Writing goes through a temporary sibling directory that is renamed into place only when
complete, so an interrupted export never leaves a bundle that loads; the next export to the
same place removes what a killed one left. Reading checks the schema version, the manifest's
shape, every file's size (always: it costs a ``stat``) and, by default, its sha256, and that
no listed path escapes the bundle directory (``..``, absolute paths, symbolic links).

``load(verify=True)`` is the default because a bundle is copied between machines and a
changed byte must not become a wrong answer; hashing costs about a second per GB, once per
load. ``edgert verify BUNDLE`` reports every file that differs and every file not listed.
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


MAX_DIM = 1 << 31  # a graph dimension larger than this is a damaged manifest, not a model


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
        """The model family: the name its family plugin registered."""
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
    sizes = manifest.get("sizes") or {}  # absent from bundles of older exports
    for relative, expected in manifest["files"].items():
        member = bundle.file(relative)
        if not member.is_file():
            raise BundleError(
                f"bundle {root} is incomplete: {relative} is missing",
                hint="re-export the bundle; files must not be removed from it",
            )
        resized = relative in sizes and member.stat().st_size != sizes[relative]
        if resized and not verify:  # the cheap check, on every load
            raise BundleError(
                f"{relative} in {root} has {member.stat().st_size} bytes, the manifest says "
                f"{sizes[relative]}: it was truncated or changed after export",
                hint="re-export the bundle, or copy it again (edgert verify lists every damaged file)",
            )
        if verify and (resized or sha256_file(member) != expected):
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
    files, graphs, sizes = manifest["files"], manifest["graphs"], manifest.get("sizes", {})
    if not isinstance(files, dict) or not isinstance(graphs, list):
        raise BundleError(f"{where}: 'files' must be an object and 'graphs' a list",
                          hint="re-export the bundle")  # fmt: skip
    for name, digest in files.items():
        if not (isinstance(digest, str) and len(digest) == 64):
            raise BundleError(f"{where}: files[{name!r}] is not a sha256 ({digest!r})",
                              hint="re-export the bundle")  # fmt: skip
    if not isinstance(sizes, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes.values()
    ):
        raise BundleError(f"{where}: 'sizes' must map files to byte counts",
                          hint="re-export the bundle")  # fmt: skip
    if not isinstance(manifest["family"], str):
        raise BundleError(f"{where}: family must be a name, got {manifest['family']!r}",
                          hint="re-export the bundle")  # fmt: skip
    for index, graph in enumerate(graphs):
        _check_graph(graph, f"{where}: graphs[{index}]")


def _check_graph(graph: Any, where: str) -> None:
    """A graph entry: role and file names, inputs/outputs with sane shapes."""
    if (
        not isinstance(graph, dict)
        or not isinstance(graph.get("role"), str)
        or not isinstance(graph.get("file"), str)
    ):
        raise BundleError(f"{where} must be an object with a role and a file",
                          hint="re-export the bundle")  # fmt: skip
    for kind in ("inputs", "outputs"):
        specs = graph.get(kind, [])
        if not isinstance(specs, list):
            raise BundleError(f"{where}.{kind} must be a list", hint="re-export the bundle")
        for i, spec in enumerate(specs):
            if isinstance(spec, str):  # a name alone (text families)
                continue
            shape = spec.get("shape", []) if isinstance(spec, dict) else None
            if not isinstance(shape, list) or not all(
                isinstance(d, str) or (type(d) is int and 0 < d < MAX_DIM) for d in shape
            ):
                raise BundleError(
                    f"{where}.{kind}[{i}] has an invalid shape {shape!r}",
                    hint="dimensions are names or positive integers below 2**31; re-export",
                )


def write_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add ``files`` (sha256 of everything under ``root``) and ``sizes`` and write
    ``manifest.json``."""
    files, sizes = {}, {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            name = path.relative_to(root).as_posix()
            files[name], sizes[name] = sha256_file(path), path.stat().st_size
    manifest = {"schema_version": SCHEMA_VERSION, **manifest, "files": files, "sizes": sizes}
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
    _remove_abandoned(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-",
                                    dir=target.parent))  # fmt: skip
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


def _remove_abandoned(target: Path) -> None:
    """Remove what an export to ``target`` killed midway left beside it: staging folders
    (never loadable: the manifest is written last, and they are not ``target``) and a
    replaced bundle not yet deleted. A folder of a process that still runs is kept."""
    for path in target.parent.glob(f".{target.name}.*"):
        kind, _, rest = path.name[len(target.name) + 2 :].partition("-")
        pid = rest.split("-", 1)[0]
        if kind not in ("partial", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or cannot tell: keep its folder
    return True


def verify_report(path: str | Path) -> dict[str, list[str]]:
    """Every problem of a bundle, file by file: ``missing``, ``changed`` (size or sha256
    differ), ``unlisted`` (present but not in the manifest, so never verified) and
    ``unsafe`` (listed paths that leave the bundle). ``open_bundle`` stops at the first."""
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a bundle (no {MANIFEST})",
                          hint="pass the folder written by 'edgert export'")  # fmt: skip
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}", hint="re-export") from exc
    _check_schema(manifest, manifest_path)
    report: dict[str, list[str]] = {"missing": [], "changed": [], "unlisted": [], "unsafe": []}
    sizes = manifest.get("sizes") or {}
    for relative, expected in manifest["files"].items():
        try:
            member = safe_member(root, relative)
        except BundleError:
            report["unsafe"].append(relative)
            continue
        if not member.is_file():
            report["missing"].append(relative)
        elif (relative in sizes and member.stat().st_size != sizes[relative]) or (
            sha256_file(member) != expected
        ):
            report["changed"].append(relative)
    for member in sorted(root.rglob("*")):
        name = member.relative_to(root).as_posix()
        if (
            (member.is_file() or member.is_symlink())
            and name != MANIFEST
            and name not in manifest["files"]
        ):
            report["unlisted"].append(name)
    return report
