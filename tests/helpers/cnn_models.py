"""Small torch CNNs with odd sizes (importable by name, as a user's factory module is)."""

from __future__ import annotations

import torch


class TinyRGB(torch.nn.Module):
    """Odd sizes on purpose: 3x7x5 input, 5 classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(6)
        self.fc = torch.nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))
