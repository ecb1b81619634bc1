"""Input-guided aggressive decoding: draft the span of the input aligned with the output.

For tasks whose output mostly copies the input (spelling and grammar correction, post
editing), the next output tokens are usually the next input tokens. The draft is the input
from the aligned position on, with each input word that is not a known word (a typo, split
into sub-word pieces) replaced by the nearest known word's tokens (``edgert.plugins.decoding.lexicon``), so
one target call can verify a whole corrected sentence. After a mismatch the alignment
is found again by looking up the last few output tokens in the input, or, after a new word
found nowhere in the input, at the next input word. Verified by the shared core, so the
tokens are exactly greedy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgert.decoding import DecodingOptions, StepModel
from edgert.errors import InputError
from edgert.hookspecs import hookimpl
from edgert.plugins.decoding.lexicon import Fix, Lexicon, corrections
from edgert.speculation import DraftingDecoder


@dataclass(frozen=True)
class AggressiveOptions(DecodingOptions):
    """Draft length bounds and how many output tokens re-align after a mismatch."""

    draft_tokens: int = 24  # starting K: long enough to copy a whole sentence in one call
    min_draft_tokens: int = 2
    max_draft_tokens: int = 32
    align_ngram: int = 2  # output tokens matched in the input to re-align
    correct_words: bool = True  # draft the nearest known word for a misspelt input word

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.min_draft_tokens <= self.draft_tokens <= self.max_draft_tokens:
            raise InputError(
                "draft lengths must satisfy 1 <= min_draft_tokens <= draft_tokens <= max_draft_tokens, "
                f"got {self.min_draft_tokens}, {self.draft_tokens}, {self.max_draft_tokens}"
            )
        if self.align_ngram < 1:
            raise InputError(f"align_ngram must be >= 1, got {self.align_ngram}")


WINDOW = 4  # how far ahead a single re-aligning token may be found


@dataclass
class InputAligner:
    """Tracks where in the input the output currently is."""

    costly: ClassVar[bool] = False  # drafts cost next to nothing: nothing runs meanwhile
    ngram: int
    boundaries: frozenset[int] = frozenset()  # ids that start a word or are punctuation
    lexicon: Lexicon | None = None  # guesses corrections of misspelt input words; None: off
    source: list[int] = field(default_factory=list)
    position: int = 0  # next input index expected to be copied
    spelt: int = 0  # tokens of the correction at ``position`` already in the output
    lost: bool = False  # the output left the input: re-align before the next draft
    fixes: dict[int, Fix] = field(default_factory=dict)  # start -> (tokens, end)
    after: list[tuple[int, int]] = field(default_factory=list)  # (position, spelt) after
    # each drafted token

    def reset(self, input_ids: Sequence[int]) -> None:
        self.source, self.position, self.spelt, self.lost = list(input_ids), 0, 0, False
        self.fixes = corrections(self.source, self.boundaries, self.lexicon) if self.lexicon else {}

    def propose(self, generated: Sequence[int], k: int) -> list[int]:
        if k <= 0:
            return []
        if self.lost:  # re-aligned only when a draft is wanted (not while drafting pauses)
            self._relocate(generated)
        draft: list[int] = []
        self.after = []
        index, spelt = self.position, self.spelt
        while len(draft) < k and index < len(self.source):
            fix = self.fixes.get(index)
            if fix is None:
                draft.append(self.source[index])
                index += 1
                self.after.append((index, 0))
                continue
            tokens, end = fix
            for done in range(spelt, len(tokens)):  # a correction may be several tokens
                draft.append(tokens[done])
                self.after.append((index, done + 1) if done + 1 < len(tokens) else (end, 0))
            index, spelt = end, 0
        del self.after[k:]
        return draft[:k]

    def accepted(self, generated: Sequence[int], drafted: int, accepted: int) -> None:
        """Move past the accepted drafts and the target's own token after them."""
        if accepted:
            self.position, self.spelt = self.after[accepted - 1]
        if self.lost or self.position >= len(self.source):
            self.lost = True
            return
        own = generated[-1]
        fix = self.fixes.get(self.position)
        if fix is not None and fix[0][self.spelt] == own:  # the correction goes on
            self.spelt += 1
            if self.spelt == len(fix[0]):
                self.position, self.spelt = fix[1], 0
        elif not self.spelt and self.source[self.position] == own:
            self.position += 1
        else:
            if self.spelt:  # the target spells this word otherwise: resume after it
                self.position, self.spelt = fix[1], 0
            self.lost = True

    def _relocate(self, generated: Sequence[int]) -> None:
        self.lost, self.spelt = False, 0
        found = self._realign(generated)
        if found is not None:
            self.position = found
        elif generated[-1] in self.boundaries:
            self.position = self._next_word(self.position)

    def _realign(self, generated: Sequence[int]) -> int | None:
        """Index after the output's last tokens in the input, or None.

        Longer suffixes first. An n-gram match is taken at its first occurrence from the
        current position on (words repeat), else its latest one; a single token only
        within ``WINDOW`` tokens of the current position, where it is most likely the same
        word and not a namesake later in the sentence.
        """
        for n in range(min(self.ngram, len(generated)), 0, -1):
            tail = list(generated[-n:])
            starts = [i for i in range(len(self.source) - n + 1) if self.source[i : i + n] == tail]
            ahead = [i for i in starts if i + n > self.position - n]
            if n == 1:
                starts = ahead = [i for i in ahead if i <= self.position + WINDOW]
            if starts:
                return (ahead[0] if ahead else starts[-1]) + n
        return None

    def _next_word(self, position: int) -> int:
        """Where the input word after the one at ``position`` starts.

        The output began a word that is nowhere in the input: a corrected word replacing
        the input's word at ``position``. A misspelt word falls apart into several
        sub-word tokens while its correction is often one, so the copy resumes at the
        input's next word start, not at the next token.
        """
        for index in range(position + 1, len(self.source)):
            if self.source[index] in self.boundaries:
                return index
        return position


class AggressiveDecoder(DraftingDecoder):
    """Input-guided aggressive decoding (lossless under greedy)."""

    name: ClassVar[str] = "aggressive"
    Options: ClassVar[type] = AggressiveOptions
    patient: ClassVar[bool] = True

    def proposer(self, model: StepModel, options: Any) -> Any:
        """Drafts for one generation."""
        info = model.info
        lexicon = info.lexicon if options.correct_words else None
        return InputAligner(options.align_ngram, info.word_boundaries, lexicon)


@hookimpl
def register_decoders(register):
    """Register aggressive decoding."""
    register(AggressiveDecoder)
