"""The step interface over static-shape (NPU) seq2seq graphs.

Inputs are padded to the encoder's fixed length; the decoder keeps fixed-size K/V buffers
that the runtime fills slot by slot, and a bias input masks the unused slots. Rollback is a
length change: slots past it are masked on the next step, nothing is copied.

A bundle with a verify graph (``export.verify_width`` K >= 2) takes 2..K new tokens in one
call, padded to K: the lossless decoders then check a draft in one call, as on dynamic
graphs. Its logits come from another graph than the one-token step's, so they may move a
little (more under QDQ, where each graph has its own calibrated ranges): the bundle
records how far, measured at export, and the decoders treat it as any multi-token drift
(``edgert.decoding.VerifyTolerance``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgert.decoding import ModelInfo
from edgert.errors import BundleError, InputError
from edgert.plugins.families.seq2seq.core import Layout
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable
from edgert.plugins.families.seq2seq.names import (
    INPUTS_EMBEDS,
    LOGITS,
    cache_names,
    check_inputs,
    static_t5_io,
)

MASKED = -1.0e4  # zeroes a softmax weight; small enough for 16-bit QDQ activation ranges


class StaticSeq2SeqCore:
    """Batch-1 ``StepModel`` over static graphs: one new token per call of the step graph,
    and up to ``width`` per call of the verify graph where the bundle has one."""

    def __init__(
        self, encoder: Any, decoder: Any, tables: tuple[EmbeddingTable, EmbeddingTable],
        layout: Layout, decoder_start: int, source_len: int, max_total: int, bias_table: np.ndarray,
        verify: Any = None, width: int = 0,
    ) -> None:  # fmt: skip
        self.encoder, self.decoder, self.verify = encoder, decoder, verify
        self.encoder_table, self.decoder_table = tables
        self.layout, self.vocab_size = layout, layout.vocab
        self.decoder_start, self.source_len, self.max_total = decoder_start, source_len, max_total
        self.bias_table = bias_table
        self.width = width if verify is not None else 1
        # without a verify graph K tokens cost K calls: drafting cannot save calls
        self.info = ModelInfo(
            decoder_start=decoder_start, multi_token_step=self.width > 1, step_width=self.width
        )
        kv = cache_names(layout.layers)
        self._past_names, self._cross_names = kv.past, kv.cross
        self._outputs = [LOGITS, *kv.new]
        self._buffers: list[np.ndarray] = []
        self._feed: dict[str, np.ndarray] = {}
        self._wide: dict[str, np.ndarray] = {}
        self._length = 0
        # the verify mask's triangle over the new tokens: row i sees new tokens 0..i
        self._later = np.triu(np.ones((self.width, self.width), bool), 1)

    def encode(self, input_ids: Sequence[int]) -> None:
        """Pad to the encoder bucket, run it once, reset the K/V buffers."""
        n = len(input_ids)
        if not 0 < n <= self.source_len:
            raise InputError(
                f"the input has {n} tokens; this static bundle takes 1..{self.source_len}",
                hint="shorten the input or pass truncate=True",
            )
        ids = np.zeros((1, self.source_len), np.int64)
        ids[0, :n] = input_ids
        mask = (np.arange(self.source_len) < n).astype(np.int64)[None]
        embeds = self.encoder_table(ids) * mask[..., None]
        cross = self.encoder.run(
            None, {INPUTS_EMBEDS: embeds.astype(np.float32), "attention_mask": mask}
        )
        bias = np.full((1, 1, 1, self.source_len), MASKED, np.float32)
        bias[..., :n] = 0.0
        shape = (1, self.layout.heads, self.max_total, self.layout.head_dim)
        self._buffers = [np.zeros(shape, np.float32) for _ in self._past_names]
        self._feed = {"cross_bias": bias, **dict(zip(self._cross_names, cross, strict=True))}
        self._feed.update(zip(self._past_names, self._buffers, strict=True))
        # One self-attention bias buffer, updated in place per token: positions past the
        # current one stay masked (``rollback`` masks again what it forgets).
        self._bias = np.full((1, self.layout.heads, 1, self.max_total + 1), MASKED, np.float32)
        self._feed["self_bias"] = self._bias
        self._token = np.zeros((1, 1), np.int64)
        self._length = 0
        if self.verify is not None:  # the same buffers, K queries at a time
            shape = (1, self.layout.heads, self.width, self.max_total + self.width)
            self._wide_bias = np.full(shape, MASKED, np.float32)
            self._wide = {**self._feed, "self_bias": self._wide_bias}
            self._tokens = np.zeros((1, self.width), np.int64)

    def start(self, input_ids: Sequence[int]) -> np.ndarray:
        """Encode and return logits after the decoder start token."""
        self.encode(input_ids)
        return self.step([self.decoder_start])

    def step(self, new_ids: Sequence[int]) -> np.ndarray:
        """Append tokens; logits ``(len(new_ids), vocab)``. One token is one call of the step
        graph; more are verify calls of up to ``width`` tokens each, where there is one."""
        if len(new_ids) > 1 and self.verify is not None:
            chunks = [new_ids[i : i + self.width] for i in range(0, len(new_ids), self.width)]
            return np.concatenate([self._verify(chunk) for chunk in chunks])
        rows = []
        for token in new_ids:
            position = self._length
            self._check_room(1)
            feed = self._feed
            self._token[0, 0] = token
            feed[INPUTS_EMBEDS] = self.decoder_table(self._token)
            self._set_bias(position)
            outputs = self.decoder.run(self._outputs, feed)
            for buffer, new in zip(self._buffers, outputs[1:], strict=True):
                buffer[:, :, position] = new[:, :, 0]
            self._length += 1
            rows.append(outputs[0][0, -1])
        return np.stack(rows)

    def _check_room(self, count: int) -> None:
        if self._length + count > self.max_total:
            raise InputError(
                f"the decoder's K/V buffers hold {self.max_total} positions; generation went past them",
                hint="lower max_new_tokens, or export with a larger max_total_length",
            )

    def _verify(self, new_ids: Sequence[int]) -> np.ndarray:
        """One verify call: ``new_ids`` (1..width) padded to ``width``; their K/V written
        into the buffers (``rollback`` forgets the rejected ones)."""
        n, position = len(new_ids), self._length
        self._check_room(n)
        self._tokens[0, :n] = new_ids
        self._tokens[0, n:] = 0
        feed = self._wide
        feed[INPUTS_EMBEDS] = self.decoder_table(self._tokens)
        self._set_wide_bias(position, n)
        outputs = self.verify.run(self._outputs, feed)
        end = position + n
        for buffer, new in zip(self._buffers, outputs[1:], strict=True):
            buffer[:, :, position:end] = new[:, :, :n]
        self._length = end
        return outputs[0][0, :n]

    def _set_wide_bias(self, position: int, n: int) -> None:
        """Rows of queries ``position .. position + n - 1`` over the cached positions and
        the new ones (causal); each padding row sees only itself."""
        bias, table, m = self._wide_bias, self.bias_table, self.max_total
        end = position + n
        bias.fill(MASKED)
        bias[0, :, :n, :position] = table[:, position:end, :position]
        new = table[:, position:end, position:end]
        bias[0, :, :n, m : m + n] = np.where(self._later[:n, :n], MASKED, new)
        padding = np.arange(n, self.width)
        bias[0, :, padding, m + padding] = 0.0

    def _set_bias(self, position: int) -> None:
        """The bias row of query ``position``: over the cached positions and the new one
        (the last slot); slots at ``position`` and after stay masked."""
        bias = self._bias
        bias[0, :, 0, :position] = self.bias_table[:, position, :position]
        bias[0, :, 0, self.max_total] = self.bias_table[:, position, position]

    def rollback(self, length: int) -> None:
        """Forget positions ``>= length`` (they are masked from now on)."""
        if not 0 <= length <= self._length:
            raise ValueError(f"cannot roll back to {length}; {self._length} positions cached")
        self._bias[0, :, 0, length : self.max_total] = MASKED
        self._length = length

    @property
    def length(self) -> int:
        """Decoder positions cached so far."""
        return self._length


def open_verify(bundle: Any, open_session: Callable[[Any], Any]) -> Any:
    """The ``SessionInfo`` of a static bundle's verify graph, checked against the manifest;
    None for bundles without one (exported with ``export.verify_width = 0``, or before
    verify graphs existed: the lossless decoders are then refused, saying how to re-export).
    """
    static = bundle.manifest["static"]
    width = static.get("verify_width", 0)
    if not width:
        return None
    info = open_session(bundle.file("verify.onnx"))
    layers = bundle.manifest["layout"]["layers"]
    check_inputs(static_t5_io(layers), {"verify": info.session}, bundle.path, "static.verify_width")
    shape = next(i.shape for i in info.session.get_inputs() if i.name == INPUTS_EMBEDS)
    if type(width) is not int or shape[1] != width:
        raise BundleError(
            f"the manifest of {bundle.path}: static.verify_width is {width!r}; verify.onnx "
            f"takes {shape[1]!r} tokens",
            hint="re-export the bundle",
        )
    return info


def verify_drift(bundle: Any) -> tuple[float, float]:
    """How far the verify graph moves the logits from the step graph's: measured at export,
    with a margin (``exporters/seq2seq/validate.py``), as ``(absolute, relative)``."""
    drift = (bundle.manifest.get("validation") or {}).get("verify_drift")
    if not (
        isinstance(drift, list)
        and len(drift) == 2
        and all(type(x) in (int, float) and 0 <= x < 1e6 for x in drift)
    ):
        raise BundleError(
            f"the manifest of {bundle.path}: validation.verify_drift is {drift!r}; expected "
            "[absolute, relative], two numbers >= 0",
            hint="re-export the bundle",
        )
    return float(drift[0]), float(drift[1])


def one_token_hint(bundle: Any, profile: Any, verify: Any) -> str:
    """For a static bundle without a verify graph: how to export one (else "")."""
    if bundle.family != "seq2seq" or not bundle.manifest.get("static") or verify is not None:
        return ""  # other families' static bundles have no verify graph to export
    from edgert.profiles import builtin_devices_dir

    source = (bundle.manifest.get("provenance") or {}).get("source") or "SOURCE"
    shipped = (builtin_devices_dir() / f"{profile.id}.toml").is_file()
    device = profile.id if shipped else f"{profile.id}.toml"
    return (
        "this bundle has no verify graph (exported with export.verify_width = 0, or by an "
        f"older edgert): re-export it with `edgert export {source} --device {device} --force` "
        "from a profile whose export.verify_width is 2..64 (8 is the default), or use "
        "--decoder greedy (or sampling)"
    )
