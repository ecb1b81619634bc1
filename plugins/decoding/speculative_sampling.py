"""Speculative sampling: tokens distributed as the target's sampling, in fewer target calls.

The draft model samples up to K tokens from its own distribution q (after the same
constraints and warping as ``sampling``: temperature, top-k, top-p); the target scores
them all in one call. Draft token x_i is kept with probability min(1, p_i(x_i) / q_i(x_i));
at the first rejection one token is drawn from the residual max(0, p_i - q_i),
renormalised, and when every draft is kept one more comes from p_K. Each emitted token is
then distributed exactly as one drawn from p, whatever the draft (the rejection rule of
Leviathan et al. and Chen et al., 2023): a poor draft costs calls, never quality.

p is what the target's multi-token calls compute. On quantized bundles that differs from a
one-token call by rounding (``edgert.speculation.VerifyTolerance``), far below anything
sampling can tell apart; greedy speculative decoding is where it matters, and there
``edgert.speculation`` settles it exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from edgert.decoding import StartsWithDrafts, StepModel, constrain, finished
from edgert.plugins.decoding.sampling import warp
from edgert.speculation import AdaptiveK, SpeculationStats, encoding_ahead, next_draft


def sample_speculatively(
    model: StepModel, proposer: Any, input_ids: Sequence[int], options: Any, k: AdaptiveK,
    stats: SpeculationStats, rng: np.random.Generator,
) -> Iterator[int]:  # fmt: skip
    """Sampled tokens; ``proposer`` (a ``DraftProposer``) keeps the draft's cache and draws."""
    generated: list[int] = []
    proposer.reset(input_ids)
    while True:
        started = time.perf_counter()
        # the first draft runs while the target encodes the input (``speculate``)
        ahead = None if generated else encoding_ahead(model, proposer, input_ids)
        drafts, q = next_draft(
            lambda room: _draft(proposer, generated, room, options, rng),
            k, options, len(generated), ahead,
        )  # fmt: skip
        stats.draft_s += time.perf_counter() - started
        started = time.perf_counter()
        rows = _target_rows(model, input_ids, generated, drafts, stats)
        stats.verify_s += time.perf_counter() - started
        emitted, kept = _verify(rows, drafts, q, generated, options, rng)
        stats.drafted += len(drafts)
        stats.accepted += kept
        for token in emitted:
            generated.append(token)
            yield token
            if finished(token, generated, options):
                return
        k.update(len(drafts), kept)
        unused = len(rows) - len(emitted)  # fed tokens whose rows were not used
        if unused:
            model.rollback(model.length - unused)


def _draft(
    proposer: Any, generated: list[int], room: int, options: Any, rng: np.random.Generator
) -> tuple[list[int], list[np.ndarray]]:
    """Up to ``room`` tokens sampled from the draft, and the distribution of each.

    Stops early where the draft's top probability is below ``confidence``: such a token is
    likely rejected, and every token after it with it.
    """

    def draw(logits: np.ndarray, history: list[int], guess: int | None) -> Any:
        q = warp(constrain(logits, history, options), options)
        if options.confidence and q.max() < options.confidence:
            return None
        return _draw(q, guess, rng), q

    return proposer.sample(generated, room, draw)


def _draw(q: np.ndarray, guess: int | None, rng: np.random.Generator) -> int:
    """A draw from ``q`` that is ``guess`` with probability q[guess].

    The guess (an n-gram of the input) is kept with probability q[guess], else a token is
    drawn from q without it: each token still comes out with probability q[token], and a
    kept guess was already fed to the draft, so its next row costs no call.
    """
    if guess is None:
        return int(rng.choice(q.size, p=q))
    if rng.random() < q[guess]:
        return guess
    rest = q.copy()
    rest[guess] = 0.0
    total = rest.sum()
    return int(rng.choice(q.size, p=rest / total)) if total > 0 else guess


def _target_rows(
    model: StepModel, input_ids: Sequence[int], generated: list[int], drafts: list[int],
    stats: SpeculationStats,
) -> np.ndarray:  # fmt: skip
    """The target's logits for the next position and after each draft token (one call,
    two where the first call has no ``start_with``)."""
    stats.target_calls += 1
    if generated:
        return model.step([generated[-1], *drafts])
    if drafts and isinstance(model, StartsWithDrafts):
        return model.start_with(input_ids, drafts)
    first = model.start(input_ids)
    if not drafts:
        return first
    stats.target_calls += 1
    return np.concatenate([first, model.step(drafts)])


def _verify(
    rows: np.ndarray, drafts: list[int], q: Sequence[np.ndarray], generated: list[int],
    options: Any, rng: np.random.Generator,
) -> tuple[list[int], int]:  # fmt: skip
    """The tokens this call emits (kept drafts, then one more) and how many drafts were kept.

    Stops after a stop id or at ``max_new_tokens`` like any decoder.
    """
    emitted: list[int] = []
    for row, token, dist in zip(rows, drafts, q, strict=False):
        p = warp(constrain(row, [*generated, *emitted], options), options)
        if rng.random() * dist[token] >= p[token]:  # rejected: P = 1 - min(1, p/q)
            emitted.append(_residual(p, dist, rng))
            return emitted, len(emitted) - 1
        emitted.append(token)
        if finished(token, [*generated, *emitted], options):
            return emitted, len(emitted)
    p = warp(constrain(rows[len(emitted)], [*generated, *emitted], options), options)
    emitted.append(int(rng.choice(p.size, p=p)))
    return emitted, len(emitted) - 1


def _residual(p: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> int:
    """A draw from max(0, p - q), renormalised (from p where p and q coincide)."""
    rest = np.maximum(p - q, 0.0)
    total = rest.sum()
    return int(rng.choice(p.size, p=rest / total if total > 0 else p))
