"""Model families and built-in models: what a bundle's ``family`` field names, and
everything the CLI, the profiler and :func:`edgert.load` need to build or run one.

The core knows no family by name. A family plugin registers a :class:`Family` through
``register_families`` (and its built-in models through ``register_models``); the built-in
families use exactly these hooks. Exporter, runtime and commands are ``"module:attribute"``
strings, imported only when used, so the runtime never imports torch and a third-party
family costs nothing until it is needed. The export options class is given as a class: it
is a plain frozen dataclass (no torch) from which ``edgert export`` builds its flags.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from edgert.errors import ExportError, PluginError

if TYPE_CHECKING:
    from edgert.export import ExportOptions
    from edgert.profiles import DeviceProfile
    from edgert.providers import SessionInfo


@runtime_checkable
class LoadedModel(Protocol):
    """What :func:`edgert.load` returns, whatever the family, and all that ``edgert run``
    and ``edgert profile`` read of it: the opened bundle, the profile it runs with, and the
    session of its decoder (or only graph), whose ``placement`` the profile reports. Each
    family's runtime adds its own calls (``generate``/``stream`` for text families,
    ``classify``/``logits`` for classifiers) and, by convention, a ``provider`` property."""

    bundle: Any
    profile: DeviceProfile
    session_info: SessionInfo


class FamilyCommands(Protocol):
    """What ``edgert run``, ``edgert profile`` and ``edgert export`` ask of a family.

    ``run(model, request)`` reads the inputs named in the run request (a
    :class:`edgert.families.RunRequest`) and prints the results; ``profile(model, options,
    tick)`` times the family's workload and returns the report's family part (see
    :mod:`edgert.profiler`; its optional ``stages``, name -> percentiles, and
    ``throughput``, ``{"value", "unit"}``, are what reports compare and plot); ``profile_rows(report)`` gives the ``(metric, value)`` rows the
    table shows; ``export_lines(manifest)`` the lines the export report prints after the
    step timings. ``default_runs`` is ``(runs, warmup)`` when the user gives none.
    """

    default_runs: tuple[int, int]

    def run(self, model: Any, request: RunRequest) -> None: ...

    def profile(self, model: Any, options: Any, tick: Callable[[], None] | None) -> dict: ...

    def profile_rows(self, report: Mapping[str, Any]) -> list[tuple[str, str]]: ...

    def export_lines(self, manifest: Mapping[str, Any]) -> list[str]: ...


@dataclass(frozen=True)
class RunRequest:
    """The flags of one ``edgert run``, for the family's ``run``: it reads what it needs
    and refuses what it cannot use (``refuse``)."""

    bundle: str
    text: str | None = None
    input_path: str | None = None
    top_k: int = 3
    decoder: str | None = None  # None: the bundle's default
    options: Mapping[str, Any] = field(default_factory=dict)  # decoder options
    stop: tuple[str, ...] = ()
    truncate: bool = False
    context_path: str | None = None
    context_policy: str = "reject"
    stats: bool = False
    as_json: bool = False
    given: frozenset[str] = frozenset()  # flags given on the command line ("--input", ...)


@dataclass(frozen=True)
class Family:
    """A model family.

    Args:
        name: id stored in bundles.
        runtime: ``"module:Class"`` built as ``Class(bundle, profile, catalog,
            allow_fallback=..., threads=...)`` by :func:`edgert.load`.
        exporter: ``"module:function"`` called as ``function(options, profile, catalog)``
            by ``edgert export``; returns the opened bundle.
        options: the export options class, a frozen dataclass subclassing
            :class:`edgert.export.ExportOptions`; its other fields become ``edgert export``
            flags (see :func:`edgert.export.flag`).
        detect: ``function(source) -> bool``: whether this family claims a source given
            without ``--family``. Two claimants are an error naming both.
        commands: ``"module:object"`` implementing :class:`FamilyCommands`.
        prefixes: source prefixes that belong to this family alone (``"name:"``).
        opens: ``"module:function(path, device, allow_fallback, threads)"`` loading a
            folder that is not an edgert bundle (e.g. another tool's export), or None.
        claims_folder: ``function(path) -> bool`` telling which folders ``opens`` takes.
        quantization: default ``[export.quantization].method`` when a profile names none
            ("static-qdq" for models with calibration data, "dynamic" for text).
        description: one line for ``edgert plugins list``.
    """

    name: str
    runtime: str
    exporter: str
    options: type[ExportOptions]
    detect: Callable[[str], bool]
    commands: str
    prefixes: tuple[str, ...] = ()
    opens: str | None = None
    claims_folder: Callable[[Any], bool] | None = None
    quantization: str = "static-qdq"
    description: str = ""

    def runtime_class(self) -> Any:
        """Import and return the runtime class."""
        return resolve(self.runtime, f"runtime of family {self.name!r}")

    def exporter_function(self) -> Any:
        """Import and return the exporter function (imports torch)."""
        return resolve(self.exporter, f"exporter of family {self.name!r}")

    def cli(self) -> FamilyCommands:
        """Import and return the family's commands."""
        return resolve(self.commands, f"commands of family {self.name!r}")

    def flags(self) -> dict[str, dataclasses.Field]:
        """``--flag`` -> options field, for the fields that are not every family's."""
        from edgert.export import ExportOptions

        shared = {f.name for f in dataclasses.fields(ExportOptions)}
        return {
            "--" + f.metadata.get("flag", f.name.replace("_", "-")): f
            for f in dataclasses.fields(self.options)
            if f.name not in shared and f.metadata.get("cli", True)
        }


@dataclass(frozen=True)
class BuiltinModel:
    """A model that ships inside a package: ``edgert export zoo:<name>``.

    Args:
        name: the id after ``zoo:``.
        family: the family that exports it (no detection needed).
        source: what that family's exporter takes: ``"module:factory"``, or with
            ``folder=True`` ``"package:relative/folder"``, a folder inside an installed
            package.
        description: one line for ``edgert plugins list``.
    """

    name: str
    family: str
    source: str
    folder: bool = False
    description: str = ""

    def locate(self) -> str:
        """The source string for the family's exporter."""
        if not self.folder:
            return self.source
        package, _, relative = self.source.partition(":")
        return str(resources.files(package).joinpath(relative))


ZOO = "zoo:"


def resolve(target: str, what: str) -> Any:
    """Import ``"module:attribute"``, with an error naming ``what`` when that fails."""
    module_name, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except ModuleNotFoundError as exc:
        hint = (
            "exporting needs the export extra: pip install 'edgert[export]'"
            if exc.name in {"torch", "onnx", "onnxscript", "safetensors"}
            else None
        )
        raise PluginError(f"cannot import {what} ({target}): {exc}", hint=hint) from exc
    except AttributeError as exc:
        raise PluginError(f"{what}: {target} does not exist") from exc


def claimants(families: Iterator[Family], source: str) -> list[str]:
    """Families that claim ``source``: the owner of its prefix, else every ``detect``."""
    families = list(families)
    owners = [f.name for f in families if any(source.startswith(p) for p in f.prefixes)]
    if owners:
        return owners
    found = []
    for family in families:
        try:
            if family.detect(source):
                found.append(family.name)
        except Exception as exc:  # a plugin's detect must not break every export
            raise PluginError(
                f"family {family.name!r} failed to inspect {source!r}: {exc}",
                hint="pass --family to skip detection, and report it to the plugin's authors",
            ) from exc
    return found


def detect_family(families: Iterator[Family], source: str) -> str:
    """The one family that claims ``source``; an error when none or several do."""
    families = list(families)
    found = claimants(families, source)
    if len(found) == 1:
        return found[0]
    names = ", ".join(sorted(f.name for f in families))
    if not found:
        raise ExportError(
            f"no model family recognises {source!r}",
            hint=f"pass --family (installed: {names}); check the path or model id",
        )
    raise ExportError(
        f"{source!r} is claimed by several model families: {', '.join(sorted(found))}",
        hint="pass --family to choose one",
    )
