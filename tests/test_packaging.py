"""The wheel: folders install under ``edgert.``, profiles ship as data, the CLI works."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(dist.glob("edgert-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    assert not (site / "plugins").exists()
    assert not (site / "exporters").exists()
    assert (site / "edgert" / "plugins" / "providers" / "ort_qnn.py").is_file()
    assert (site / "edgert" / "devices" / "snapdragon-8-gen3-npu.toml").is_file()
    edgert_cli = env_dir / "bin" / "edgert"
    devices = json.loads(
        subprocess.run(
            [str(edgert_cli), "devices", "list", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert len(devices["devices"]) >= 10
    assert all(str(site) in d["source"] for d in devices["devices"])
    plugins = json.loads(
        subprocess.run(
            [str(edgert_cli), "plugins", "list", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert {"ort-cpu", "greedy", "cnn", "ofa"} <= {i["name"] for i in plugins["items"]}
    assert (site / "edgert" / "exporters" / "ofa" / "nets.json").is_file()
    zoo = site / "edgert" / "exporters" / "zoo"
    for folder in ("speller/model", "speller/draft", "commands"):  # the embedded models' weights
        assert (zoo / folder / "model.safetensors").is_file(), folder
    assert (zoo / "commands" / "heldout.npz").is_file()
    nets = subprocess.run(
        [str(edgert_cli), "ofa", "nets", "--json"], capture_output=True, text=True, check=True
    )  # the OFA plugin's commands load without torch
    assert "ofa_resnet50" in json.loads(nets.stdout)
    for asset in ("index.html", "app.js", "style.css"):  # the app's page ships in the wheel
        assert (site / "edgert" / "apps" / "studio" / "static" / asset).is_file()
    assert not (site / "apps").exists()
    app_help = subprocess.run(
        [str(edgert_cli), "app", "--help"], capture_output=True, text=True, check=True
    )  # registered through the plugin hook, importable without the web extra
    assert "--tui" in app_help.stdout
    torch_free = subprocess.run(
        [str(python), "-c", "import torch"], capture_output=True, check=False
    )
    assert torch_free.returncode != 0, "the runtime wheel must not pull in torch"
