"""Options shared by several commands, defined once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from edgert.errors import InputError

DEVICES_ENV = "EDGERT_DEVICES_PATH"


def devices_dirs(values: tuple[Path, ...]) -> tuple[Path, ...]:
    """``--devices-dir`` values plus the folders in ``EDGERT_DEVICES_PATH``."""
    from_env = [Path(p) for p in os.environ.get(DEVICES_ENV, "").split(os.pathsep) if p]
    return (*values, *from_env)


devices_dir_option = click.option(
    "--devices-dir",
    "devices_dir",
    multiple=True,
    type=click.Path(path_type=Path),
    help=f"Extra folder of device-profile TOML files (repeatable; also ${DEVICES_ENV}).",
)
allow_fallback_option = click.option(
    "--allow-fallback",
    is_flag=True,
    default=None,
    help="Allow running on a later provider or CPU when the first one cannot; always reported.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
decoder_options_option = click.option(
    "--option", "-O", "extra", multiple=True, metavar="KEY=VALUE",
    help="Any decoder option, e.g. -O top_p=0.9 -O repetition_penalty=1.2.",
)  # fmt: skip
draft_option = click.option(
    "--draft", type=click.Path(path_type=Path), help="Text: draft bundle (--decoder speculative)."
)


def decoder_options(extra: tuple[str, ...], reserved: dict[str, str]) -> dict[str, Any]:
    """``-O key=value`` pairs; values are JSON where they parse (numbers, true, lists).

    ``reserved``: keys the command sets itself -> the flag to use instead.
    """
    options = {}
    for item in extra:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise InputError(f"-O expects KEY=VALUE, got {item!r}", hint="e.g. -O top_p=0.9")
        if key in reserved:
            raise InputError(f"-O {key}=... is set by the command", hint=f"use {reserved[key]}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
