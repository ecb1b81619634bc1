"""Running the command line in-process, as the CLI tests do."""

from __future__ import annotations

from edgert.cli import main


def run(capsys, *argv):
    """Run ``edgert argv`` in-process; return (exit code, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
