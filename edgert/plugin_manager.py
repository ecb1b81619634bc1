"""The plugin manager: built-ins first, then third-party entry points, then checks.

Built-ins are registered exactly like third-party plugins (pytest's ``default_plugins``),
so anything a built-in can do, an installed package can do too.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from collections.abc import Iterable

import pluggy

from edgert import hookspecs
from edgert.errors import PluginError

ENTRY_POINT_GROUP = "edgert"
DISABLE_ENV = "EDGERT_DISABLE_PLUGINS"

BUILTIN_DISTRIBUTION = "edgert"


@functools.cache
def builtin_plugins() -> tuple[str, ...]:
    """The built-in plugins: the ``edgert`` entry points of edgert's own distribution.

    They are declared in ``pyproject.toml`` exactly as a third-party package declares its
    plugins; the core names none of them. Registered first, in that order, so their
    names (e.g. ``edgert.plugins.providers.ort_qnn``) are what ``EDGERT_DISABLE_PLUGINS``
    blocks.
    """
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    own = [ep.value for ep in points if ep.dist and ep.dist.name == BUILTIN_DISTRIBUTION]
    return tuple(dict.fromkeys(own))


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
    if not builtin_plugins():
        raise PluginError(
            "edgert's built-in plugins are not registered: its distribution metadata lists no "
            f"'{ENTRY_POINT_GROUP}' entry points",
            hint="install edgert (pip install -e . in a checkout) instead of running it from "
            "the source folder",
        )
    for name in blocked_names(blocked):
        pm.set_blocked(name)
    for name in builtin_plugins():
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
