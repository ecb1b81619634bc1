"""Prompt-lookup decoding: draft what followed the latest match of the output's last n-gram.

The longest suffix of the output (``max_ngram`` down to 1 tokens) is looked up in the
input and in the output so far; the tokens that followed its most recent occurrence are
the draft. Before any output the draft is the input's start. With ``correct_words`` the
input's copy with misspelt words corrected (``edgert.plugins.decoding.lexicon``) is searched too, and after
a new word found nowhere the draft resumes at the input word after the one it replaced.
With ``trigram_stats`` (after ADED), continuations seen more often win over the most
recent one. Verified by the shared core, so the tokens are exactly greedy's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgert.decoding import DecodingOptions, StepModel
from edgert.errors import InputError
from edgert.hookspecs import hookimpl
from edgert.plugins.decoding.lexicon import Lexicon, corrected, corrections
from edgert.speculation import DraftingDecoder


@dataclass(frozen=True)
class LookupOptions(DecodingOptions):
    """n-gram sizes and draft length bounds."""

    max_ngram: int = 3  # longest suffix matched first
    min_ngram: int = 1
    draft_tokens: int = 16
    min_draft_tokens: int = 2
    max_draft_tokens: int = 32
    trigram_stats: bool = False  # prefer frequent continuations (ADED); False = most recent
    correct_words: bool = True  # also search the input with misspelt words corrected

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.min_ngram <= self.max_ngram:
            raise InputError(
                f"need 1 <= min_ngram <= max_ngram, got {self.min_ngram}, {self.max_ngram}"
            )
        if not 1 <= self.min_draft_tokens <= self.draft_tokens <= self.max_draft_tokens:
            raise InputError("need 1 <= min_draft_tokens <= draft_tokens <= max_draft_tokens")


@dataclass
class NgramLookup:
    """Drafts from earlier occurrences of the current suffix."""

    costly: ClassVar[bool] = False  # drafts cost next to nothing: nothing runs meanwhile
    options: LookupOptions
    boundaries: frozenset[int] = frozenset()  # ids that start a word or are punctuation
    lexicon: Lexicon | None = None  # corrects misspelt input words; None: off
    source: list[int] = field(default_factory=list)  # the input (then its corrected copy)
    first: list[int] = field(default_factory=list)  # the first draft
    counts: dict[tuple[int, int], Counter] = field(default_factory=lambda: defaultdict(Counter))

    def reset(self, input_ids: Sequence[int]) -> None:
        """Index the input; with a lexicon, also its copy with misspelt words corrected.

        The corrected copy comes after the input, so its n-grams are the most recent.
        """
        self.source = self.first = list(input_ids)
        if self.lexicon is not None:
            fixes = corrections(self.source, self.boundaries, self.lexicon)
            if fixes:
                self.first = corrected(self.source, fixes)
                self.source = self.source + self.first
        self.counts = defaultdict(Counter)
        if self.options.trigram_stats:
            for a, b, c in zip(self.source, self.source[1:], self.source[2:], strict=False):
                self.counts[(a, b)][c] += 1

    def propose(self, generated: Sequence[int], k: int) -> list[int]:
        if k <= 0:
            return []
        if not generated:  # the empty suffix: outputs that copy begin as their input does
            return self.first[:k]
        if self.options.trigram_stats and len(generated) >= 2:
            return self._by_counts(generated, k)
        history = self.source + list(generated)
        end = self._continuation(history, len(generated))
        if end is None and len(generated) >= 2 and generated[-1] in self.boundaries:
            end = self._after_replaced_word(history, len(generated))
        return [] if end is None else history[end : end + k]

    def _continuation(self, history: list[int], n_max: int) -> int | None:
        """Index after the most recent earlier occurrence of the longest suffix (<= n_max).

        Runs once per target call over the input and the whole output so far: the search
        for the suffix's last token goes through ``list.index`` on the reversed history
        (a scan in C; a slice compare only on a hit), not a Python loop.
        """
        last = len(history) - 1
        backwards = history[::-1]  # backwards[r] is history[last - r]
        for n in range(min(self.options.max_ngram, n_max), self.options.min_ngram - 1, -1):
            tail = history[-n:]
            r = 1  # earlier occurrences only, ending at index n - 1 or later
            while r <= last - n + 1:
                try:
                    r = backwards.index(tail[-1], r, last - n + 2)
                except ValueError:
                    break
                end = last - r
                if history[end - n + 1 : end + 1] == tail:
                    return end + 1
                r += 1
        return None

    def _after_replaced_word(self, history: list[int], n_max: int) -> int | None:
        """Where to continue after a new word that occurs nowhere before.

        Such a word (a correction) most likely replaces the word that followed the previous
        token's match; a misspelt word is several sub-word tokens, so no n-gram can skip
        it. The draft resumes at the start of the word after that one.
        """
        end = self._continuation(history[:-1], n_max - 1)
        if end is None:
            return None
        for index in range(end + 1, len(history) - 1):
            if history[index] in self.boundaries:
                return index
        return None

    def _by_counts(self, generated: Sequence[int], k: int) -> list[int]:
        draft: list[int] = []
        a, b = generated[-2], generated[-1]
        while len(draft) < k and self.counts.get((a, b)):
            c = self.counts[(a, b)].most_common(1)[0][0]
            draft.append(c)
            a, b = b, c
        return draft

    def accepted(self, generated: Sequence[int], drafted: int, accepted: int) -> None:
        if not self.options.trigram_stats:  # the counts only serve ``_by_counts``
            return
        history = self.source + list(generated)
        for end in range(max(2, len(history) - accepted - 1), len(history)):
            self.counts[(history[end - 2], history[end - 1])][history[end]] += 1


class LookupDecoder(DraftingDecoder):
    """Prompt-lookup decoding (lossless under greedy)."""

    name: ClassVar[str] = "lookup"
    Options: ClassVar[type] = LookupOptions
    patient: ClassVar[bool] = True

    def proposer(self, model: StepModel, options: Any) -> Any:
        """Drafts for one generation."""
        info = model.info
        lexicon = info.lexicon if options.correct_words else None
        return NgramLookup(options, info.word_boundaries, lexicon)


@hookimpl
def register_decoders(register):
    """Register prompt-lookup decoding."""
    register(LookupDecoder)
