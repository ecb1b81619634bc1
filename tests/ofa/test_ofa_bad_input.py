"""Every bad input of an OFA export says what was wrong, the bad value, the valid choices and
the next step, and fails before anything is written."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ofa")

from helpers.cli import run  # noqa: E402
from helpers.ofa_builders import RESOLUTION, SPEC, SUBNET, export  # noqa: E402

import edgert  # noqa: E402
from edgert.errors import ExportError, UnknownNameError  # noqa: E402
from edgert.exporters.ofa import latency, subnets, supernets  # noqa: E402


def test_unknown_net_id(capsys, tmp_path):
    code, _, err = run(capsys, "export", "ofa:ofa_mbv3_d234_e346_k357_w1", "--subnet", "{}",
                       "--out", str(tmp_path / "b"), "--device", "cpu-generic")  # fmt: skip
    assert code == 1
    assert "unknown OFA net id 'ofa_mbv3_d234_e346_k357_w1'" in err
    assert "ofa_resnet50" in err  # the known ids are listed
    assert "did you mean 'ofa_mbv3_d234_e346_k357_w1." in err
    assert not (tmp_path / "b").exists()


def test_subnet_value_outside_the_choices_names_the_allowed_values(ofa_files):
    bad = dict(SUBNET, ks=[5] * 14 + [7])
    with pytest.raises(ExportError) as info:
        export(ofa_files, "bad-ks", "cpu-generic", subnet=json.dumps(bad))
    assert "ks[14] = 7 is not a choice of this supernet; allowed ks values: 3, 5" in str(info.value)
    assert "--subnet" in info.value.hint
    assert not (ofa_files["root"] / "bad-ks").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ks": 3, "e": 3}, "missing keys ['d']"),
        ({"ks": 3, "e": 3, "d": 2, "w": 1}, "unknown keys ['w']"),
        ({"ks": 3, "e": 3, "d": [2, 3]}, "'d' has 2 values, OFAMobileNetV3 needs 5"),
        ({"ks": 3, "e": 4.5, "d": 2}, "e[0] = 4.5 is not a choice of this supernet; allowed e values: 3, 4"),
    ],
)  # fmt: skip
def test_malformed_subnet_configs(ofa_files, config, message):
    net = supernets.build_supernet(supernets.load_spec(ofa_files["source"]))
    with pytest.raises(ExportError) as info:
        subnets.parse_config(json.dumps(config), net)
    assert message in str(info.value)


def test_budget_below_the_smallest_subnet_says_the_smallest(ofa_files, cpu_table):
    table = latency.load_table(cpu_table)
    net = supernets.build_supernet(supernets.load_spec(ofa_files["source"]))
    smallest = latency.predict(table, net, subnets.smallest_config(net), RESOLUTION)
    with pytest.raises(ExportError) as info:
        export(ofa_files, "tiny-budget", "cpu-generic", latency_budget_ms=smallest / 2,
               latency_table=cpu_table)  # fmt: skip
    text = str(info.value)
    assert f"latency budget {smallest / 2:g} ms is below the smallest subnet" in text
    assert f"the smallest achievable is {smallest:.3f} ms" in text
    assert f"at least {smallest / 0.9:.3f}ms" in info.value.hint  # the 10% margin
    assert not (ofa_files["root"] / "tiny-budget").exists()


def test_table_from_another_target_is_refused_unless_forced(ofa_files, cpu_table, capsys):
    out = ofa_files["root"] / "other-device"
    argv = ["export", ofa_files["source"], "--device", "x86-avx2-int8", "--out", str(out),
            "--resolution", str(RESOLUTION), "--latency-budget", "50ms",
            "--latency-table", str(cpu_table), "--checkpoint", str(ofa_files["checkpoint"]),
            "--calibration", str(ofa_files["calibration"])]  # fmt: skip
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert (
        "was measured for another target: device 'cpu-generic' (this export: 'x86-avx2-int8')"
        in err
    )
    assert "precision 'fp32' (this export: 'int8')" in err
    assert "edgert ofa table" in err
    assert "--force-table" in err
    assert not out.exists()
    profile, _ = edgert.resolve_device("x86-avx2-int8")
    table = latency.load_table(cpu_table)
    spec = supernets.load_spec(ofa_files["source"])
    latency.check_table(table, spec, profile, RESOLUTION, force=True)  # accepted when forced


def test_table_of_another_supernet_or_resolution_is_refused(ofa_files, cpu_table):
    profile, _ = edgert.resolve_device("cpu-generic")
    table = latency.load_table(cpu_table)
    other = supernets.load_spec("ofa:ofa_mbv3_d234_e346_k357_w1.0")
    with pytest.raises(ExportError, match="was measured for supernet"):
        latency.check_table(table, other, profile, RESOLUTION, force=True)
    spec = supernets.load_spec(ofa_files["source"])
    with pytest.raises(ExportError, match=r"covers resolutions \[32\], not 64"):
        latency.check_table(table, spec, profile, 64)


def test_checkpoint_of_another_supernet_is_refused(ofa_files, tmp_path):
    other = copy.deepcopy(SPEC)
    other["args"]["n_classes"] = 7
    spec_path = tmp_path / "other.json"
    spec_path.write_text(json.dumps(other))
    net = supernets.build_supernet(supernets.load_spec(f"ofa:{spec_path}"))
    torch.save({"state_dict": net.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ExportError) as info:
        export(ofa_files, "wrong-weights", "cpu-generic", subnet=json.dumps(SUBNET),
               checkpoint=tmp_path / "other.pt")  # fmt: skip
    assert "is not a state dict of OFAMobileNetV3" in str(info.value)
    assert "size mismatch" in str(info.value)
    proxyless = supernets.build_supernet(
        supernets.load_spec("ofa:ofa_proxyless_d234_e346_k357_w1.3")
    )
    torch.save(proxyless.state_dict(), tmp_path / "proxyless.pt")
    with pytest.raises(ExportError, match="is not a state dict of OFAMobileNetV3.*tensors"):
        export(ofa_files, "wrong-weights", "cpu-generic", subnet=json.dumps(SUBNET),
               checkpoint=tmp_path / "proxyless.pt")  # fmt: skip
    assert not (ofa_files["root"] / "wrong-weights").exists()


def test_checkpoints_that_are_not_state_dicts_are_refused_without_unpickling(ofa_files, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"model": Payload()}, tmp_path / "pickle.pt")
    with pytest.raises(ExportError, match="not a weights-only torch checkpoint") as info:
        export(ofa_files, "x", "cpu-generic", subnet=json.dumps(SUBNET),
               checkpoint=tmp_path / "pickle.pt")  # fmt: skip
    assert "never unpickles" in str(info.value)
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ExportError, match="holds a list, not a state dict of tensors"):
        export(ofa_files, "x", "cpu-generic", subnet=json.dumps(SUBNET),
               checkpoint=tmp_path / "list.pt")  # fmt: skip


def test_safetensors_checkpoints_load(ofa_files, tmp_path):
    from safetensors.torch import save_file

    spec = supernets.load_spec(ofa_files["source"])
    net = supernets.build_supernet(spec)
    supernets.load_weights(net, ofa_files["checkpoint"], spec)
    save_file(net.state_dict(), tmp_path / "w.safetensors")
    fresh = supernets.build_supernet(spec)
    supernets.load_weights(fresh, tmp_path / "w.safetensors", spec)
    for key, value in net.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key


def test_published_weights_need_a_pin_then_download_once_and_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERT_CACHE", str(tmp_path / "cache"))
    spec = supernets.load_spec("ofa:ofa_mbv3_d234_e346_k357_w1.0")
    with pytest.raises(ExportError, match="no verified sha256") as info:
        supernets.published_weights(spec)
    assert "--checkpoint" in info.value.hint
    assert "--sha256" in info.value.hint
    served = tmp_path / "served.bin"  # a file:// URL stands in for the network
    served.write_bytes(b"weights")
    local = supernets.SupernetSpec(name=spec.name, supernet=spec.supernet, args=spec.args,
                                   url=served.as_uri())  # fmt: skip
    with pytest.raises(ExportError, match="has sha256 .*, expected 00"):
        supernets.published_weights(local, sha256="00" * 32)
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert not cached  # nothing is kept from a bad download
    digest = hashlib.sha256(b"weights").hexdigest()
    path = supernets.published_weights(local, sha256=digest)
    assert path.read_bytes() == b"weights"
    served.unlink()  # a second use is served from the cache
    assert supernets.published_weights(local, sha256=digest) == path


def test_missing_calibration_images_and_conflicting_options(ofa_files):
    from edgert.catalog import get_catalog
    from edgert.exporters.ofa.export import OfaExport, export_ofa

    profile, _ = edgert.resolve_device("cpu-generic")
    base = {"source": ofa_files["source"], "out": ofa_files["root"] / "x", "resolution": 32,
            "checkpoint": ofa_files["checkpoint"]}  # fmt: skip
    with pytest.raises(ExportError, match="needs calibration images") as info:
        export_ofa(OfaExport(**base, subnet=json.dumps(SUBNET)), profile, get_catalog())
    assert "--calibration" in info.value.hint
    with pytest.raises(ExportError, match="exactly one of --subnet and --latency-budget"):
        export_ofa(OfaExport(**base, subnet="{}", latency_budget_ms=5), profile, get_catalog())
    with pytest.raises(UnknownNameError, match="unknown OFA supernet class 'OFAMobileNetV2'"):
        supernets._spec("x", {"supernet": "OFAMobileNetV2"}, "x.json")
