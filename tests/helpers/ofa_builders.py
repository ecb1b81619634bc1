"""The test supernet of the OFA tests and a helper to export it (fixtures in tests/ofa)."""

from __future__ import annotations

import numpy as np

RESOLUTION = 32
SPEC = {
    "supernet": "OFAMobileNetV3",
    "args": {"n_classes": 10, "ks_list": [3, 5], "expand_ratio_list": [3, 4], "depth_list": [2, 3]},
}
# 15 elastic blocks (5 stages of 3), 5 stages.
SUBNET = {"ks": 5, "e": [3, 4] * 7 + [3], "d": [2, 3, 2, 3, 2]}


def export(files, name, device, **options):
    """Export the test supernet with ``options`` into ``files['root'] / name``."""
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.ofa.export import OfaExport, export_ofa

    profile, _ = edgert.resolve_device(device)
    defaults = {"checkpoint": files["checkpoint"], "calibration": files["calibration"]}
    settings = OfaExport(
        source=files["source"], out=files["root"] / name, resolution=RESOLUTION,
        **{**defaults, **options},
    )  # fmt: skip
    return export_ofa(settings, profile, get_catalog())


def smooth_images(n, seed):
    """Images of low-frequency colour patterns (4x4 random cells, upsampled).

    Pixel-wise noise would make every image look alike after global pooling, and a random
    network would then give nearly the same logits for all of them; patterns differ as
    whole images do, so logits differ by more than quantization noise.
    """
    cells = np.random.default_rng(seed).random((n, 3, 4, 4), np.float32)
    scale = RESOLUTION // 4
    return np.kron(cells, np.ones((1, 1, scale, scale), np.float32))
