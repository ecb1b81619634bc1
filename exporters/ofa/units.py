"""A subnet as a chain of latency units: stem, one unit per block, head.

A unit's key is its layer config plus its input resolution, so equal blocks share one
latency-table entry wherever they appear. Keys come from ``get_active_net_config`` alone
(no weights are copied), which keeps a search over thousands of candidates fast; the unit
modules for timing are built from the same configs with fresh weights, since latency does
not depend on weight values.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

# Per plain network class: the net-config fields before the blocks (stem) and after (head).
LAYOUT = {
    "MobileNetV3": (("first_conv",), ("final_expand_layer", "feature_mix_layer", "classifier")),
    "ProxylessNASNets": (("first_conv",), ("feature_mix_layer", "classifier")),
    "ResNets": (("input_stem",), ("classifier",)),
}
# ResNets downsample once more after the stem (3x3 max pooling, stride 2).
STEM_POOL_STRIDE = {"ResNets": 2}


@dataclass(frozen=True)
class Unit:
    """One unit of a subnet: ``role`` is stem, block or head; ``resolution`` its input's."""

    key: str
    role: str
    resolution: int


def active_net_config(net: Any, config: dict[str, list[Any]]) -> dict[str, Any]:
    """The plain-network config of ``config`` (JSON-ready)."""
    net.set_active_subnet(**config)
    return _plain(net.get_active_net_config())


def _plain(value: Any) -> Any:
    """Layer objects -> their configs (OFAResNets puts an IdentityLayer object in its stem)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "config") and not isinstance(value, str | int | float):
        return _plain(value.config)
    return value


def units(net_config: dict[str, Any], resolution: int) -> list[Unit]:
    """The units of a plain-network config at an input ``resolution``, in forward order."""
    name = net_config["name"]
    stem_fields, head_fields = LAYOUT[name]
    stem = [net_config[f] for f in stem_fields]
    out: list[Unit] = []
    hw = resolution
    out.append(_unit("stem", stem, hw))
    hw = _down(hw, _stride(stem) * STEM_POOL_STRIDE.get(name, 1))
    for block in net_config["blocks"]:
        out.append(_unit("block", block, hw))
        hw = _down(hw, _stride(block))
    out.append(_unit("head", [net_config[f] for f in head_fields], hw))
    return out


def _unit(role: str, config: Any, hw: int) -> Unit:
    key = json.dumps({"role": role, "config": config, "hw": hw}, sort_keys=True)
    return Unit(key=key, role=role, resolution=hw)


def _stride(config: Any) -> int:
    if isinstance(config, list):
        return math.prod(_stride(c) for c in config)
    if not isinstance(config, dict):
        return 1
    if "conv" in config and isinstance(config["conv"], dict):  # ResidualBlock
        return _stride(config["conv"])
    return int(config.get("stride", 1))


def _down(hw: int, stride: int) -> int:
    # Every strided op here pads to "same" (or pools with ceil_mode): ceil(hw / stride).
    return -(-hw // stride)


def unit_modules(net_config: dict[str, Any]) -> list[Any]:
    """Torch modules of the units (fresh weights), in the order of :func:`units`."""
    from ofa.imagenet_classification.networks import get_net_by_name

    net = get_net_by_name(net_config["name"]).build_from_config(copy.deepcopy(net_config))
    return chain(net.eval())


def chain(net: Any) -> list[Any]:
    """A plain network (``MobileNetV3``, ``ProxylessNASNets``, ``ResNets``) as unit modules
    whose composition is its ``forward``."""
    return [_stem(net), *net.blocks, _head(net)]


def _stem(net: Any) -> Any:
    import torch

    if hasattr(net, "input_stem"):
        return torch.nn.Sequential(*net.input_stem, net.max_pooling)
    return net.first_conv


def _head(net: Any) -> Any:
    """Everything after the last block; mirrors the tail of each network's ``forward``."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self, layers: list[Any], pool_after: int) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(layers)
            self.pool_after = pool_after  # index of the layer global pooling follows

        def forward(self, x: Any) -> Any:
            for index, layer in enumerate(self.layers):
                if index == self.pool_after:
                    x = x.mean((2, 3), keepdim=True)
                if isinstance(layer, type(net.classifier)):
                    x = x.flatten(1)
                x = layer(x)
            return x

    name = type(net).__name__
    if name == "MobileNetV3":
        return Head([net.final_expand_layer, net.feature_mix_layer, net.classifier], 1)
    if name == "ProxylessNASNets":
        return Head([net.feature_mix_layer, net.classifier], 1)
    return Head([net.classifier], 0)


def macs(module: Any, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and linear layers)."""
    import torch

    total = 0

    def conv(m: Any, _inputs: Any, output: Any) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += output.numel() * (m.in_channels // m.groups) * k

    def linear(m: Any, _inputs: Any, output: Any) -> None:
        nonlocal total
        total += output.numel() * m.in_features

    hooks = [
        m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
        for m in module.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    try:
        with torch.no_grad():
            module(torch.zeros(shape))
    finally:
        for hook in hooks:
            hook.remove()
    return int(total)
