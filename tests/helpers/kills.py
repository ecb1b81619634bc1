"""Exports killed with SIGKILL at chosen points, and what they leave behind: for the crash
test (tests/exporters/test_crash.py) and ``benchmarks/reliability.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# When to kill, as what the export has written so far (the staging folders and the steps'
# folders in the export's temporary directory).
POINTS = {
    "writing graphs": lambda tmp, out: any(tmp.glob("edgert-export-*/00-torch-to-onnx")),
    "quantizing": lambda tmp, out: any(tmp.glob("edgert-export-*/*-quantize")),
    "writing the bundle": lambda tmp, out: any(out.parent.glob(f".{out.name}.partial-*/*.onnx")),
}


def start_export(out: Path, device: Path, tmp: Path, force: bool = False) -> subprocess.Popen:
    """``edgert export zoo:digits`` to ``out`` in a process of its own (temp files in ``tmp``)."""
    argv = ["export", "zoo:digits", "--device", str(device), "--out", str(out)]
    code = f"from edgert.cli import main; main({[*argv, *(['--force'] if force else [])]!r})"
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def kill_at(point: str, out: Path, device: Path, tmp: Path, force: bool = False) -> bool:
    """Start an export and SIGKILL it once ``point`` is reached; whether it was reached."""
    process = start_export(out, device, tmp, force)
    reached = POINTS[point]
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if reached(tmp, out):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    process.wait()
    return False


def loadable(path: Path) -> bool:
    from edgert.bundle import open_bundle

    try:
        open_bundle(path)
    except Exception:
        return False
    return True


def kill_round(point: str, root: Path, device: Path) -> tuple[bool, list[str]]:
    """Kill an export to a new path and one replacing a complete bundle at ``point``, then
    export to both again. Whether a kill landed, and what broke (nothing, if all is well):
    the path must hold the previous complete bundle or nothing loadable, and the next
    export must succeed with no clean-up by hand."""
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    fresh, replaced = root / "fresh", root / "replaced"
    broken: list[str] = []
    first = start_export(replaced, device, tmp)
    if first.wait() != 0:
        return False, [f"the first export failed: {first.stderr.read().decode()[-400:]}"]
    before = (replaced / "manifest.json").read_bytes()

    killed = kill_at(point, fresh, device, tmp)
    if fresh.exists() and not loadable(fresh):
        broken.append("a killed new export left a folder that does not load")
    killed_too = kill_at(point, replaced, device, tmp, force=True)
    if replaced.exists() and not loadable(replaced):
        broken.append("a killed replacing export left a bundle that does not load")
    renamed = point == "writing the bundle"  # else killed before anything was renamed
    if killed_too and not renamed and (replaced / "manifest.json").read_bytes() != before:
        broken.append("a replacing export killed before renaming changed the bundle")
    for out in (fresh, replaced):  # the next exports need no clean-up
        process = start_export(out, device, tmp, force=out.exists())
        if process.wait() != 0:
            broken.append(f"the next export failed: {process.stderr.read().decode()[-400:]}")
        elif not loadable(out):
            broken.append("the next export does not load")
        if list(out.parent.glob(f".{out.name}.*")):
            broken.append("leftovers of the killed export remain")
    return killed or killed_too, broken
