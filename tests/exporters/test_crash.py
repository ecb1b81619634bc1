"""An export killed with SIGKILL while writing graphs, while quantizing and while writing the
bundle leaves at the output path the previous complete bundle or nothing loadable, and the
next export there works with no clean-up by hand."""

from __future__ import annotations

import signal

import pytest
from helpers.bundles import full_int8_profile
from helpers.kills import POINTS, kill_round

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


@pytest.mark.parametrize("point", list(POINTS))
def test_a_killed_export_leaves_the_previous_bundle_or_nothing(point, tmp_path):
    device = full_int8_profile(tmp_path / "devices")
    killed, broken = kill_round(point, tmp_path / "out", device)
    assert killed, f"the export finished before {point}"
    assert broken == []
