"""Typed registries that plugins fill through the ``register`` callbacks of the hooks.

A registry refuses duplicate names (naming both sources) instead of letting the last
registration win: pluggy calls implementations in LIFO order, and users should never have
to reason about that order. To replace a built-in, block it with ``EDGERT_DISABLE_PLUGINS``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from edgert.errors import PluginError, UnknownNameError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


class Registry(Generic[T]):
    """Name -> item, with the module each item came from.

    Args:
        kind: what is registered ("decoder", "provider", ...), used in messages.
        required: attributes every item must have; checked at registration so a broken
            plugin fails when the catalog loads, not in the middle of a run.
    """

    def __init__(self, kind: str, required: tuple[str, ...] = ("name",)) -> None:
        self.kind = kind
        self.required = required
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    def __call__(self, item: T, *, source: str | None = None) -> T:
        """Register ``item`` under ``item.name``; returns it so it works as a decorator."""
        if source is None:  # a class names its module; an instance (a Family) its caller's
            defined = isinstance(item, type) or callable(item)
            caller = sys._getframe(1).f_globals.get("__name__")
            source = (getattr(item, "__module__", None) if defined else caller) or repr(item)
        missing = [attr for attr in self.required if not hasattr(item, attr)]
        if missing:
            raise PluginError(
                f"{self.kind} {item!r} from {source} lacks {', '.join(missing)}",
                hint=f"a {self.kind} needs the attributes: {', '.join(self.required)}",
            )
        name = item.name  # type: ignore[attr-defined]
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{self.kind} name {name!r} from {source} is not a lowercase, hyphenated id",
                hint="use names like 'greedy' or 'ort-qnn'",
            )
        if name in self._items:
            raise PluginError(
                f"duplicate {self.kind} {name!r}: registered by {self._sources[name]} and by {source}",
                hint="uninstall one of them, or block one with EDGERT_DISABLE_PLUGINS=<plugin name>",
            )
        self._items[name] = item
        self._sources[name] = source
        return item

    def get(self, name: str) -> T:
        """Look ``name`` up, or raise ``UnknownNameError`` listing the choices."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                self.kind,
                name,
                self._items,
                hint="run 'edgert plugins list' to see what is installed",
            ) from None

    def source(self, name: str) -> str:
        """The module that registered ``name``."""
        return self._sources[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs, sorted by name."""
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class PathRegistry:
    """Folders of device-profile TOML files, in registration order."""

    def __init__(self) -> None:
        self.paths: list[tuple[Any, str]] = []

    def __call__(self, path: Any, *, source: str | None = None) -> None:
        """Add ``path``; ``source`` names the plugin for ``edgert plugins list``."""
        self.paths.append((path, source or "unknown"))
