"""A small validator that maps TOML/JSON tables onto frozen dataclasses.

Why not pydantic: the runtime keeps its dependencies light for devices. This covers what
profiles and options need: unknown keys (with "did you mean"), basic types, ``Literal``
choices, tuples and nested sections. Every error names the file, the table and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin, get_type_hints

from edgert.errors import DeviceProfileError


def build(cls: type, data: Mapping[str, Any], where: str, error: type = DeviceProfileError) -> Any:
    """Validate ``data`` against dataclass ``cls`` and return an instance.

    Args:
        cls: a (frozen) dataclass type; nested dataclass fields become sub-tables.
        data: the parsed table.
        where: a location prefix for messages, e.g. ``"devices/x.toml [runtime]"``.
        error: exception type to raise.
    """
    if not isinstance(data, Mapping):
        raise error(f"{where}: expected a table, got {type(data).__name__} {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    keys = {f.metadata.get("key", name): name for name, f in fields.items()}
    for key in data:
        if key not in keys:
            close = difflib.get_close_matches(key, list(keys), n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise error(
                f"{where}: unknown key {key!r}{suggestion}",
                hint=f"valid keys: {', '.join(sorted(keys))}",
            )
    values = {}
    for key, name in keys.items():
        field = fields[name]
        if key not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise error(f"{where}: missing required key {key!r}")
            continue
        values[name] = convert(hints[name], data[key], f"{where} {key}", error)
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Resolved field types, once per class: decoder options are built on every generate."""
    return get_type_hints(cls)


def convert(hint: Any, value: Any, where: str, error: type = DeviceProfileError) -> Any:
    """Check ``value`` against type ``hint`` and convert lists to tuples."""
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, f"{where} >", error)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise error(
                f"{where}: invalid value {value!r}{suggestion}",
                hint=f"valid values: {', '.join(repr(a) for a in args)}",
            )
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, where, error)
            except error as exc:
                problems.append(exc.message)
        raise error(problems[0] if len(problems) == 1 else f"{where}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise error(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(convert(item, v, f"{where}[{i}]", error) for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise error(f"{where}: expected a table, got {value!r}")
        return types.MappingProxyType(dict(value))
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise error(f"{where}: expected an integer, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise error(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def to_dict(obj: Any) -> Any:
    """A JSON-ready copy of a dataclass (tuples to lists, mappings to dicts)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.metadata.get("key", f.name): to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.init
        }
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj
