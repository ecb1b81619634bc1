"""``edgert verify BUNDLE``: every file that differs from the manifest, and every one it
does not list (loading stops at the first problem; this command reports them all)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edgert.bundle import verify_report

LABELS = {
    "missing": "missing",
    "changed": "changed after export (size or sha256)",
    "unsafe": "listed with a path that leaves the bundle",
    "unlisted": "present but not listed (never verified, never loaded by edgert)",
}


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(bundle: Path, as_json: bool) -> None:
    """Check every file of BUNDLE against its manifest (sizes and sha256).

    Exits 1 when a listed file is missing, changed or unsafe; unlisted files are reported
    but do not fail (a copied folder may gain a .DS_Store).

    \b
    Example:
      edgert verify speller-bundle
    """
    report = verify_report(bundle)
    failed = any(report[k] for k in ("missing", "changed", "unsafe"))
    if as_json:
        click.echo(json.dumps({"bundle": str(bundle), "ok": not failed, **report}, indent=2))
    else:
        for kind, label in LABELS.items():
            for name in report[kind]:
                click.echo(f"{name}: {label}")
        if not failed:
            click.echo(f"{bundle}: every listed file matches its manifest")
    if failed:
        sys.exit(1)
