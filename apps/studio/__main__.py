"""``python -m apps.studio`` (from a checkout) or ``python -m edgert.apps.studio``."""

from __future__ import annotations

from .command import app

app(prog_name="studio")
