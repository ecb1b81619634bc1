"""The command line: every command, JSON output, and errors printed as error: + hint:."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.cli import run

from edgert.cli import main
from edgert.errors import UnknownNameError


def test_devices_list_json_says_what_auto_picks(capsys):
    code, out, _ = run(capsys, "devices", "list", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["auto"]["id"] in {d["id"] for d in data["devices"] if d["runnable_here"]}
    assert len(data["devices"]) >= 10


def test_devices_list_table(capsys):
    code, out, _ = run(capsys, "devices", "list")
    assert code == 0
    assert "--device auto ->" in out


def test_unknown_device_prints_error_and_hint(capsys):
    code, out, err = run(capsys, "devices", "show", "cpu-generc")
    assert code == 1
    assert out == ""
    assert "error: unknown device 'cpu-generc'" in err
    assert "hint: did you mean 'cpu-generic'?" in err


def test_debug_env_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("EDGERT_DEBUG", "1")
    with pytest.raises(UnknownNameError):
        main(["devices", "show", "cpu-generc"])


def test_devices_show_and_validate(capsys, tmp_path):
    code, out, _ = run(capsys, "devices", "show", "snapdragon-8-gen3-npu", "--json")
    assert code == 0
    assert json.loads(out)["runtime"]["providers"] == ["ort-qnn"]
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "bad"\nname = "b"\nclass = "gpu"\n[runtime]\nprovders = ["ort-cpu"]\n')
    code, _, err = run(capsys, "devices", "validate", str(bad))
    assert code == 1
    assert "unknown key 'provders' (did you mean 'providers'?)" in err


def test_user_devices_dir(capsys, tmp_path):
    (tmp_path / "my-board.toml").write_text(
        'id = "my-board"\nname = "Mine"\nclass = "cpu"\n[runtime]\nproviders = ["ort-cpu"]\n'
    )
    code, out, _ = run(capsys, "devices", "list", "--json", "--devices-dir", str(tmp_path))
    assert code == 0
    assert "my-board" in {d["id"] for d in json.loads(out)["devices"]}


def test_plugins_list_json(capsys):
    code, out, _ = run(capsys, "plugins", "list", "--json")
    items = json.loads(out)["items"]
    kinds = {(i["kind"], i["name"]) for i in items}
    assert code == 0
    assert {
        ("provider", "ort-qnn"),
        ("decoder", "greedy"),
        ("export-step", "quantize"),
        ("family", "cnn"),
    } <= kinds
    cpu = next(i for i in items if i["name"] == "ort-cpu")
    assert cpu["available"] is True


def test_export_run_profile_round_trip(capsys, tmp_path):
    pytest.importorskip("torch")
    bundle = tmp_path / "digits"
    code, out, err = run(
        capsys, "export", "zoo:digits", "--device", "cpu-generic", "--out", str(bundle), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["validation"]["top1_agreement"] == 1.0
    code, _, err = run(
        capsys, "export", "zoo:digits", "--device", "cpu-generic", "--out", str(bundle)
    )
    assert code == 1
    assert "already exists" in err

    from edgert.exporters.zoo.digits import eval_data

    x, y = eval_data()
    np.save(tmp_path / "batch.npy", x[:4])
    code, out, err = run(
        capsys, "run", str(bundle), "--input", str(tmp_path / "batch.npy"), "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["provider"] == "ort-cpu"
    assert [int(p["labels"][0]) for p in report["predictions"]] == list(y[:4])

    code, out, err = run(capsys, "profile", str(bundle), "--runs", "5", "--warmup", "1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["provider"] == "ort-cpu"
    assert report["placement"]["ort-cpu"] > 0
    assert report["simulated"] is False
    assert set(report["latency_ms"]) >= {"p50", "p90", "p99"}
    assert set(report["load_ms"]) == {"first", "warm"}
    assert report["peak_rss_mb"] > 0
    assert report["bundle_bytes"] > 0

    code, out, _ = run(capsys, "profile", str(bundle), "--runs", "3")
    assert code == 0
    assert "p50 / p90 / p99" in out


def test_export_refuses_a_missing_dictionary_file(capsys, tmp_path):
    missing = tmp_path / "words.txt"
    code, _, err = run(capsys, "export", "zoo:speller", "--out", str(tmp_path / "b"),
                       "--words", str(missing))  # fmt: skip
    assert code == 1
    assert f"dictionary file not found: {missing}" in err
    assert not (tmp_path / "b").exists()


def test_run_errors(capsys, tmp_path, tiny_bundle):
    code, _, err = run(capsys, "run", str(tmp_path / "nope"), "--input", "x.npy")
    assert code == 1
    assert "error: bundle not found" in err
    assert "hint: export one first" in err
    np.save(tmp_path / "bad.npy", np.zeros((2, 7), np.float32))
    code, _, err = run(capsys, "run", str(tiny_bundle), "--input", str(tmp_path / "bad.npy"))
    assert code == 1
    assert "does not match the model input" in err


def test_profile_of_a_simulated_npu_bundle_is_labelled(capsys, digits_bundles):
    if "npu" not in digits_bundles:
        pytest.skip("onnxruntime-qnn not installed")
    code, out, _ = run(capsys, "profile", str(digits_bundles["npu"]), "--runs", "3", "--json")
    report = json.loads(out)
    assert code == 0
    from edgert.catalog import get_catalog

    assert report["simulated"] == get_catalog().providers.get("ort-qnn")().simulated()
    assert report["provider"] == "ort-qnn"
    assert set(report["placement"]) == {"ort-qnn"}


@pytest.mark.parametrize(
    ("source", "flag", "value", "family"),
    [
        ("zoo:digits", "--words", "words.txt", "seq2seq"),
        ("zoo:digits", "--validation-text", "texts.txt", "seq2seq"),
        ("zoo:speller", "--resolution", "160", "ofa"),
        ("zoo:speller", "--max-chunks", "2", "dolphin"),
        ("zoo:speller", "--input-shape", "1,8", "cnn"),
    ],
)
def test_export_refuses_options_of_another_family(capsys, tmp_path, source, flag, value, family):
    """An option the model's family does not take would be ignored without a word."""
    out = tmp_path / "b"
    code, _, err = run(capsys, "export", source, "--out", str(out), flag, value)
    assert code == 1
    assert f"{flag} does not apply to {source}" in err
    assert f"it is for {family}" in err
    assert f"hint: drop {flag}" in err
    assert not out.exists()
