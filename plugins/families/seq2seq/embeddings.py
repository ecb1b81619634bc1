"""Token-embedding tables kept outside the graphs, stored once per bundle.

Encoder and decoder of T5/BART/Marian share one table; keeping it out of the ONNX graphs
stores it once instead of twice and lets it be quantized like the weights. A lookup is a
few rows per decoder step, so int8 rows are dequantized on the fly at no measurable cost.

Files: ``<name>.npy`` (float32, float16 or int8 rows) and, for int8, ``<name>.scale.npy``
(one float32 scale per row, symmetric). Rows are read from the file as they are looked up
(``os.preadv`` at each row's offset), so only those rows take memory. A memory map would
not do that: with the file in the page cache the kernel maps neighbouring pages on each
fault, and looking up 128 rows of a T5-small table made all 16 MB of it resident
(``benchmarks/seq2seq.py``'s memory table). Where ``os.preadv`` is missing (Windows) the
table is memory-mapped.
"""

from __future__ import annotations

import math
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from edgert.errors import BundleError


class EmbeddingTable:
    """Rows of token embeddings, dequantized on lookup when stored as int8."""

    def __init__(self, path: Path, multiplier: float = 1.0) -> None:
        with open(path, "rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)  # fmt: skip
                shape, fortran, dtype = read(handle)
            except ValueError as exc:
                raise BundleError(f"{path.name} is not a .npy table: {exc}",
                                  hint="re-export the bundle") from exc  # fmt: skip
            self.offset = handle.tell()
        if fortran or len(shape) != 2 or np.dtype(dtype).hasobject:
            raise BundleError(f"{path.name} is not a 2-D table of numbers ({shape}, {dtype})",
                              hint="re-export the bundle")  # fmt: skip
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        if path.stat().st_size < self.offset + self.shape[0] * self.row_bytes:
            raise BundleError(f"{path.name} is shorter than its {self.shape} table",
                              hint="re-export the bundle")  # fmt: skip
        if hasattr(os, "preadv"):
            self.fd = os.open(path, os.O_RDONLY)
            weakref.finalize(self, os.close, self.fd)
            self.mapped = None
        else:  # A plain ndarray view skips np.memmap's per-lookup Python overhead.
            self.fd = -1
            self.mapped = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
        scale = path.with_suffix(".scale.npy")
        self.scale = np.load(scale, allow_pickle=False) if scale.exists() else None
        self.multiplier = np.float32(multiplier)  # e.g. sqrt(d_model) for Marian's encoder

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.shape[1])

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The stored rows of ``ids`` (any shape), as stored (int8, float16 or float32)."""
        if self.mapped is not None:
            return self.mapped[ids]
        ids = np.asarray(ids)
        flat = ids.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.shape[0]):
            raise IndexError(f"token id out of range 0..{self.shape[0] - 1}")
        out = np.empty((flat.size, self.shape[1]), self.dtype)
        fd, offset, size = self.fd, self.offset, self.row_bytes
        for row, token in zip(out, flat.tolist(), strict=True):
            if os.preadv(fd, [row], offset + token * size) != size:
                raise BundleError("an embedding table was truncated while in use",
                                  hint="re-export the bundle")  # fmt: skip
        return out.reshape(*ids.shape, self.shape[1])

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """float32 embeddings for an int array of token ids (any shape)."""
        rows = np.asarray(self.rows(ids), dtype=np.float32)
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


def multiplier(tables: Any, role: str, where: object) -> float:
    """``embeddings.<role>.scale`` of a manifest: a finite number, or a BundleError."""
    value = tables[role]["scale"]
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BundleError(f"the manifest of {where}: embeddings.{role}.scale is {value!r}; "
                          "expected a number", hint="re-export the bundle")  # fmt: skip
    return float(value)


def check_width(table: EmbeddingTable, session: Any, where: object) -> EmbeddingTable:
    """``table`` if its rows are as wide as ``session``'s ``inputs_embeds``; else a
    BundleError at load (a damaged header can describe another shape that still reads)."""
    width = next((i.shape[-1] for i in session.get_inputs() if i.name == "inputs_embeds"), None)
    if isinstance(width, int) and width != table.dim:
        raise BundleError(f"{where}: the embedding rows are {table.dim} wide, the graph takes "
                          f"{width}", hint="re-export the bundle")  # fmt: skip
    return table
