"""Tiny reference CNN for scikit-learn's 8x8 handwritten digits.

edgert needs a model that is small enough to commit, trains in minutes on a
laptop CPU, and still exercises the whole export path (ONNX opset 17, int8 QDQ
quantization, Qualcomm NPU execution).  This module is that model.  It follows
the spirit of "Building Efficient Lightweight CNN Models" (Isong, 2025): a
compact convolutional feature extractor of roughly 15k parameters trained with
shift augmentation, here made cheaper with depthwise-separable blocks and a
global-average-pool head instead of a large dense layer.

Only NPU- and QDQ-friendly operators are used: Conv2d (regular and
depthwise), BatchNorm2d (folds into the conv on export), ReLU, MaxPool2d,
AdaptiveAvgPool2d(1), Flatten, Dropout (identity at inference) and Linear.
The network returns raw logits; apply softmax yourself if you need
probabilities.

Preprocessing (must match training):
    * source: ``sklearn.datasets.load_digits()`` images, integer pixel values
      0..16, shape [8, 8];
    * convert to float32 and divide by 16.0, giving values in [0, 1];
    * lay out as NCHW ``[N, 1, 8, 8]``.
The output is ``[N, 10]`` logits ordered as ``LABELS``.

Weights are stored as ``digits_cnn.safetensors`` next to this file and are
loaded with ``safetensors.torch.load_file`` so no pickle is ever executed.
They are produced by ``train_digits.py`` in this folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = [
    "INPUT_SHAPE",
    "LABELS",
    "WEIGHTS_PATH",
    "DigitsCNN",
    "digits_cnn",
    "preprocess",
]

INPUT_SHAPE = (1, 1, 8, 8)
LABELS = tuple("0123456789")
WEIGHTS_PATH = Path(__file__).with_name("digits_cnn.safetensors")


def _conv_bn_relu(cin: int, cout: int, k: int = 3, groups: int = 1) -> nn.Sequential:
    # Conv without bias: the following BatchNorm provides the shift, and the
    # pair folds into a single biased conv when exported.
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _separable(cin: int, cout: int) -> nn.Sequential:
    # Depthwise 3x3 + pointwise 1x1: most of the receptive field for a
    # fraction of the parameters of a dense 3x3 conv.
    return nn.Sequential(
        _conv_bn_relu(cin, cin, 3, groups=cin),
        _conv_bn_relu(cin, cout, 1),
    )


class DigitsCNN(nn.Module):
    """Input ``[N, 1, 8, 8]`` float32 in [0, 1]; output ``[N, 10]`` logits."""

    def __init__(self, num_classes: int = len(LABELS), dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(1, 16),  # 8x8
            _conv_bn_relu(16, 32),  # 8x8
            nn.MaxPool2d(2),  # 4x4
            _separable(32, 64),  # 4x4
            nn.MaxPool2d(2),  # 2x2
            _separable(64, 96),  # 2x2
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(96, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def preprocess(images) -> torch.Tensor:
    """Map raw 0..16 digit images (``[N, 8, 8]`` or ``[N, 64]``) to model input."""
    x = torch.as_tensor(images).to(torch.float32) / 16.0
    return x.reshape(-1, *INPUT_SHAPE[1:])


def digits_cnn(weights: str | None = "default") -> nn.Module:
    """Build the digits CNN in eval mode.

    ``weights="default"`` loads the committed ``digits_cnn.safetensors``;
    another string is taken as a path to a safetensors file; ``None`` leaves
    the random initialisation (useful for training).
    """
    model = DigitsCNN()
    if weights is not None:
        from safetensors.torch import load_file

        path = WEIGHTS_PATH if weights == "default" else Path(weights)
        state = load_file(str(path))
        missing, unexpected = model.load_state_dict(state, strict=False)
        # BatchNorm's integer step counter is deliberately not stored (the
        # file holds float32 tensors only); anything else missing is an error.
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise RuntimeError(
                f"{path}: weights do not match DigitsCNN "
                f"(missing={missing}, unexpected={unexpected})"
            )
    return model.eval()


CALIBRATION_PATH = Path(__file__).with_name("digits_calib.npy")
TEST_PATH = Path(__file__).with_name("digits_test.npz")


def calibration_data():
    """256 preprocessed training images, float32 ``[256, 1, 8, 8]``, for int8 calibration."""
    import numpy as np

    return np.load(CALIBRATION_PATH, allow_pickle=False)


def eval_data():
    """The held-out test split as ``(x float32 [N, 1, 8, 8], y int64 [N])``."""
    import numpy as np

    with np.load(TEST_PATH, allow_pickle=False) as data:
        x = data["x"].astype(np.float32).reshape(-1, *INPUT_SHAPE[1:]) / 16.0
        return x, data["y"].astype(np.int64)
