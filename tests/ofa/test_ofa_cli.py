"""``edgert ofa nets`` and ``edgert ofa table`` on the command line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("ofa")

from helpers.cli import run


def test_nets_lists_the_published_ids(capsys):
    code, out, _ = run(capsys, "ofa", "nets", "--json")
    nets = json.loads(out)
    assert code == 0
    assert nets["ofa_resnet50"]["supernet"] == "OFAResNets"
    assert {n["supernet"] for n in nets.values()} == {
        "OFAMobileNetV3", "OFAProxylessNASNets", "OFAResNets",
    }  # fmt: skip


def test_table_command_writes_a_table_for_the_profile(capsys, tmp_path):
    spec = tmp_path / "one-choice.json"
    spec.write_text(json.dumps({"supernet": "OFAProxylessNASNets", "args": {
        "n_classes": 5, "ks_list": [3], "expand_ratio_list": [3], "depth_list": [1, 2]}}))  # fmt: skip
    out = tmp_path / "table.json"
    code, printed, _ = run(capsys, "ofa", "table", "--supernet", str(spec), "--device",
                           "cpu-generic", "--resolution", "32", "--runs", "3", "--warmup", "1",
                           "--fit-subnets", "2", "--out", str(out), "--json")  # fmt: skip
    assert code == 0
    summary = json.loads(printed)
    assert summary["device"] == "cpu-generic"
    assert summary["provider"] == "ort-cpu"
    table = json.loads(out.read_text())
    assert table["supernet"]["supernet"] == "OFAProxylessNASNets"
    # stem, the fixed first block, one entry per stage's first and later blocks
    # (the last stage has a single block), and the head
    assert len(table["units"]) == 1 + 1 + 5 * 2 + 1 + 1
    assert all(entry["ms"] >= 0 and entry["macs"] > 0 for entry in table["units"].values())
    assert table["correction"]["fitted_on"] == 2
