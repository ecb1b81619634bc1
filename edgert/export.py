"""The export pipeline: a family exporter makes the first ONNX graphs, then the steps the
device profile lists turn them into the final ones, each in its own sub-directory.

Most steps work on one graph at a time (``scope = "graph"``) and run for every graph of
the bundle (a classifier has one, an encoder-decoder model two). ``validate`` works on
the whole bundle (``scope = "bundle"``) and calls the family's validator, because only the
family knows what "the same output as the source model" means for it.

Steps never modify their input, so a failed export can be inspected step by step
(``--keep-intermediate``) and a step can be retried alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from edgert.errors import ExportError
from edgert.profiles import check_steps

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.families import Family
    from edgert.profiles import DeviceProfile


@dataclass(frozen=True)
class Artifact:
    """An ONNX model file produced by a step."""

    path: Path
    precision: str  # fp32 | fp16 | int8
    opset: int


Validator = Callable[[dict[str, Artifact], "ExportContext"], dict[str, Any]]


@dataclass
class ExportContext:
    """What steps may read: profile, data for calibration/validation, and a report to fill.

    Args:
        profile: the device profile being exported for.
        catalog: registries (providers for validation sessions).
        family: the model family.
        workdir: where steps write their sub-directories.
        validator: the family's check of the final graphs against the source model; returns
            the results stored in the manifest and raises ``ValidationMismatchError``.
        calibration: calibration inputs of the current graph for static quantization.
        static_dims: dim_param -> value pinned by ``fix-shapes`` for the current graph.
        per_graph: role -> field overrides (``calibration``, ``static_dims``) per graph.
        role: the graph a graph-scoped step is working on.
        extra: family data the validator needs (reference model, samples, ...).
        emulated: graph path -> ``qdq`` | ``integer`` for graphs whose full-range int8
            products this host would compute wrongly: validation emulates them.
    """

    profile: DeviceProfile
    catalog: Catalog
    family: Family
    workdir: Path
    validator: Validator
    calibration: np.ndarray | None = None
    static_dims: dict[str, int] = field(default_factory=dict)
    per_graph: dict[str, dict[str, Any]] = field(default_factory=dict)
    role: str = "model"
    allow_fallback: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    emulated: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=lambda: {"steps": [], "validation": None})

    def for_graph(self, role: str) -> ExportContext:
        """This context as seen by a step working on graph ``role`` (shares ``report``)."""
        return dataclasses.replace(self, role=role, **self.per_graph.get(role, {}))

    @property
    def quantization_method(self) -> str:
        """This graph's method: per-graph override, the profile's, or the family's default."""
        q = self.profile.export.quantization
        method = q.graph_methods.get(self.role, q.method)
        return self.family.quantization if method == "family-default" else method


class ExportStep(Protocol):
    """An ONNX -> ONNX step registered through ``register_export_steps``.

    ``scope = "graph"`` steps implement ``run(artifact, ctx, out_dir)`` and run once per
    graph; ``scope = "bundle"`` steps implement ``run_bundle(artifacts, ctx, out_dir)``.
    """

    name: ClassVar[str]

    def run(self, artifact: Artifact, ctx: ExportContext, out_dir: Path) -> Artifact:
        """Write a new model into ``out_dir`` and return it; never change ``artifact``."""
        ...


def overall_precision(artifacts: dict[str, Artifact]) -> str:
    """The bundle's precision: the lowest any of its graphs uses."""
    precisions = {a.precision for a in artifacts.values()}
    return next((p for p in ("int4", "int8", "fp16") if p in precisions), "fp32")


