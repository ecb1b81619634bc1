"""Options shared by several commands, defined once."""

from __future__ import annotations

import os
from pathlib import Path

import click

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
