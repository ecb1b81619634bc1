"""Calibration and evaluation data: a folder of images, an ``.npy`` or an ``.npz``.

Shapes are checked against the model input before anything is exported, so wrong data
fails in a second with a message instead of after a long export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgert.errors import ExportError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def load_inputs(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Float32 inputs shaped ``(N, *input_shape[1:])`` from a folder, ``.npy`` or ``.npz``."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"calibration data not found: {path}", hint="check the path")
    if path.is_dir():
        data = _images(path, input_shape)
    elif path.suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            data = archive["x"] if "x" in archive else archive[archive.files[0]]
    else:
        raise ExportError(
            f"unsupported calibration data {path}",
            hint="pass a folder of images, an .npy array or an .npz with an 'x' array",
        )
    return check_inputs(data, input_shape, str(path))


def check_inputs(data: np.ndarray, input_shape: tuple[int, ...], where: str) -> np.ndarray:
    """Refuse arrays whose per-sample shape differs from the model input."""
    tail = tuple(input_shape[1:])
    if data.ndim == len(tail) + 1 and tuple(data.shape[1:]) == tail and len(data):
        return np.ascontiguousarray(data, dtype=np.float32)
    raise ExportError(
        f"calibration data {where} has shape {tuple(data.shape)}, but the model takes "
        f"samples shaped {tail}",
        hint=f"provide an array shaped (N, {', '.join(map(str, tail))}) or matching images",
    )


def load_labelled(path: Path, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz`` with arrays ``x`` and ``y`` (for accuracy reports)."""
    with np.load(path, allow_pickle=False) as archive:
        if "x" not in archive or "y" not in archive:
            raise ExportError(
                f"{path} needs arrays 'x' and 'y'", hint="np.savez(path, x=..., y=...)"
            )
        x, y = archive["x"], archive["y"]
    x = check_inputs(x, input_shape, str(path))
    if len(y) != len(x):
        raise ExportError(f"{path}: {len(x)} inputs but {len(y)} labels")
    return x, y.astype(np.int64)


def _images(folder: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ExportError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    if len(input_shape) != 4:
        raise ExportError(f"image folders need an NCHW model input, got {input_shape}")
    channels, height, width = input_shape[1:]
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ExportError(f"image folders need 1 or 3 input channels, the model has {channels}")
    arrays = []
    for file in files:
        with Image.open(file) as image:
            image = image.convert(mode).resize((width, height))
            pixels = np.asarray(image, np.float32) / 255.0
        arrays.append(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1))
    return np.stack(arrays)
