"""Broken decoder-decoder sources fail with an error that says what and how to fix it,
and leave no bundle behind."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from helpers.dolphin_models import export, make_composition, make_dolphin

from edgert.errors import ExportError


def refused(source, out, match, device="cpu-generic"):
    with pytest.raises(ExportError, match=match) as info:
        export(source, out, device=device)
    assert not out.exists()  # nothing half-written under the requested name
    return info.value


def test_checkpoint_without_projector_weights(tmp_path):
    source = make_dolphin(tmp_path / "src", drop=("model.context_encoder.projector.",))
    error = refused(source, tmp_path / "out", "no projector weights")
    assert "context_projection.weight" in error.hint


def test_projector_widths_that_do_not_match_the_decoders(tmp_path):
    source = make_composition(tmp_path / "main-width", projector_widths=(32, 40))
    error = refused(source, tmp_path / "out", r"maps width 32 -> 40.*main decoder 48")
    assert "32 -> 48" in error.hint
    source = make_composition(tmp_path / "context-width", projector_widths=(30, 48))
    refused(source, tmp_path / "out", r"maps width 30 -> 48, but the context encoder is 32")


def test_memory_token_count_mismatch(tmp_path):
    source = make_dolphin(tmp_path / "dolphin", slots=3, memory_size=5)
    error = refused(source, tmp_path / "out", "memory token count mismatch: the config says 5")
    assert "memory_size" in error.hint
    source = make_composition(tmp_path / "comp", slots=4, memory_slots=7)
    refused(source, tmp_path / "out", "says 7 memory slots, the context tokenizer has 4")


def test_tokenizer_without_memory_tokens(tmp_path):
    source = make_dolphin(tmp_path / "src", slots=None)
    error = refused(source, tmp_path / "out", r"no memory tokens \[memory_0\]")
    assert "special tokens" in error.hint


def test_not_a_dolphin_checkpoint(tmp_path, dolphin_sources):
    folder = tmp_path / "plain"
    folder.mkdir()
    config = json.loads((dolphin_sources["dolphin"] / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "qwen2"}))
    refused(folder, tmp_path / "out", "not a Dolphin checkpoint")
    refused(tmp_path / "missing.toml", tmp_path / "out", "not found")
    bad = tmp_path / "bad.toml"
    bad.write_text('[dolphin]\ncontext_encoder = "a"\nmain_decodr = "b"\nprojector = "p"\n')
    refused(bad, tmp_path / "out", "main_decodr")


def test_static_profile_with_too_small_buffers(dolphin_sources, tmp_path):
    profile = tmp_path / "tiny-npu.toml"
    shipped = (resources.files("edgert.devices") / "snapdragon-8-gen3-npu.toml").read_text()
    profile.write_text(shipped.replace('id = "snapdragon-8-gen3-npu"', 'id = "tiny-npu"')
                       .replace("max_total_length = 256", "max_total_length = 10"))  # fmt: skip
    error = refused(dolphin_sources["dolphin"], tmp_path / "out", "holds 10 decoder positions",
                    device=str(profile))  # fmt: skip
    assert "max_total_length" in error.hint


def test_cli_export_detects_the_family(dolphin_sources, tmp_path, capsys):
    from helpers.cli import run

    out = tmp_path / "cli-bundle"
    code, stdout, err = run(capsys, "export", str(dolphin_sources["composition"]), "--device",
                            "cpu-generic", "--out", str(out), "--max-chunks", "2", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout)
    assert report["family"] == "dolphin" and report["validation"]["greedy_identical"] is True
    assert json.loads((out / "manifest.json").read_text())["dolphin"]["max_chunks"] == 2


def test_unreachable_hub_id_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refused(
        "edgert-tests/no-such-dolphin",
        tmp_path / "out",
        "cannot download 'edgert-tests/no-such-dolphin'",
    )
    refused("not-a-folder-or-id", tmp_path / "out", "neither a folder nor a hub id")