def run_steps(first: dict[str, Artifact], ctx: ExportContext) -> dict[str, Artifact]:
    """Run the profile's steps in order on every graph, recording each in ``ctx.report``."""
    check_steps(ctx.profile)
    artifacts = dict(first)
    for index, name in enumerate(ctx.profile.export.steps, start=1):
        step = ctx.catalog.export_steps.get(name)()
        started = time.perf_counter()
        out_dir = ctx.workdir / f"{index:02d}-{name}"
        try:
            if getattr(step, "scope", "graph") == "bundle":
                step.run_bundle(artifacts, ctx, out_dir)
            else:
                for role, artifact in artifacts.items():
                    graph_dir = out_dir / role
                    graph_dir.mkdir(parents=True, exist_ok=True)
                    artifacts[role] = step.run(artifact, ctx.for_graph(role), graph_dir)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"{type(exc).__name__}: {exc}",
                step=name,
                hint="rerun with EDGERT_DEBUG=1 for the traceback and --keep-intermediate DIR "
                "to inspect each step's output",
            ) from exc
        ctx.report["steps"].append(
            {
                "name": name,
                "seconds": round(time.perf_counter() - started, 3),
                "precision": sorted({a.precision for a in artifacts.values()}),
                "bytes": sum(a.path.stat().st_size for a in artifacts.values()),
            }
        )
    return artifacts


def check_output(out: Path, force: bool) -> None:
    """Refuse an existing output before any work is done (the staged rename checks again)."""
    from edgert.bundle import refuse_existing

    refuse_existing(out, force)


def first_graphs(workdir: Path, export: Callable[[Path], dict[str, Path]]) -> dict[str, Path]:
    """Run a family's torch -> ONNX export into ``workdir/00-torch-to-onnx``; failures that
    are not already an ``ExportError`` are reported as step ``torch-to-onnx``."""
    out_dir = workdir / "00-torch-to-onnx"
    out_dir.mkdir()
    try:
        return export(out_dir)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{type(exc).__name__}: {exc}", step="torch-to-onnx") from exc


def graph_entries(names: dict[str, list[str]], *roles: str) -> list[dict[str, Any]]:
    """Manifest ``graphs``: ``<role>.onnx`` with the ``<role>_inputs`` / ``<role>_outputs``
    names of a family's graph contract, for each role."""
    return [
        {
            "role": role,
            "file": f"{role}.onnx",
            "inputs": names[f"{role}_inputs"],
            "outputs": names[f"{role}_outputs"],
        }
        for role in roles
    ]


def provenance(source: str, **extra: Any) -> dict[str, Any]:
    """Where a bundle came from: source, export time, host and library versions."""
    import datetime as dt
    import importlib.metadata
    import platform

    versions = {}
    for dist in ("edgert", "onnx", "onnxruntime", "torch", "transformers"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "source": source,
        **extra,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": f"{platform.system()} {platform.machine()}",
        "versions": versions,
    }


def run_steps_keeping(
    first: dict[str, Artifact], ctx: ExportContext, keep: Path | None
) -> dict[str, Artifact]:
    """``run_steps``, copying every step's output to ``keep`` afterwards, also on failure
    (that is when the intermediate graphs are most useful)."""
    import shutil

    try:
        return run_steps(first, ctx)
    finally:
        if keep:
            shutil.copytree(ctx.workdir, keep, dirs_exist_ok=True)


@dataclass(frozen=True)
class ExportOptions:
    """The options every family's export takes (``edgert export``'s own flags).

    A family subclasses it with its own fields; those declared with :func:`flag` metadata
    (or plain fields, offered as ``--field-name`` strings) become ``edgert export`` flags.
    """

    source: str
    out: Path
    force: bool = False  # replace an existing bundle (only once the new one is complete)
    allow_fallback: bool | None = None
    keep_intermediate: Path | None = None  # copy every step's output here


def flag(
    default: Any = None,
    help: str = "",
    *,
    parse: Callable[[str], Any] | None = None,
    name: str | None = None,
) -> Any:
    """A family option offered as ``edgert export --NAME``.

    Args:
        default: the option's default (``False`` makes an on/off flag).
        help: the flag's help line.
        parse: turns the command-line string into the field's value (``Path``, ``int``, a
            file reader); raise ``ValueError`` or ``ExportError`` for a bad value.
        name: the flag when it differs from the field name with ``-`` for ``_``.
    """
    metadata: dict[str, Any] = {"help": help}
    if parse is not None:
        metadata["parse"] = parse
    if name is not None:
        metadata["flag"] = name
    return field(default=default, metadata=metadata)


