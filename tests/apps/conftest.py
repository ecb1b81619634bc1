"""One folder of bundles the app serves in these tests: the embedded speller and its draft
(fp32, CPU), the embedded digits classifier and a tiny decoder-decoder model."""

from __future__ import annotations

import shutil

import pytest
from helpers.cli import run_cli


@pytest.fixture(scope="session")
def studio_root(tmp_path_factory, digits_bundles, dolphin_bundles):
    root = tmp_path_factory.mktemp("studio")
    for name, source in (("speller", "zoo:speller"), ("speller-draft", "zoo:speller-draft")):
        code, _, err = run_cli(
            "export", source, "--device", "cpu-generic", "--out", str(root / name)
        )
        assert code == 0, err
    shutil.copytree(digits_bundles["fp32"], root / "digits")
    shutil.copytree(dolphin_bundles["dolphin"], root / "dolphin")
    return root
