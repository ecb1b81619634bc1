"""OFA subnets exported per profile: fp32 equals the torch subnet, the manifest records the
choice, the QDQ subnet runs wholly on the QNN HTP simulator, and the budget search picks a
subnet within the budget and measures it."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ofa")

from helpers.ofa_builders import RESOLUTION, SUBNET, export, smooth_images  # noqa: E402

import edgert  # noqa: E402
from edgert.cli import main  # noqa: E402
from edgert.exporters.ofa import latency, search, subnets  # noqa: E402
from edgert.exporters.ofa.supernets import build_supernet, load_spec, load_weights  # noqa: E402


def torch_subnet(files, config):
    """The subnet as torch computes it, rebuilt independently of the exporter's objects."""
    net = build_supernet(load_spec(files["source"]))
    load_weights(net, files["checkpoint"], load_spec(files["source"]))
    subnet = subnets.extract(net, subnets.parse_config(config, net))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normalized = (torch.from_numpy(files["images"]) - mean) / std
    subnet.train()
    for m in subnet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():  # BN statistics of all 24 images in one batch: the exact mean
        subnet(normalized)
    return lambda x: subnet.eval()((torch.from_numpy(x) - mean) / std).detach().numpy()


def test_fp32_onnx_equals_the_torch_subnet(ofa_files, fp32_bundle):
    model = edgert.load(fp32_bundle.path)
    x = smooth_images(5, seed=7)
    expected = torch_subnet(ofa_files, SUBNET)(x)
    got = model.logits(x)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_manifest_records_the_subnet(fp32_bundle):
    m = fp32_bundle.manifest
    assert m["family"] == "cnn"
    assert m["precision"] == "fp32"
    section = m["ofa"]
    assert section["supernet"]["supernet"] == "OFAMobileNetV3"
    assert section["subnet"]["ks"] == [5] * 15
    assert section["subnet"]["d"] == SUBNET["d"]
    assert section["resolution"] == RESOLUTION
    assert section["bn_recalibration"]["images"] == 24
    assert section["measured"]["provider"] == "ort-cpu"
    assert section["measured"]["ms"] > 0
    assert m["graphs"][0]["inputs"][0]["shape"] == ["batch", 3, RESOLUTION, RESOLUTION]
    assert m["validation"]["top1_agreement"] == 1.0


def test_qdq_subnet_runs_on_the_qnn_htp_without_cpu_fallback(ofa_files):
    from edgert.catalog import get_catalog

    if not get_catalog().providers.get("ort-qnn")().is_available():
        pytest.skip("onnxruntime-qnn is not installed")
    device = "snapdragon-8-gen3-npu"
    bundle = export(ofa_files, "npu", device, subnet=json.dumps(SUBNET))
    m = bundle.manifest
    assert m["precision"] == "int8"
    assert m["quantization"]["quantized_nodes"] > 0
    assert m["validation"]["ran_on"].startswith("ort-qnn")
    assert m["graphs"][0]["inputs"][0]["shape"] == [1, 3, RESOLUTION, RESOLUTION]
    model = edgert.load(bundle.path)  # strict: CPU fallback disabled by the profile
    assert model.provider == "ort-qnn"
    assert set(model.session_info.placement) == {"ort-qnn"}
    x = ofa_files["images"]
    expected = torch_subnet(ofa_files, SUBNET)(x)
    got = model.logits(x)
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9
    assert np.mean(np.abs(got - expected)) < 0.1 * np.mean(np.abs(expected))
    assert m["ofa"]["measured"]["simulated"] is True


def test_table_records_its_target_and_orders_subnets(ofa_files, cpu_table):
    table = latency.load_table(cpu_table)
    assert table["device"] == "cpu-generic"
    assert table["provider"] == "ort-cpu"
    assert table["precision"] == "fp32"
    assert table["threads"] == 0
    assert table["edgert_version"] == edgert.__version__
    assert table["resolutions"] == [RESOLUTION]
    net = build_supernet(load_spec(ofa_files["source"]))
    # 4 (ks, e) pairs x 5 stages x (first block, later block) + stem, first block, head
    assert len(table["units"]) == 4 * 5 * 2 + 3
    small = latency.predict(table, net, subnets.smallest_config(net), RESOLUTION)
    large = latency.predict(table, net, subnets.largest_config(net), RESOLUTION)
    assert 0 < small < large