def read_lines(path: Path, what: str) -> tuple[str, ...]:
    """The non-blank lines of a UTF-8 text file, stripped (texts, or dictionary words)."""
    if not path.is_file():
        raise ExportError(f"{what} file not found: {path}", hint="pass the path of a text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{what} file {path} is not UTF-8 text: {exc}") from exc
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def lines_of(what: str) -> Callable[[str], tuple[str, ...]]:
    """A ``parse`` for flags naming a file of one entry per line; an empty file is refused
    (a file named on the command line is meant to hold something)."""

    def parse(value: str) -> tuple[str, ...]:
        lines = read_lines(Path(value), what)
        if not lines:
            raise ExportError(f"{what} file {value} is empty", hint="write one entry per line")
        return lines

    return parse


GraphsFn = Callable[[Path], dict[str, Path]]
FilesFn = Callable[[Path, dict[str, Artifact], ExportContext], dict[str, Any]]


def export_bundle(
    options: ExportOptions,
    profile: DeviceProfile,
    catalog: Catalog,
    *,
    family: str,
    graphs: GraphsFn,
    validator: Validator,
    extra: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    prepare: Callable[[dict[str, Path], ExportContext], None] | None = None,
    files: FilesFn,
) -> Any:
    """The one export sequence every family runs, so that each gets the same guarantees:
    nothing written until the bundle is complete and validated, then one atomic rename.

    1. ``graphs(out_dir)`` writes the first ONNX graphs (role -> path; torch -> ONNX);
    2. ``prepare(paths, ctx)`` may fill per-graph data (calibration traces);
    3. the profile's steps run on every graph (validation among them, by ``validator``);
    4. the final graphs are copied in as ``<role>.onnx`` and ``files(staging, final, ctx)``
       writes the family's other files and returns its part of the manifest;
    5. the manifest (with checksums) is written, the staged folder renamed into place and
       opened (verified) as the returned :class:`edgert.bundle.Bundle`.

    ``extra`` is what the family's validator reads (``ctx.extra``); ``context`` sets other
    :class:`ExportContext` fields for the steps (``calibration``, ``static_dims``).
    ``files`` returns the family's own manifest keys (``graphs``, tokenizer files, ...);
    the keys every bundle has (family, device, precision, opset, validation, kernels,
    quantization, steps) come from here.
    """
    import shutil
    import tempfile

    from edgert.bundle import open_bundle, staged_directory, write_manifest

    check_steps(profile)
    check_output(options.out, options.force)
    with (
        tempfile.TemporaryDirectory(prefix="edgert-export-") as tmp,
        staged_directory(options.out, overwrite=options.force) as staging,
    ):
        workdir = Path(tmp)
        ctx = ExportContext(
            profile=profile,
            catalog=catalog,
            family=catalog.families.get(family),
            workdir=workdir,
            validator=validator,
            allow_fallback=options.allow_fallback,
            extra=dict(extra or {}),
            **(context or {}),
        )
        paths = first_graphs(workdir, graphs)
        if prepare is not None:
            prepare(paths, ctx)
        first = {role: Artifact(path, "fp32", profile.export.opset) for role, path in paths.items()}
        final = run_steps_keeping(first, ctx, options.keep_intermediate)
        for role, artifact in final.items():
            shutil.copy2(artifact.path, staging / f"{role}.onnx")
        manifest = {
            "family": family,
            "device": {"id": profile.id, "profile": profile.to_dict()},
            "precision": overall_precision(final),
            "opset": max(artifact.opset for artifact in final.values()),  # steps may raise it
            **files(staging, final, ctx),
            "validation": ctx.report["validation"],
            "kernels": ctx.report.get("kernels"),
            "quantization": ctx.report.get("quantization"),
            "steps": ctx.report["steps"],
        }
        write_manifest(staging, manifest)
    return open_bundle(options.out)
