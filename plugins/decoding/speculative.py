"""Speculative decoding with a smaller draft model (same tokenizer), adaptive draft length.

The draft decodes greedily ahead; it stops early when its own top probability falls below
``confidence`` (SpecDec++-style: a doubtful draft costs a target call for nothing), and
the maximum draft length grows and shrinks with the running acceptance. The target
verifies through the shared core, so the tokens are exactly the target's greedy tokens.

With ``sample=True`` the draft samples instead and the standard rejection rule keeps the
output distributed as sampling from the target (``speculative_sampling``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgert.decoding import PreparesDraft, StartsWithDrafts, StepModel, constrained_view
from edgert.errors import InputError
from edgert.hookspecs import hookimpl
from edgert.plugins.decoding.lookup import LookupOptions, NgramLookup
from edgert.plugins.decoding.sampling import SamplingOptions
from edgert.plugins.decoding.speculative_sampling import sample_speculatively
from edgert.speculation import AdaptiveK, DraftingDecoder, SpeculationStats, known_prefix


@dataclass(frozen=True)
class SpeculativeOptions(SamplingOptions):
    """The draft bundle and how far it may run ahead; ``sample`` for speculative sampling
    (temperature, top_k, top_p and seed then apply as in ``sampling``)."""

    draft: str = ""  # path of the draft model's bundle (required)
    sample: bool = False  # False: greedy's tokens exactly; True: the target's sampling distribution
    confidence: float = 0.4  # stop drafting below this top probability; 0 = never stop early
    draft_lookup: bool = True  # the draft verifies input n-gram guesses; False = 1 token/call
    draft_tokens: int = 16
    min_draft_tokens: int = 1
    max_draft_tokens: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        warped = self.temperature != 1.0 or self.top_k or self.top_p != 1.0
        if not self.sample and (warped or self.seed is not None):
            raise InputError(
                "temperature, top_k, top_p and seed apply to speculative sampling only",
                hint="add sample=true (-O sample=true) to sample; without it speculative "
                "decoding returns exactly greedy's tokens",
            )
        if not self.draft:
            raise InputError(
                "speculative decoding needs a draft model",
                hint="pass draft=PATH (--draft DRAFT_BUNDLE): a smaller bundle with the same tokenizer",
            )
        if not 0 <= self.confidence < 1:
            raise InputError(f"confidence must be in [0, 1), got {self.confidence!r}")
        if not 1 <= self.min_draft_tokens <= self.draft_tokens <= self.max_draft_tokens:
            raise InputError("need 1 <= min_draft_tokens <= draft_tokens <= max_draft_tokens")


def draft_for(path: str, target: StepModel) -> StepModel:
    """The draft bundle at ``path`` for ``target`` (a step model): it runs where the
    target was told to run (``--device``, ``--allow-fallback``), else on its own profile."""
    return draft_model(path, target).core


def draft_model(path: str, target: StepModel) -> Any:
    """The loaded draft bundle (its ``exclusive`` lock guards its core) for ``target``."""
    return load_draft(path, target.info.run_device, target.info.run_allow_fallback)


@functools.lru_cache(maxsize=4)
def load_draft(path: str, device: str | None = None, allow_fallback: bool | None = None) -> Any:
    """The draft bundle (loaded once per process), on one thread.

    The draft runs in between target calls: idle worker threads of a multi-threaded draft
    session spin on the cores the target needs next (measured: target steps 1.5x slower),
    and a draft small enough to be worth it gains nothing from a second thread. Targets
    loaded separately share it, one generation at a time (``SpeculativeDecoder.decode``).
    """
    import edgert

    return edgert.load(path, device=device, allow_fallback=allow_fallback, threads=1)


@dataclass
class DraftProposer:
    """Keeps the draft's cache in step with the accepted output and drafts ahead.

    The draft's tokens are its own greedy tokens, cut at the first doubtful one. With
    ``draft_lookup`` the draft gets them in fewer calls of its own: it feeds n-gram
    guesses from the input after each token and keeps the ones its logits agree with
    (staged speculation). On a model this small every call is mostly fixed cost, so a
    draft fed one token per call would cost nearly as much as the target it saves.
    """

    draft: StepModel
    options: SpeculativeOptions
    costly: ClassVar[bool] = True  # the target encodes meanwhile (``speculate``)
    guess: NgramLookup | None = None  # input n-gram guesses the draft verifies (None: off)
    source: list[int] = field(default_factory=list)
    fed: list[int] = field(default_factory=list)  # tokens the draft consumed after its start
    history: list[np.ndarray] = field(default_factory=list)  # logits after start / each fed token

    def reset(self, input_ids: Sequence[int]) -> None:
        """Forget the last input; the draft starts lazily, with its first guesses."""
        self.source, self.fed, self.history = list(input_ids), [], []
        if self.guess is not None:
            self.guess.reset(input_ids)

    def propose(self, generated: Sequence[int], k: int) -> list[int]:
        """The draft's greedy tokens after ``generated``, cut at the first doubtful one."""
        return self.sample(generated, k, self._greedy)[0]

    def sample(
        self, generated: Sequence[int], k: int, draw: Callable[..., tuple[int, Any] | None]
    ) -> tuple[list[int], list[Any]]:
        """Up to ``k`` tokens drawn from the draft after ``generated``, and what ``draw``
        returned with each (for sampling: the distribution it drew from).

        ``draw(logits, history, guess)`` draws one token after ``history`` from the draft's
        ``logits``, trying ``guess`` (or None) first so that a sampled draw stays exact, or
        returns None to stop drafting. With ``guess`` set, the input's n-gram guesses are
        fed after each drawn token, and every row a kept guess leaves is drawn from without
        another draft call.
        """
        limit = self.draft.info.max_length
        if limit is not None:  # its start, ``generated`` and all drafts but the last
            k = min(k, limit - len(generated))  # a draft may hold fewer positions than the target
        tokens = list(generated)
        pending = self._sync(generated)  # accepted tokens the draft has not consumed yet
        drafts: list[int] = []
        extras: list[Any] = []
        stops = self.options.stop_ids
        while len(drafts) < k:
            guesses: list[int] = []
            if pending or not self.history:  # else the next row is already there
                # The row after the last guess would draw one token past ``k``: one fewer.
                wanted = k - len(drafts) - 1
                guesses = self.guess.propose(tokens, wanted) if self.guess and wanted else []
                # input n-grams may copy a placeholder (a decoder-decoder memory marker)
                guesses = known_prefix(guesses, self.draft.vocab_size)
                self._step([*pending, *guesses])
            pending, kept = [], 0
            first = len(self.history) - len(guesses) - 1  # row i follows the token before guess i
            for index in range(first, len(self.history)):
                guess = guesses[index - first] if index - first < len(guesses) else None
                drawn = draw(self.history[index], tokens, guess)
                if drawn is None:
                    break
                token, extra = drawn
                drafts.append(token)
                extras.append(extra)
                tokens.append(token)
                if token != guess:
                    pending = [token]  # fed with the next guesses
                    break
                kept += 1
                if len(drafts) == k or token in stops:
                    break
            self._truncate(len(self.fed) - len(guesses) + kept)
            if not pending or len(drafts) == k or tokens[-1] in stops:
                break
        return drafts, extras

    def _step(self, new: list[int]) -> None:
        """Feed ``new`` to the draft (starting it first if needed); keep the logits."""
        if self.history:
            rows = self.draft.step(new)
        elif isinstance(self.draft, StartsWithDrafts):
            rows = self.draft.start_with(self.source, new)
        else:
            rows = [*self.draft.start(self.source), *(self.draft.step(new) if new else [])]
        self.fed.extend(new)
        self.history.extend(rows)

    def _greedy(
        self, logits: np.ndarray, tokens: list[int], guess: int | None
    ) -> tuple[int, None] | None:
        """The draft's greedy token after ``tokens``, or None when its probability is below
        ``confidence`` (a greedy draw needs no guess to stay exact)."""
        scores = constrained_view(logits, tokens, self.options)
        token = int(scores.argmax())
        if self.options.confidence and _top_probability(scores, token) < self.options.confidence:
            return None
        return token, None

    def _sync(self, generated: Sequence[int]) -> list[int]:
        """Roll the draft back to what it shares with ``generated``; return the rest."""
        common = 0
        while common < min(len(self.fed), len(generated)) and self.fed[common] == generated[common]:
            common += 1
        self._truncate(common)
        return list(generated[common:])

    def _truncate(self, length: int) -> None:
        """Keep the first ``length`` fed tokens in the draft's cache."""
        if length < len(self.fed):
            self.draft.rollback(self.draft.length - (len(self.fed) - length))
            del self.fed[length:], self.history[length + 1 :]

    def accepted(self, generated: Sequence[int], drafted: int, accepted: int) -> None:
        """Nothing to do: ``propose`` re-syncs the draft's cache from ``generated``."""


