"""Subnets of random-weight supernets: config checks, extraction, BN recalibration, and the
latency units a subnet is cut into."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ofa")

from helpers.ofa_builders import RESOLUTION, SUBNET  # noqa: E402

from edgert.errors import ExportError  # noqa: E402
from edgert.exporters.ofa import subnets, units  # noqa: E402
from edgert.exporters.ofa.supernets import build_supernet, load_spec  # noqa: E402


@pytest.fixture(scope="module")
def net(ofa_files):
    return build_supernet(load_spec(ofa_files["source"]))


def test_config_is_expanded_to_one_value_per_position(net):
    config = subnets.parse_config(SUBNET, net)
    assert config["ks"] == [5] * 15
    assert config["e"] == SUBNET["e"]
    assert config["d"] == [2, 3, 2, 3, 2]


def test_extracted_subnet_computes_what_the_active_supernet_computes(net):
    config = subnets.parse_config(SUBNET, net)
    subnet = subnets.extract(net, config)
    x = torch.rand(3, 3, RESOLUTION, RESOLUTION)
    with torch.no_grad():
        expected = net(x)  # the supernet runs its active subnet
        got = subnet(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert len(subnet.blocks) == 1 + sum(config["d"])
    kernels = [b.conv.kernel_size for b in subnet.blocks[1:]]
    assert set(kernels) == {5}


def test_bn_recalibration_sets_the_exact_statistics_of_the_images(net):
    subnet = subnets.extract(net, subnets.parse_config(SUBNET, net))
    first_bn = subnet.first_conv.bn
    before = first_bn.running_mean.clone()
    images = np.random.default_rng(1).random((10, 3, RESOLUTION, RESOLUTION), np.float32)
    updated = subnets.recalibrate_bn(subnet, images, batch_size=4)
    assert updated == sum(isinstance(m, torch.nn.BatchNorm2d) for m in subnet.modules())
    assert not torch.allclose(before, first_bn.running_mean)
    with torch.no_grad():
        conv_out = subnet.first_conv.conv(torch.from_numpy(images))
    torch.testing.assert_close(first_bn.running_mean, conv_out.mean((0, 2, 3)), atol=1e-5, rtol=0)
    assert not subnet.training


def test_recalibration_needs_two_images(net):
    subnet = subnets.extract(net, subnets.smallest_config(net))
    with pytest.raises(ExportError, match="at least 2 calibration images, got 1"):
        subnets.recalibrate_bn(subnet, np.zeros((1, 3, RESOLUTION, RESOLUTION), np.float32))


@pytest.mark.parametrize(
    "net_id",
    ["ofa_mbv3_d234_e346_k357_w1.0", "ofa_proxyless_d234_e346_k357_w1.3", "ofa_resnet50"],
)
def test_units_chained_equal_the_network_and_know_their_resolution(net_id):
    from ofa.imagenet_classification.networks import get_net_by_name

    supernet = build_supernet(load_spec(f"ofa:{net_id}"))
    config = subnets.random_config(supernet, random.Random(3))
    net_config = units.active_net_config(supernet, config)
    torch.manual_seed(0)
    plain = get_net_by_name(net_config["name"]).build_from_config(copy.deepcopy(net_config))
    plain.eval()
    chain = units.chain(plain)
    cut = units.units(net_config, 40)
    assert len(cut) == len(chain)
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        expected = plain(x)
        for unit, module in zip(cut, chain, strict=True):
            assert x.shape[-1] == unit.resolution, unit.role
            x = module(x)
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("net_id", ["ofa_proxyless_d234_e346_k357_w1.3", "ofa_resnet50"])
def test_covering_configs_contain_every_unit_of_random_subnets(net_id):
    supernet = build_supernet(load_spec(f"ofa:{net_id}"))
    covered = {
        u.key
        for c in subnets.covering_configs(supernet)
        for u in units.units(units.active_net_config(supernet, c), 64)
    }
    rng = random.Random(0)
    for _ in range(40):
        config = subnets.random_config(supernet, rng)
        keys = {u.key for u in units.units(units.active_net_config(supernet, config), 64)}
        assert keys <= covered


def test_resnet_configs_extract_and_run():
    supernet = build_supernet(load_spec("ofa:ofa_resnet50"))
    config = subnets.parse_config({"d": 0, "e": 0.2, "w": [0, 1, 0, 1, 0, 1]}, supernet)
    subnet = subnets.extract(supernet, config)
    with torch.no_grad():
        assert subnet(torch.rand(2, 3, 32, 32)).shape == (2, 1000)
    # Stages have base depth 2, 2, 4, 2 plus up to max(depth_list) = 2 more; d = 0 adds none.
    assert len(subnet.blocks) == 2 + 2 + 4 + 2
