"""The catalog: everything the plugins registered, collected once.

Hooks run here and nowhere else. Sessions, exporters and the CLI read plain registries
afterwards, so no pluggy call ever sits in a hot loop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from edgert.plugin_manager import get_plugin_manager
from edgert.registry import PathRegistry, Registry


@dataclass
class Catalog:
    """Registries of decoders, providers, export steps, families, built-in models and
    device folders."""

    pm: pluggy.PluginManager
    decoders: Registry = field(
        default_factory=lambda: Registry("decoder", ("name", "Options", "decode"))
    )
    providers: Registry = field(
        default_factory=lambda: Registry(
            "provider", ("name", "ort_name", "Options", "capabilities", "is_available")
        )
    )
    export_steps: Registry = field(default_factory=lambda: Registry("export step", ("name", "run")))
    families: Registry = field(
        default_factory=lambda: Registry(
            "family", ("name", "runtime", "exporter", "options", "detect", "commands")
        )
    )
    models: Registry = field(
        default_factory=lambda: Registry("built-in model", ("name", "family", "source"))
    )
    device_dirs: PathRegistry = field(default_factory=PathRegistry)

    def device_paths(self, extra: tuple[Path, ...] = ()) -> list[tuple[Path, str]]:
        """Folders to read device profiles from: user folders first, then plugins'."""
        return [(Path(p), "user") for p in extra] + [
            (Path(p), s) for p, s in self.device_dirs.paths
        ]


def load_catalog(pm: pluggy.PluginManager | None = None) -> Catalog:
    """Run every ``register_*`` hook once and return the filled catalog."""
    pm = pm or get_plugin_manager()
    catalog = Catalog(pm)
    pm.hook.register_providers(register=catalog.providers)
    pm.hook.register_decoders(register=catalog.decoders)
    pm.hook.register_export_steps(register=catalog.export_steps)
    pm.hook.register_families(register=catalog.families)
    pm.hook.register_models(register=catalog.models)
    pm.hook.register_device_dirs(register=catalog.device_dirs)
    return catalog


@functools.cache
def get_catalog() -> Catalog:
    """The process-wide catalog, built on first use (not at import)."""
    return load_catalog()