def _top_probability(scores: np.ndarray, top: int) -> float:
    """Softmax probability of ``scores[top]``, the maximum (``-inf`` entries count as 0)."""
    return float(1.0 / np.exp(scores - scores[top]).sum())


class SpeculativeDecoder(DraftingDecoder):
    """Draft-model speculative decoding (lossless under greedy)."""

    name: ClassVar[str] = "speculative"
    Options: ClassVar[type] = SpeculativeOptions

    def history_key(self, options: Any) -> str:
        """Each draft model pays off (or not) on its own, and sampling on its own."""
        return f"{self.name}{'-sampling' if options.sample else ''}:{options.draft}"

    def __init__(self) -> None:
        super().__init__()
        self._draft: StepModel | None = None  # held for the generation ``decode`` runs

    def decode(self, model: Any, input_ids: Sequence[int], options: Any) -> Iterator[int]:
        """Greedy's tokens (or speculative sampling's), the draft held throughout: one
        draft bundle serves every target that names it, and its cache holds one
        generation, so generations of several targets take turns on it."""
        with self.held_draft(model, options) as self._draft:
            yield from super().decode(model, input_ids, options)

    @contextlib.contextmanager
    def held_draft(self, model: Any, options: Any) -> Iterator[StepModel]:
        """The draft bundle's core for ``model``, its lock held until the block ends."""
        loaded = draft_model(options.draft, model)
        with loaded.exclusive():
            yield loaded.core

    def proposer(self, model: Any, options: Any) -> Any:
        """The held draft, checked against the target (and given what the target's
        generation needs, e.g. a decoder-decoder's context), behind a proposer."""
        draft = self._draft
        if draft is None:
            raise RuntimeError(
                "SpeculativeDecoder.proposer runs inside decode(), which holds the draft"
            )
        check_compatible(model, draft, options.draft)
        if isinstance(model, PreparesDraft):
            model.prepare_draft(draft)
        info = draft.info
        guess = (
            NgramLookup(LookupOptions(), info.word_boundaries, info.lexicon)
            if options.draft_lookup
            else None
        )
        return DraftProposer(draft, options, guess)

    def core(
        self, model: Any, input_ids: Sequence[int], options: Any, proposer: Any, k: AdaptiveK,
        stats: SpeculationStats,
    ) -> Iterator[int]:  # fmt: skip
        """Greedy's tokens exactly, or with ``sample`` the rejection rule of speculative
        sampling (``speculative_sampling``)."""
        if not options.sample:
            return super().core(model, input_ids, options, proposer, k, stats)
        rng = np.random.default_rng(options.seed)
        return sample_speculatively(model, proposer, input_ids, options, k, stats, rng)


def check_compatible(target: StepModel, draft: StepModel, path: str) -> None:
    """Same tokenizer (vocabulary and ids) and decoder start token, or a clear error."""
    same_vocab = target.info.vocab_signature == draft.info.vocab_signature
    if not same_vocab or target.vocab_size != draft.vocab_size:
        raise InputError(
            f"the draft model {path} uses a different vocabulary than the target "
            f"({draft.vocab_size} vs {target.vocab_size} tokens, or different token ids)",
            hint="train or pick a draft with exactly the target's tokenizer",
        )
    if target.info.decoder_start != draft.info.decoder_start:
        raise InputError(
            f"the draft model {path} starts decoding with another token than the target"
        )


@hookimpl
def register_decoders(register):
    """Register speculative decoding."""
    register(SpeculativeDecoder)
