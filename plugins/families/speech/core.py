"""The step interface over a speech encoder and its text decoder (``StepModel``).

The decoder's input is its prompt: ``start(prompt)`` encodes the audio window given to
``listen`` (once: a temperature fallback or a beam search over the same window reuses the
cross K/V) and feeds the whole prompt (``<|startoftranscript|>``, language, task, ...) in
one call, returning the logits after its last token. Every later call is the seq2seq
core's: the same cache names, ``step``, ``rollback`` and the batched calls beams use, so
every decoding plugin runs speech unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgert.decoding import ModelInfo
from edgert.errors import InputError
from edgert.plugins.families.seq2seq.core import Layout, Seq2SeqCore
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable
from edgert.plugins.families.speech.names import INPUT_FEATURES


class SpeechCore(Seq2SeqCore):
    """Encoder (features -> cross K/V) + decoder sessions as a ``StepModel`` (batch 1)."""

    def __init__(self, encoder: Any, decoder: Any, table: EmbeddingTable, layout: Layout,
                 window: tuple[int, int]) -> None:  # fmt: skip
        super().__init__(encoder, decoder, (table, table), layout, decoder_start=-1)
        self.info = ModelInfo(decoder_start=None)  # the prompt starts the decoder
        self.window = window  # (mel bins, frames) the encoder takes
        self._features: np.ndarray | None = None
        self._cross: list[np.ndarray] | None = None  # the window's cross K/V, batch 1

    def listen(self, features: np.ndarray) -> None:
        """The window the next ``start`` decodes: log-mel ``[mels, frames]``."""
        features = np.asarray(features, np.float32)
        if features.shape != self.window:
            raise InputError(
                f"features of shape {features.shape}; the encoder takes {self.window}",
                hint="compute them with the bundle's front-end (SpeechModel.features)",
            )
        self._features, self._cross = features, None

    def prepare_draft(self, draft: Any) -> None:
        """A speech draft model (``speculative``) decodes the same window; a draft of
        another family has no audio to hear."""
        if not isinstance(draft, SpeechCore):
            raise InputError(
                f"the draft model is a {type(draft).__name__}; a speech model needs a speech draft",
                hint="pass a speech bundle with the same tokenizer as --draft",
            )
        if self._features is None:
            raise InputError("no audio to decode", hint="call listen(features) first")
        if draft.window != self.window:
            raise InputError(f"the draft's encoder takes {draft.window} features; this model's "
                             f"takes {self.window}", hint="pick a draft with the same front-end")  # fmt: skip
        draft.listen(self._features)

    def encode(self, prompt: Sequence[int], batch: int = 1) -> None:
        """Run the encoder on the window (unless this window is encoded already)."""
        if self._features is None:
            raise InputError("no audio to decode", hint="call listen(features) first")
        if self._cross is None:
            self._cross = self.encoder.run(None, {INPUT_FEATURES: self._features[None]})
        cross = self._cross if batch == 1 else [np.repeat(c, batch, axis=0) for c in self._cross]
        self._feed = dict(zip(self._cross_names, cross, strict=True))
        self._prepared = None
        self.reset(batch)

    def start_with(self, prompt: Sequence[int], new_ids: Sequence[int]) -> np.ndarray:
        """Feed the prompt and ``new_ids`` in one call: logits after the prompt's last
        token and after each new id."""
        if not prompt:
            raise InputError(
                "the decoder prompt is empty", hint="start it with <|startoftranscript|>"
            )
        if self._prepared != tuple(prompt):
            self.encode(prompt)
        self._prepared = None
        return self.step([*prompt, *new_ids])[len(prompt) - 1 :]

    def start_batch(self, prompt: Sequence[int], batch: int) -> np.ndarray:
        """Encode once for ``batch`` hypotheses; logits ``(batch, vocab)`` after the prompt."""
        self.encode(prompt, batch)
        ids = np.tile(np.asarray(prompt, np.int64), (batch, 1))
        return self.step_batch(ids)[:, -1]
