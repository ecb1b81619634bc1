"""Runtime of the ``cnn`` family: image classification from a bundle.

The hot path is one ``session.run`` plus a shape/dtype check on precomputed tuples, so the
runtime adds next to nothing to ONNX Runtime (``benchmarks/cnn.py`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgert.errors import BundleError, InputError
from edgert.providers import SessionInfo, create_session

_F32 = np.dtype(np.float32)

if TYPE_CHECKING:
    from edgert.bundle import Bundle
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one image, best first; scores are softmax probabilities."""

    labels: tuple[str, ...]
    scores: tuple[float, ...]
    indices: tuple[int, ...]

    @property
    def label(self) -> str:
        """The top-1 label."""
        return self.labels[0]


def _checked_io(
    session: Any, graph: dict[str, Any], bundle: Bundle
) -> tuple[str, list[str], tuple]:
    """The graph's input name, output and input shape, as the manifest states them and as
    the session has them: a manifest that disagrees with its own graph is refused at load,
    not at the first call."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    specs, outs = graph.get("inputs") or [{}], graph.get("outputs") or [{}]
    spec = specs[0] if isinstance(specs[0], dict) else {}
    name, out = spec.get("name"), outs[0].get("name") if isinstance(outs[0], dict) else None
    shape = tuple(spec.get("shape") or ())
    real = inputs.get(name) if isinstance(name, str) else None
    agrees = (
        len(inputs) == 1 and real is not None and out in outputs and len(shape) == len(real)
        and len(shape) >= 2
        and all(a == b for a, b in zip(shape, real, strict=True) if isinstance(b, int))
    )  # fmt: skip
    if not agrees:
        raise BundleError(
            f"the manifest of {bundle.path} does not describe its graph {graph.get('file')}: "
            f"input {name!r} {list(shape)} and output {out!r}, the graph has inputs "
            f"{ {k: list(v) for k, v in inputs.items()} } and outputs {outputs}",
            hint="re-export the bundle",
        )
    return name, [out], shape


class Classifier:
    """A loaded image classifier. Build it with :func:`edgert.load`.

    Example:
        >>> model = edgert.load("digits-bundle")            # doctest: +SKIP
        >>> model.classify(images, top_k=3)[0].label         # doctest: +SKIP
        '7'
    """

    def __init__(
        self,
        bundle: Bundle,
        profile: DeviceProfile,
        catalog: Catalog,
        *,
        allow_fallback: bool | None = None,
        threads: int | None = None,
    ) -> None:
        graph = bundle.graph("model")
        self.bundle = bundle
        self.profile = profile
        self.session_info: SessionInfo = create_session(
            bundle.file(graph["file"]),
            profile,
            catalog,
            allow_fallback=allow_fallback,
            threads=threads,
        )
        self._session = self.session_info.session
        self._input, self._outputs, self.input_shape = _checked_io(self._session, graph, bundle)
        self._tail = tuple(self.input_shape[1:])
        self._fixed_batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else None
        labels = bundle.manifest.get("labels") or ()
        if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"the manifest of {bundle.path}: labels must be a list of names",
                              hint="re-export the bundle")  # fmt: skip
        self.labels: tuple[str, ...] = tuple(labels)

    @property
    def provider(self) -> str:
        """The provider that runs the graph (after any reported fallback)."""
        return self.session_info.active

    def example_input(self, batch: int = 1) -> np.ndarray:
        """A seeded random batch shaped like the input (profiling, smoke tests)."""
        n = self._fixed_batch or batch
        return np.random.default_rng(0).random((n, *self._tail), dtype=np.float32)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs for a float32 batch shaped like the bundle's input."""
        # Identity checks: this condition is the whole per-call cost edgert adds to ORT.
        if (
            type(batch) is not np.ndarray
            or batch.dtype is not _F32
            or batch.shape[1:] != self._tail
        ):
            batch = self._check(batch)
        if self._fixed_batch is None or batch.shape[0] == self._fixed_batch:
            return self._session.run(self._outputs, {self._input: batch})[0]
        return self._run_fixed(batch)

    def classify(self, batch: np.ndarray, top_k: int = 5) -> list[Prediction]:
        """Top-k predictions for each image of ``batch`` (or for one image without batch dim)."""
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        logits = self.logits(batch).astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [self._prediction(row, probs[i]) for i, row in enumerate(order)]

    def _prediction(self, order: np.ndarray, probs: np.ndarray) -> Prediction:
        labels = tuple(self.labels[j] if j < len(self.labels) else str(j) for j in order)
        return Prediction(
            labels, tuple(float(probs[j]) for j in order), tuple(int(j) for j in order)
        )

    def _run_fixed(self, batch: np.ndarray) -> np.ndarray:
        """Static-batch graphs (NPU): run in chunks of the fixed size, padding the last one."""
        size, n = self._fixed_batch, batch.shape[0]
        outs = []
        for start in range(0, n, size):
            chunk = batch[start : start + size]
            if chunk.shape[0] < size:
                pad = np.zeros((size - chunk.shape[0], *self._tail), np.float32)
                chunk = np.concatenate([chunk, pad])
            outs.append(self._session.run(self._outputs, {self._input: chunk})[0])
        return np.concatenate(outs)[:n]

    def _check(self, batch: Any) -> np.ndarray:
        expected = ("N" if self._fixed_batch is None else self._fixed_batch, *self._tail)
        if not isinstance(batch, np.ndarray):
            raise InputError(
                f"classify expects a numpy array, got {type(batch).__name__}",
                hint=f"pass np.asarray(images, dtype=np.float32) shaped {expected}",
            )
        if not np.issubdtype(batch.dtype, np.floating):
            raise InputError(
                f"classify expects float32 input, got dtype {batch.dtype}",
                hint="convert and normalise as the model was trained, e.g. "
                "images.astype(np.float32) / scale",
            )
        if batch.shape == self._tail:
            batch = batch[None]
        if (
            batch.ndim != len(self.input_shape)
            or batch.shape[1:] != self._tail
            or not batch.shape[0]
        ):
            raise InputError(
                f"input shape {tuple(batch.shape)} does not match the model input {expected}",
                hint=f"pass a batch shaped (batch, {', '.join(map(str, self._tail))}) "
                f"or one image shaped {self._tail}",
            )
        return np.ascontiguousarray(batch, dtype=np.float32)
