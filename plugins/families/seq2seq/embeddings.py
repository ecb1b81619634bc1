"""Token-embedding tables kept outside the graphs, stored once per bundle.

Encoder and decoder of T5/BART/Marian share one table; keeping it out of the ONNX graphs
stores it once instead of twice and lets it be quantized like the weights. A lookup is a
few rows per decoder step, so int8 rows are dequantized on the fly at no measurable cost.

Files: ``<name>.npy`` (float32, float16 or int8 rows) and, for int8, ``<name>.scale.npy``
(one float32 scale per row, symmetric). Loaded with ``mmap_mode="r"``: only rows that are
looked up are read, which keeps resident memory low.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class EmbeddingTable:
    """Rows of token embeddings, dequantized on lookup when stored as int8."""

    def __init__(self, path: Path, multiplier: float = 1.0) -> None:
        # A plain ndarray view of the mapping: still only touched rows are read, but each
        # lookup skips np.memmap's Python-level __getitem__/__array_finalize__ (it runs on
        # every decoder step, where a tiny model's whole call costs ~0.3 ms).
        self.table = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
        scale = path.with_suffix(".scale.npy")
        self.scale = np.load(scale, allow_pickle=False) if scale.exists() else None
        self.multiplier = np.float32(multiplier)  # e.g. sqrt(d_model) for Marian's encoder

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.table.shape[1])

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """float32 embeddings for an int array of token ids (any shape)."""
        rows = np.asarray(self.table[ids], dtype=np.float32)
        if self.scale is not None:
            rows *= self.scale[ids][..., None]
        if self.multiplier != 1:
            rows *= self.multiplier
        return rows


def save_table(weights: np.ndarray, path: Path, precision: str) -> list[Path]:
    """Write ``weights`` [vocab, dim] at ``precision`` (fp32 | fp16 | int8); returns the files."""
    weights = np.asarray(weights, dtype=np.float32)
    if precision in (
        "int8",
        "int4",
    ):  # int4 bundles keep int8 rows: lookups are not bandwidth-bound
        scale = np.abs(weights).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        quantized = np.clip(np.rint(weights / scale[:, None]), -127, 127).astype(np.int8)
        np.save(path, quantized)
        scale_path = path.with_suffix(".scale.npy")
        np.save(scale_path, scale.astype(np.float32))
        return [path, scale_path]
    np.save(path, weights.astype(np.float16 if precision == "fp16" else np.float32))
    return [path]
