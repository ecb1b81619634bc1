"""Once-for-All fixtures: a small random-weight MobileNetV3 supernet (10 classes, two kernel
sizes, two expand ratios, depths 2-3), its checkpoint, calibration images, one latency
table and one fp32 export, built once per session at 32 px. Nothing is downloaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.ofa_builders import RESOLUTION, SPEC, SUBNET, export, smooth_images


@pytest.fixture(scope="session")
def ofa_files(tmp_path_factory):
    """spec.json, a checkpoint of random weights, and 24 calibration images."""
    import torch

    from edgert.exporters.ofa.supernets import build_supernet, load_spec

    root = tmp_path_factory.mktemp("ofa")
    spec_path = root / "spec.json"
    spec_path.write_text(json.dumps(SPEC))
    spec = load_spec(f"ofa:{spec_path}")
    torch.manual_seed(0)
    net = build_supernet(spec)
    images = smooth_images(24, seed=0)
    fit_classifier(net, spec, images)
    torch.save(net.state_dict(), root / "weights.pt")
    np.save(root / "calib.npy", images)
    return {
        "root": root,
        "source": f"ofa:{spec_path}",
        "spec": spec_path,
        "checkpoint": root / "weights.pt",
        "calibration": root / "calib.npy",
        "images": images,
    }


def fit_classifier(net, spec, images):
    """Give the SUBNET confident logits, as a trained net has: its classifier is fitted by
    ridge regression to put each calibration image in class ``index % 10``.

    With untrained weights the logits of different classes lie within a few hundredths of
    each other, so int8 noise flips the top-1 of most images and no quantized export could
    pass validation; the rest of the supernet keeps its random weights.
    """
    import torch

    from edgert.exporters.ofa import subnets
    from edgert.exporters.ofa.export import _normalized

    model = _normalized(subnets.extract(net, subnets.parse_config(SUBNET, net)), spec)
    subnets.recalibrate_bn(model, images)
    features = []
    model.subnet.classifier.register_forward_hook(lambda _m, inputs, _o: features.append(inputs[0]))
    with torch.no_grad():
        model(torch.from_numpy(images))
    x = torch.cat([features[0], torch.ones(len(images), 1)], 1).double()
    target = torch.nn.functional.one_hot(torch.arange(len(images)) % 10, 10).double() * 4 - 2
    solution = torch.linalg.solve(x.T @ x + 1e-2 * torch.eye(x.shape[1]), x.T @ target).float()
    linear = net.classifier.linear
    linear.weight.data.copy_(solution[:-1].T)
    linear.bias.data.copy_(solution[-1])


@pytest.fixture(scope="session")
def cpu_table(ofa_files):
    """A latency table of the test supernet on cpu-generic at 32 px, written as JSON."""
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.ofa import latency
    from edgert.exporters.ofa.supernets import load_spec

    profile, _ = edgert.resolve_device("cpu-generic")
    options = latency.TableOptions(
        resolutions=(RESOLUTION,), timing=latency.TimingOptions(runs=10, warmup=2)
    )
    table = latency.build_table(load_spec(ofa_files["source"]), profile, get_catalog(), options)
    path = ofa_files["root"] / "cpu-table.json"
    latency.save_table(table, path)
    return path


@pytest.fixture(scope="session")
def fp32_bundle(ofa_files):
    """The SUBNET config exported for cpu-generic."""
    return export(ofa_files, "fp32", "cpu-generic", subnet=json.dumps(SUBNET))
