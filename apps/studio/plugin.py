"""Registers ``edgert app`` through the ``register_commands`` hook, as any plugin adds a
command: the core CLI does not know the app exists."""

from __future__ import annotations

import edgert


@edgert.hookimpl
def register_commands(cli):
    from .command import app

    cli.add_command(app, name="app")
