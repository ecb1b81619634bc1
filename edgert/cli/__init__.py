"""The ``edgert`` command: a click group, its built-in commands and plugin commands.

``main()`` prints every ``EdgertError`` as ``error:`` + ``hint:`` and exits 1; other
exceptions are bugs and show a traceback. ``EDGERT_DEBUG=1`` shows tracebacks for all.
"""

from __future__ import annotations

import os
import sys

import click

from edgert import __version__
from edgert.errors import EdgertError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgert")
def cli() -> None:
    """Export small models for a device profile, run them, and profile them.

    \b
    Examples:
      edgert devices list
      edgert export zoo:digits --device auto --out digits-bundle
      edgert run digits-bundle --input images.npy
      edgert profile digits-bundle --runs 200
    """


def _add_commands(group: click.Group) -> None:
    from edgert.catalog import get_catalog
    from edgert.cli import devices, export, plugins, profile, run, verify

    group.add_command(export.build_command(get_catalog()))
    group.add_command(run.run)
    group.add_command(profile.profile)
    group.add_command(devices.devices)
    group.add_command(plugins.plugins)
    group.add_command(verify.verify)


def build_cli() -> click.Group:
    """The group with built-in commands and those plugins add via ``register_commands``."""
    from edgert.catalog import get_catalog

    _add_commands(cli)
    get_catalog().pm.hook.register_commands(cli=cli)
    return cli


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    debug = os.environ.get("EDGERT_DEBUG") not in (None, "", "0")
    try:
        build_cli().main(args=argv, prog_name="edgert", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EdgertError as exc:
        if debug:
            raise
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(1)
