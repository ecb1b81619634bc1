"""Beam search, scored and stopped exactly as Hugging Face ``generate`` (4.5x) does it.

Each step keeps the ``2 * num_beams`` best continuations over all beams (more with several
EOS ids), finishes those that hit EOS or the length cap among the top ``num_beams``
(score / generated_length ** length_penalty), and continues with the best unfinished ones.
``early_stopping``: True stops when ``num_beams`` hypotheses are finished; False stops when
the best running beam, at its current length, cannot beat the worst finished one; "never"
assumes the longest possible length when ``length_penalty > 0``.

Tokens are final only at the end, so they are yielded all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from edgert.decoding import DecodingOptions, constrain
from edgert.errors import InputError
from edgert.hookspecs import hookimpl

NEG = -1.0e9


@dataclass(frozen=True)
class BeamOptions(DecodingOptions):
    """Beam search options."""

    num_beams: int = 4  # hypotheses kept; 1 = greedy
    length_penalty: float = 1.0  # exponent of the length normalisation; > 0 favours longer
    early_stopping: bool | Literal["never"] = False  # see the module docstring

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise InputError(f"num_beams must be a positive integer, got {self.num_beams!r}")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


@dataclass
class _State:
    running: list[list[int]]
    running_scores: np.ndarray
    finished: list[list[int]]
    finished_scores: np.ndarray
    done: np.ndarray
    hopeful: bool = True  # the early-stop heuristic is not yet satisfied


class BeamDecoder:
    """Beam search over a model with batched steps (``start_batch``/``step_batch``/``reorder``)."""

    name: ClassVar[str] = "beam"
    Options: ClassVar[type] = BeamOptions
    needs: ClassVar[frozenset[str]] = frozenset({"start_batch", "step_batch", "reorder"})

    def decode(self, model: Any, input_ids: Sequence[int], options: BeamOptions) -> Iterator[int]:
        """Run the search; yield the best hypothesis' tokens."""
        missing = [name for name in self.needs if not hasattr(model, name)]
        if missing:
            raise InputError(
                f"beam search needs batched steps, which {type(model).__name__} lacks ({', '.join(missing)})",
                hint="use --decoder greedy or sampling with this model",
            )
        nb = options.num_beams
        keep = max(2, 1 + len(options.stop_ids)) * nb
        logits = model.start_batch(input_ids, nb)
        state = _State(
            running=[[] for _ in range(nb)],
            running_scores=np.array([0.0] + [NEG] * (nb - 1)),
            finished=[[] for _ in range(nb)],
            finished_scores=np.full(nb, NEG),
            done=np.zeros(nb, bool),
        )
        while True:
            rows, more = self._advance(state, logits, options, keep)
            if not more:
                break
            model.reorder(rows)
            logits = model.step_batch(np.array([[seq[-1]] for seq in state.running], np.int64))[
                :, -1
            ]
        yield from state.finished[0]

    def _advance(
        self, state: _State, logits: np.ndarray, options: BeamOptions, keep: int
    ) -> tuple[np.ndarray, bool]:
        """One beam step; returns the cache rows to keep and whether to continue."""
        nb, vocab = len(state.running), logits.shape[-1]
        logp = _log_softmax(logits.astype(np.float32))
        logp = np.stack([constrain(logp[b], state.running[b], options) for b in range(nb)])
        flat = (logp + state.running_scores[:, None].astype(np.float32)).reshape(-1)
        top = _top(flat, keep)
        scores, beams, tokens = flat[top].astype(np.float64), top // vocab, top % vocab
        candidates = [[*state.running[b], int(t)] for b, t in zip(beams, tokens, strict=True)]
        hits = np.array(
            [c[-1] in options.stop_ids or len(c) >= options.max_new_tokens for c in candidates]
        )
        # running beams for the next step: the best candidates that did not finish
        running_scores = scores + hits * NEG
        chosen = _top(running_scores, nb)
        generated = len(candidates[0])
        self._finish(state, candidates, scores, hits, generated, options)
        state.running = [candidates[i] for i in chosen]
        state.running_scores = running_scores[chosen]
        self._heuristic(state, generated, options)
        open_beam = not (state.done.all() and options.early_stopping is True)
        return beams[chosen], bool(state.hopeful and open_beam and not hits.all())

    def _finish(
        self, state: _State, candidates: list[list[int]], scores: np.ndarray, hits: np.ndarray,
        generated: int, options: BeamOptions,
    ) -> None:  # fmt: skip
        nb = len(state.running)
        just = hits & (np.arange(len(candidates)) < nb)
        normed = scores / (generated**options.length_penalty)
        if state.done.all() and options.early_stopping is True:
            normed = normed + NEG
        if not state.hopeful:
            normed = normed + NEG
        normed = normed + (~just) * NEG
        merged_scores = np.concatenate([state.finished_scores, normed])
        merged = state.finished + candidates
        merged_done = np.concatenate([state.done, just])
        best = _top(merged_scores, nb)
        state.finished = [merged[i] for i in best]
        state.finished_scores = merged_scores[best]
        state.done = merged_done[best]

    def _heuristic(self, state: _State, generated: int, options: BeamOptions) -> None:
        length = (
            options.max_new_tokens
            if options.early_stopping == "never" and options.length_penalty > 0
            else generated
        )
        best_running = state.running_scores[0] / (length**options.length_penalty)
        worst = np.where(state.done, state.finished_scores.min(), NEG)
        state.hopeful = bool(state.hopeful and np.any(best_running > worst))


@hookimpl
def register_decoders(register):
    """Register beam search."""
    register(BeamDecoder)
