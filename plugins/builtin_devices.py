"""Registers the device profiles that ship with edgert (``devices/*.toml``)."""

from __future__ import annotations

from edgert.hookspecs import hookimpl
from edgert.profiles import builtin_devices_dir


@hookimpl
def register_device_dirs(register):
    """The shipped profiles come last, so user folders can override them by id."""
    register(builtin_devices_dir(), source=__name__)
