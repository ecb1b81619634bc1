"""``python -m edgert``: the ``edgert`` command (where its script is not on PATH)."""

from __future__ import annotations

from edgert.cli import main

main()
