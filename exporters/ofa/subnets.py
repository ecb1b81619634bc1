"""Subnet configs of a supernet: their choice space, validation, extraction and batch-norm
recalibration.

A config is a dict of lists, as the ``ofa`` package uses them:

- MobileNetV3 / ProxylessNAS: ``ks`` and ``e`` (one per elastic block), ``d`` (per stage);
- ResNets: ``d`` (input-stem skip + one per stage), ``e`` (per block), ``w`` (indices into
  ``width_mult_list``: two for the stem, one per stage).

A scalar stands for the same value everywhere. Extracted subnets need their BN statistics
re-estimated: a subnet sees other activations than the full supernet the running statistics
were accumulated on (FIELD.md §4.4).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgert.errors import ExportError


@dataclass(frozen=True)
class Dimension:
    """One entry of a config: how many values and which are allowed."""

    key: str
    length: int
    choices: tuple[Any, ...]
    meaning: str


def choice_space(net: Any) -> tuple[Dimension, ...]:
    """The dimensions of ``net``'s configs, read from the supernet itself."""
    if type(net).__name__ == "OFAResNets":
        stages = len(net.grouped_block_index)
        widths = tuple(range(len(net.width_mult_list)))
        return (
            Dimension("d", stages + 1, tuple(net.depth_list),
                      "input-stem depth, then blocks skipped per stage (max = keep all)"),
            Dimension("e", len(net.blocks), tuple(net.expand_ratio_list), "per block"),
            Dimension("w", stages + 2, widths,
                      f"index into width_mult_list {list(net.width_mult_list)}"),
        )  # fmt: skip
    blocks = len(net.blocks) - 1
    return (
        Dimension("ks", blocks, tuple(net.ks_list), "kernel size per elastic block"),
        Dimension("e", blocks, tuple(net.expand_ratio_list), "expand ratio per elastic block"),
        Dimension("d", len(net.block_group_info), tuple(net.depth_list), "blocks per stage"),
    )


def parse_config(text_or_dict: str | dict[str, Any], net: Any) -> dict[str, list[Any]]:
    """Validate a config (JSON text or dict) against ``net``'s choices; returns full lists."""
    if isinstance(text_or_dict, str):
        try:
            config = json.loads(text_or_dict)
        except json.JSONDecodeError as exc:
            raise ExportError(f"--subnet is not valid JSON: {exc}",
                              hint=_example(net)) from exc  # fmt: skip
    else:
        config = text_or_dict
    if not isinstance(config, dict):
        raise ExportError(f"--subnet must be a JSON object, got {config!r}", hint=_example(net))
    space = choice_space(net)
    keys = {dim.key for dim in space}
    unknown, missing = sorted(set(config) - keys), sorted(keys - set(config))
    if unknown or missing:
        raise ExportError(
            f"subnet config of {type(net).__name__}: "
            + "; ".join(filter(None, [unknown and f"unknown keys {unknown}",
                                      missing and f"missing keys {missing}"])),
            hint=_example(net),
        )  # fmt: skip
    return {dim.key: _values(config[dim.key], dim, net) for dim in space}


def _values(value: Any, dim: Dimension, net: Any) -> list[Any]:
    values = list(value) if isinstance(value, list | tuple) else [value] * dim.length
    if len(values) != dim.length:
        raise ExportError(
            f"subnet config: {dim.key!r} has {len(values)} values, {type(net).__name__} "
            f"needs {dim.length} ({dim.meaning})",
            hint=f"give {dim.length} values from {list(dim.choices)}, or one value for all",
        )
    for index, v in enumerate(values):
        if v not in dim.choices or isinstance(v, bool):
            raise ExportError(
                f"subnet config: {dim.key}[{index}] = {v!r} is not a choice of this supernet; "
                f"allowed {dim.key} values: {', '.join(map(str, dim.choices))}",
                hint=f"{dim.key} is {dim.meaning}; " + _example(net),
            )
    return values


def _example(net: Any) -> str:
    parts = ", ".join(f'"{d.key}": {_short(d.choices)}' for d in choice_space(net))
    return f"e.g. --subnet '{{{parts}}}' (one value applies to every position)"


def _short(choices: tuple[Any, ...]) -> str:
    return json.dumps(min(choices))


def smallest_config(net: Any) -> dict[str, list[Any]]:
    """Every dimension at its smallest choice (the fastest subnet)."""
    return {d.key: [min(d.choices)] * d.length for d in choice_space(net)}


def largest_config(net: Any) -> dict[str, list[Any]]:
    """Every dimension at its largest choice."""
    return {d.key: [max(d.choices)] * d.length for d in choice_space(net)}


def random_config(net: Any, rng: random.Random) -> dict[str, list[Any]]:
    """A uniformly random config."""
    return {d.key: [rng.choice(d.choices) for _ in range(d.length)] for d in choice_space(net)}


def extract(net: Any, config: dict[str, list[Any]]) -> Any:
    """The subnet of ``config`` as a standalone module with copied weights."""
    net.set_active_subnet(**config)
    return net.get_active_subnet(preserve_weight=True).eval()


def recalibrate_bn(subnet: Any, images: np.ndarray, batch_size: int = 32) -> int:
    """Re-estimate every BatchNorm's running mean and variance on ``images``.

    The statistics are the exact mean over all images (cumulative averaging, momentum
    None), not an exponential average, so the order of batches does not matter. Returns
    the number of BN layers updated.
    """
    import torch

    if len(images) < 2:
        raise ExportError(
            f"batch-norm recalibration needs at least 2 calibration images, got {len(images)}",
            hint="pass --calibration with a folder of images or an .npy of many",
        )
    norms = [m for m in subnet.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = exact mean over batches
    subnet.train()
    try:
        with torch.no_grad():
            # Equal-sized chunks of at least 2: BN in training mode refuses a 1x1 map of one.
            for chunk in np.array_split(images, max(1, len(images) // batch_size)):
                subnet(torch.from_numpy(np.ascontiguousarray(chunk, np.float32)))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        subnet.eval()
    return len(norms)


def covering_configs(net: Any) -> list[dict[str, list[Any]]]:
    """Configs that together contain every distinct unit of the supernet.

    MobileNetV3 / ProxylessNAS blocks depend only on their own kernel size and expand ratio,
    so one uniform config per (ks, e) covers them all. A ResNets block also depends on the
    width of the stage before it, so stage widths alternate between every ordered pair of
    choices; the stem depends on its two widths and on whether its middle block is skipped.
    """
    space = {d.key: d for d in choice_space(net)}
    if "ks" in space:
        return [
            {"ks": [k] * space["ks"].length, "e": [e] * space["e"].length,
             "d": [max(space["d"].choices)] * space["d"].length}
            for k in space["ks"].choices for e in space["e"].choices
        ]  # fmt: skip
    widths, depths = space["w"].choices, space["d"].choices
    stages = space["d"].length - 1
    configs = []
    for e in space["e"].choices:
        for a in widths:
            for b in widths:
                for first in (a, b):
                    second = b if first == a else a
                    tail = [first if i % 2 == 0 else second for i in range(stages + 1)]
                    for w0 in widths:
                        for d0 in sorted({min(depths), max(depths)}):
                            configs.append({"d": [d0] + [max(depths)] * stages,
                                            "e": [e] * space["e"].length, "w": [w0, *tail]})  # fmt: skip
    return configs