def test_budget_search_exports_a_subnet_within_the_budget(ofa_files, cpu_table, capsys):
    table = latency.load_table(cpu_table)
    net = build_supernet(load_spec(ofa_files["source"]))
    small = latency.predict(table, net, subnets.smallest_config(net), RESOLUTION)
    large = latency.predict(table, net, subnets.largest_config(net), RESOLUTION)
    budget = (small + large) / 2
    out = ofa_files["root"] / "budget"
    main_args = ["export", ofa_files["source"], "--device", "cpu-generic", "--out", str(out),
                 "--resolution", str(RESOLUTION), "--latency-budget", f"{budget:.4f}ms",
                 "--latency-table", str(cpu_table), "--checkpoint", str(ofa_files["checkpoint"]),
                 "--calibration", str(ofa_files["calibration"])]  # fmt: skip
    main(main_args)
    printed = capsys.readouterr().out
    assert "proxy: multiply-accumulates" in printed
    section = json.loads((out / "manifest.json").read_text())["ofa"]
    assert section["search"]["budget_ms"] == pytest.approx(budget, abs=1e-3)
    assert section["predicted_ms"] <= budget * (1 - section["search"]["margin"])
    assert section["search"]["smallest_ms"] == pytest.approx(small, abs=1e-4)
    assert section["table"]["sha256"] == table["sha256"]
    assert section["table"]["device"] == "cpu-generic"
    assert section["measured"]["ms"] > 0
    chosen = subnets.parse_config(section["subnet"], net)
    assert latency.predict(table, net, chosen, RESOLUTION) <= budget


def test_a_user_accuracy_predictor_steers_the_search(ofa_files, cpu_table):
    table = latency.load_table(cpu_table)
    net = build_supernet(load_spec(ofa_files["source"]))

    def prefers_small_kernels(config, resolution):
        assert resolution == RESOLUTION
        return -sum(config["ks"]) + 0.001 * sum(config["d"])

    evaluate = search.Evaluator(net, table, RESOLUTION, prefers_small_kernels)
    budget = latency.predict(table, net, subnets.largest_config(net), RESOLUTION) * 2
    result = search.search(net, evaluate, search.SearchOptions(budget_ms=budget), "user")
    assert result.config["ks"] == [3] * 15
    assert result.config["d"] == [3] * 5
    proxy = search.Evaluator(net, table, RESOLUTION, None)
    result = search.search(net, proxy, search.SearchOptions(budget_ms=budget), search.PROXY)
    assert result.config == subnets.largest_config(net)


def test_proxyless_subnet_exports_and_matches_torch(tmp_path):
    spec = {"supernet": "OFAProxylessNASNets", "args": {
        "n_classes": 6, "ks_list": [3, 7], "expand_ratio_list": [3, 6], "depth_list": [2, 4]}}  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    source = f"ofa:{tmp_path / 'spec.json'}"
    net = build_supernet(load_spec(source))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    np.save(tmp_path / "calib.npy", smooth_images(8, seed=3))
    files = {"root": tmp_path, "source": source, "checkpoint": tmp_path / "w.pt",
             "calibration": tmp_path / "calib.npy"}  # fmt: skip
    config = {"ks": 7, "e": 6, "d": [4, 2, 2, 4, 2, 2]}  # the last stage has one block
    bundle = export(files, "proxyless", "cpu-generic", subnet=json.dumps(config))
    assert bundle.manifest["ofa"]["subnet"]["d"] == config["d"]
    assert bundle.manifest["validation"]["top1_agreement"] == 1.0
    assert bundle.manifest["validation"]["max_abs_diff"] < 1e-3
