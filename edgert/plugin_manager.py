"""The plugin manager: built-ins first, then third-party entry points, then checks.

Built-ins are registered exactly like third-party plugins (pytest's ``default_plugins``),
so anything a built-in can do, an installed package can do too.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable

import pluggy

from edgert import hookspecs
from edgert.errors import PluginError

ENTRY_POINT_GROUP = "edgert"
DISABLE_ENV = "EDGERT_DISABLE_PLUGINS"

DEFAULT_PLUGINS = (
    "edgert.plugins.providers.ort_cpu",
    "edgert.plugins.providers.ort_cuda",
    "edgert.plugins.providers.ort_tensorrt",
    "edgert.plugins.providers.ort_qnn",
    "edgert.plugins.providers.ort_openvino",
    "edgert.plugins.providers.ort_coreml",
    "edgert.plugins.providers.ort_directml",
    "edgert.plugins.providers.ort_xnnpack",
    "edgert.plugins.providers.ort_nnapi",
    "edgert.plugins.decoding.greedy",
    "edgert.plugins.decoding.sampling",
    "edgert.plugins.decoding.beam",
    "edgert.plugins.decoding.aggressive",
    "edgert.plugins.decoding.lookup",
    "edgert.plugins.decoding.speculative",
    "edgert.plugins.families.cnn",
    "edgert.plugins.families.seq2seq",
    "edgert.plugins.families.dolphin",
    "edgert.plugins.families.ofa",
    "edgert.plugins.builtin_devices",
    "edgert.exporters.steps",
)


def blocked_names(extra: Iterable[str] = ()) -> list[str]:
    """Plugin names blocked by ``EDGERT_DISABLE_PLUGINS`` (comma separated) and ``extra``."""
    from_env = [name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",")]
    return [name for name in (*extra, *from_env) if name]


def get_plugin_manager(
    *, entry_points: bool = True, blocked: Iterable[str] = (), extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    """Build a plugin manager with built-ins, entry points and ``extra`` plugin objects.

    Args:
        entry_points: load third-party plugins from the ``edgert`` entry-point group.
        blocked: plugin names to block in addition to ``EDGERT_DISABLE_PLUGINS``.
        extra: plugin objects (modules or instances) to register, e.g. in tests.
    """
    pm = pluggy.PluginManager("edgert")
    pm.add_hookspecs(hookspecs)
    for name in blocked_names(blocked):
        pm.set_blocked(name)
    for name in DEFAULT_PLUGINS:
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(name), name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {exc.plugin!r} implements a hook edgert does not know: {exc}",
            hint="hook names are listed in edgert/hookspecs.py; check the spelling",
        ) from exc
    return pm
