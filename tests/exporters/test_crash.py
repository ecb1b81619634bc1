"""An export killed with SIGKILL while writing graphs, while quantizing and while writing the
bundle leaves at the output path the previous complete bundle or nothing loadable, and the
next export there works with no clean-up by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.bundles import full_int8_profile

from edgert.bundle import open_bundle

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# When to kill, as what the export has written so far (the staging folders and the steps'
# folders in the export's temporary directory).
POINTS = {
    "writing graphs": lambda tmp, out: any(tmp.glob("edgert-export-*/00-torch-to-onnx")),
    "quantizing": lambda tmp, out: any(tmp.glob("edgert-export-*/*-quantize")),
    "writing the bundle": lambda tmp, out: any(out.parent.glob(f".{out.name}.partial-*/*.onnx")),
}


def start_export(out, device, tmp, force=False):
    argv = ["export", "zoo:digits", "--device", str(device), "--out", str(out)]
    code = f"from edgert.cli import main; main({[*argv, *(['--force'] if force else [])]!r})"
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def kill_at(point, out, device, tmp, force=False):
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


def loadable(path):
    try:
        open_bundle(path)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("point", list(POINTS))
def test_a_killed_export_leaves_the_previous_bundle_or_nothing(point, tmp_path):
    device = full_int8_profile(tmp_path / "devices")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    fresh, replaced = tmp_path / "fresh", tmp_path / "replaced"
    assert start_export(replaced, device, tmp).wait() == 0  # the previous complete bundle
    before = (replaced / "manifest.json").read_bytes()

    killed = kill_at(point, fresh, device, tmp)
    assert not fresh.exists() or loadable(fresh)
    killed_too = kill_at(point, replaced, device, tmp, force=True)
    assert killed or killed_too, f"the export finished before {point}"
    if replaced.exists():  # the previous bundle, or the new one if the kill came after
        assert loadable(replaced)
    if killed_too and point != "writing the bundle":  # killed before anything was renamed
        assert (replaced / "manifest.json").read_bytes() == before

    # The next exports need no clean-up: what the killed ones left is removed.
    for out in (fresh, replaced):
        process = start_export(out, device, tmp, force=out.exists())
        assert process.wait() == 0, process.stderr.read().decode()
        assert loadable(out)
        assert not list(out.parent.glob(f".{out.name}.*")), "leftovers of the killed export"
