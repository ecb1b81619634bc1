"""MobileNetV3-Small-shaped CNN for export / runtime benchmarking.

This is a shape-faithful stand-in for ``mobilenet_v3_small`` (Howard et al.,
"Searching for MobileNetV3", 2019, Table 2): the same stem, the same eleven
inverted-residual ("bneck") blocks with their kernel sizes, expansion widths,
squeeze-and-excitation (SE) placement, ReLU / HardSwish activations and
strides, the 576-channel last 1x1 conv, a 1024-wide HardSwish classifier
hidden layer and ``num_classes`` outputs.  Layer shapes, op types and FLOPs
therefore match the reference architecture, which is what matters for
latency and quantization experiments.

No pretrained weights ship with it: ``mobilenet_v3_small()`` returns a model
in eval mode whose weights are drawn from a fixed seed, so every call produces
the same network.  BatchNorm running statistics are then estimated from one
seeded batch of synthetic smooth images, so that activations stay normalised
through the depth of the network and the logits actually depend on the input
(with purely random BN statistics the output collapses to a near-constant
vector, which makes fp32-vs-int8 agreement checks meaningless).  Its
predictions are still meaningless; use it only for benchmarking and
numerical-agreement checks (e.g. fp32 vs. int8), not for accuracy numbers.

Written from scratch; it does not depend on torchvision.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

__all__ = [
    "INPUT_SHAPE",
    "SMALL_BLOCKS",
    "BlockSpec",
    "MobileNetV3Small",
    "mobilenet_v3_small",
    "synthetic_images",
]

# Batch 1, RGB, 224x224 - the standard ImageNet benchmarking shape.
INPUT_SHAPE = (1, 3, 224, 224)

_BN_EPS = 1e-3
_SEED = 0


class BlockSpec(NamedTuple):
    """One inverted-residual block: kernel, expanded width, output width,
    whether it has SE, activation ("RE" = ReLU, "HS" = HardSwish), stride."""

    kernel: int
    expanded: int
    out: int
    se: bool
    act: str
    stride: int


# MobileNetV3-Small, paper Table 2 (input to the first block: 16 channels @112x112).
SMALL_BLOCKS: list[BlockSpec] = [
    BlockSpec(3, 16, 16, True, "RE", 2),
    BlockSpec(3, 72, 24, False, "RE", 2),
    BlockSpec(3, 88, 24, False, "RE", 1),
    BlockSpec(5, 96, 40, True, "HS", 2),
    BlockSpec(5, 240, 40, True, "HS", 1),
    BlockSpec(5, 240, 40, True, "HS", 1),
    BlockSpec(5, 120, 48, True, "HS", 1),
    BlockSpec(5, 144, 48, True, "HS", 1),
    BlockSpec(5, 288, 96, True, "HS", 2),
    BlockSpec(5, 576, 96, True, "HS", 1),
    BlockSpec(5, 576, 96, True, "HS", 1),
]

_STEM_CHANNELS = 16
_LAST_CONV_CHANNELS = 576
_CLASSIFIER_HIDDEN = 1024


def _round_to_multiple(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going
    below ``divisor`` or losing more than 10% (the usual MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _activation(kind: str | None) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "RE":
        return nn.ReLU(inplace=True)
    if kind == "HS":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {kind!r}")


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(cout, eps=_BN_EPS),
            _activation(act),
        )


class SqueezeExcite(nn.Module):
    """Global average pool -> 1x1 conv -> ReLU -> 1x1 conv -> HardSigmoid,
    then channel-wise rescale of the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = _round_to_multiple(channels / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return x * s


class InvertedResidual(nn.Module):
    """[1x1 expand] -> kxk depthwise -> [SE] -> 1x1 linear projection,
    with an identity shortcut when shapes allow."""

    def __init__(self, cin: int, spec: BlockSpec) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if spec.expanded != cin:
            layers.append(ConvNormAct(cin, spec.expanded, 1, act=spec.act))
        layers.append(
            ConvNormAct(
                spec.expanded,
                spec.expanded,
                spec.kernel,
                stride=spec.stride,
                groups=spec.expanded,
                act=spec.act,
            )
        )
        if spec.se:
            layers.append(SqueezeExcite(spec.expanded))
        layers.append(ConvNormAct(spec.expanded, spec.out, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.use_shortcut = spec.stride == 1 and cin == spec.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_shortcut else y


class MobileNetV3Small(nn.Module):
    def __init__(self, num_classes: int = 1000, blocks: list[BlockSpec] = SMALL_BLOCKS) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormAct(3, _STEM_CHANNELS, 3, stride=2, act="HS")]
        cin = _STEM_CHANNELS
        for spec in blocks:
            layers.append(InvertedResidual(cin, spec))
            cin = spec.out
        layers.append(ConvNormAct(cin, _LAST_CONV_CHANNELS, 1, act="HS"))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(_LAST_CONV_CHANNELS, _CLASSIFIER_HIDDEN),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=0.2, inplace=True),
            nn.Linear(_CLASSIFIER_HIDDEN, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _init_random_(model: nn.Module, generator: torch.Generator) -> None:
    """Seeded, variance-preserving random weights.  BatchNorm affine
    parameters are random too, so BN folding in exporters actually changes
    the conv weights (running statistics are re-estimated afterwards)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            m.weight.data.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
            if m.bias is not None:
                m.bias.data.normal_(0.0, 0.05, generator=generator)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=generator)
            m.bias.data.normal_(0.0, 0.1, generator=generator)
            m.running_mean.normal_(0.0, 0.1, generator=generator)
            m.running_var.uniform_(0.5, 2.0, generator=generator)
        elif isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, (1.0 / m.in_features) ** 0.5, generator=generator)
            m.bias.data.zero_()


def _bilinear_upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (half-pixel) upsampling of ``grid[..., g, g]`` to ``size``
    using only element-wise arithmetic, so the result does not depend on
    thread count or SIMD path."""
    g = grid.shape[-1]
    src = np.clip((np.arange(size) + 0.5) * (g / size) - 0.5, 0.0, g - 1.0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, g - 1)
    w = src - i0
    rows = grid[..., i0, :] * (1.0 - w)[:, None] + grid[..., i1, :] * w[:, None]
    return rows[..., i0] * (1.0 - w) + rows[..., i1] * w


def synthetic_images(n: int, seed: int, size: int = INPUT_SHAPE[-1]) -> torch.Tensor:
    """``n`` smooth random RGB images (upsampled 8x8 noise plus a little
    pixel noise) normalised with the usual ImageNet mean/std, as a float32
    NCHW tensor: a cheap stand-in for natural-image statistics."""
    rng = np.random.default_rng(seed)
    img = _bilinear_upsample(rng.random((n, 3, 8, 8)), size)
    img = np.clip(img + 0.05 * rng.standard_normal(img.shape), 0.0, 1.0)
    mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    return torch.from_numpy(((img - mean) / std).astype(np.float32))


def _calibrate_batchnorm_(model: nn.Module, generator: torch.Generator, batch: int = 8) -> None:
    """Replace the random BN running statistics by the statistics of one
    synthetic batch (cumulative average, no weight updates)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    images = synthetic_images(batch, seed)
    # Run the statistics pass in float64 and round the result to fp16
    # precision, so that reduction-order differences (thread count, SIMD
    # path) do not change the stored float32 weights.
    model.double().train()
    model(images.double())
    model.float()
    for bn in bns:
        bn.momentum = 0.1
        bn.running_mean.copy_(bn.running_mean.half().float())
        bn.running_var.copy_(bn.running_var.half().float())
    model.eval()


def mobilenet_v3_small(num_classes: int = 1000) -> torch.nn.Module:
    """Return an eval-mode MobileNetV3-Small-shaped model with seeded random
    weights and data-calibrated BN statistics (no pretrained weights are
    available)."""
    model = MobileNetV3Small(num_classes=num_classes)
    gen = torch.Generator().manual_seed(_SEED)
    with torch.no_grad():
        _init_random_(model, gen)
        _calibrate_batchnorm_(model, gen)
    return model.eval()
