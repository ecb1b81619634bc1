"""Hook specifications for edgert plugins.

A plugin is a module with functions marked ``@edgert.hookimpl`` and named after a hook
below, exposed through the ``edgert`` entry-point group of its distribution::

    [project.entry-points.edgert]
    my_qnn = "my_package.qnn_provider"

Every hook hands over a ``register`` callback: call it once per thing you add. Hooks run
once, while the catalog is loaded; nothing here is ever called per token or per inference.
Built-in plugins use exactly these hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from edgert.registry import PathRegistry, Registry

hookspec = pluggy.HookspecMarker("edgert")
hookimpl = pluggy.HookimplMarker("edgert")


@hookspec
def register_decoders(register: Registry) -> None:
    """Register decoding strategies.

    Call ``register(cls)`` once per class. ``cls.name`` ("greedy", "beam", ...) is what
    users pass to ``edgert run --decoder``; ``cls.Options`` is a frozen dataclass of its
    options and ``cls().decode(model, prompt_ids, options)`` yields token ids.
    """


@hookspec
def register_providers(register: Registry) -> None:
    """Register execution providers, e.g. ``register(QnnProvider)`` for "ort-qnn".

    A provider class subclasses :class:`edgert.providers.Provider`: a ``name``, the ONNX
    Runtime ``ort_name``, a frozen ``Options`` dataclass filled from the device profile,
    ``capabilities`` and ``is_available()``.
    """


@hookspec
def register_export_steps(register: Registry) -> None:
    """Register ONNX -> ONNX export steps that device profiles list in ``[export].steps``.

    A step has a ``name`` and ``run(artifact, ctx) -> artifact``; it writes a new file and
    never changes its input.
    """


@hookspec
def register_families(register: Registry) -> None:
    """Register model families: ``register(edgert.families.Family(...))``.

    A family carries its export options class, ``detect(source)``, runtime, exporter and
    commands (what ``edgert run`` / ``profile`` / ``export`` do with it); exporter, runtime
    and commands are ``"module:attribute"`` strings so torch is imported only when exporting.
    """


@hookspec
def register_models(register: Registry) -> None:
    """Register built-in models, ``edgert export zoo:<name>``: call
    ``register(edgert.families.BuiltinModel(name, family, source))`` once per model."""


@hookspec
def register_device_dirs(register: PathRegistry) -> None:
    """Register a folder of device-profile TOML files shipped by a plugin."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``edgert`` CLI, e.g. ``edgert ofa table ...``."""
