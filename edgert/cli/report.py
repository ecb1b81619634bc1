"""Output every command shares, for the core's commands and the families' alike."""

from __future__ import annotations

from typing import Any

import click


def fallback(info: Any) -> None:
    """Say where a session fell back from its first provider (always reported)."""
    for note in info.fallback:
        click.secho(f"fallback: {note}", fg="yellow", err=True)


def ms(stats: dict | None) -> str:
    """``p50 / p90 / p99 ms`` of a percentiles dict."""
    if not stats:
        return "n/a"
    return f"{stats['p50']:.3f} / {stats['p90']:.3f} / {stats['p99']:.3f} ms"
