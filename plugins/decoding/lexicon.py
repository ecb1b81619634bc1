"""The words a model knows, and the nearest one to a misspelt word.

Input-guided decoding drafts a copy of the input. A misspelt input word falls apart into
several sub-word tokens, and a plain copy fails at every typo and costs a target call.
Guessing the correction lets one call verify the corrected word and the copy after it. A
guess is only a draft: the target accepts it or emits its own token there, so a wrong
guess costs nothing that a failed copy would not.

Which strings are words: a bundle's dictionary (``words.txt``, one word per line, most
frequent first) where it has one, else the vocabulary's whole-word tokens. The vocabulary
alone is a rough dictionary: a real word that the tokenizer splits ("f" + "ind") looks
misspelt and gets "corrected" ("fin"), and a fragment that happens to be a token ("som")
passes for a word. A dictionary word's correction is its tokens as the tokenizer spells
it, one token or several.

Lookup is a symmetric-delete index: a word is filed under itself and each string that
one deleted character leaves, and a misspelt word is looked up the same way. That finds
every word one drop, insertion, substitution or swap of adjacent letters away, in a few
dictionary lookups instead of a scan of the vocabulary.

Several words are often one edit away ("ber": "her", "bear", "beer"). They are ranked
the way spell checkers order suggestions (Hunspell tries keyboard neighbours, swapped,
extra and forgotten letters before arbitrary ones): first the edits typing slips make, a
forgotten letter, two letters swapped, a doubled letter or a key next to the right one,
then any other; within a rank the most frequent word: fewer tokens first, then the
dictionary's order (without one, the lowest id: the earliest merge).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any

SPACE_MARKS = frozenset("ĠĊĉ▁")  # a leading space or break inside byte-level/SentencePiece tokens
MIN_LETTERS = 3  # shorter words have too many neighbours to guess from, so they are not
# corrections; a two-letter typo still finds the three-letter word it forgot a letter of
MIN_TYPO_LETTERS = 2  # ("te": "the"), since words are filed under their one-letter deletions
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")  # QWERTY, rows staggered by half a key
_KEYS = {key: (row, i) for row, keys in enumerate(KEYBOARD_ROWS) for i, key in enumerate(keys)}
DICTIONARY = "words.txt"  # a bundle's or model folder's dictionary file
KNOWN_WORDS = 65536  # looked-up input words remembered (a few MB at most)


Spell = Callable[[list[str]], list[Sequence[int]]]  # words -> each word's token ids


class Lexicon:
    """Known words and their tokens, built on first use.

    ``dictionary``: words, most frequent first, spelt into token ids by ``spell`` (the
    tokenizer, a word as it starts after a space); without one, or where the tokenizer
    spells none of its words, the vocabulary's whole-word tokens (space-marked, all
    letters). A capitalised word counts as known when its lower-case form does (sentence
    starts, names in a lower-case word list), and a capitalised typo gets a capitalised
    correction. Building it spells and indexes every word once, on the first correction
    asked for (about 2 s for 100,000 words), not at load.
    """

    def __init__(
        self,
        vocab: dict[str, int] | Callable[[], dict[str, int]],
        dictionary: Sequence[str] = (),
        spell: Spell | None = None,
    ) -> None:
        if dictionary and spell is None:
            raise ValueError("a dictionary needs ``spell`` to find its words' tokens")
        self._vocab = vocab  # or how to get it: a large vocabulary is read on first use
        self.dictionary = tuple(dictionary)
        self.spell = spell
        self._known: dict[tuple[int, ...], tuple[int, ...] | None] = {}
        self._spellings: dict[str, tuple[int, ...] | None] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, dictionary: Sequence[str] = ()) -> Lexicon:
        """The lexicon of a ``tokenizers.Tokenizer``, with an optional dictionary."""

        def spell(words: list[str]) -> list[Sequence[int]]:
            # One word at a time: a batch starts the tokenizer's thread pool (measured: the
            # speller's 634 words in 11 ms as a first batch, 4-6 ms one by one) and is
            # padded. A padding length may be set: keep what the attention mask keeps.
            encoded = (tokenizer.encode(w, add_special_tokens=False) for w in words)
            return [[i for i, m in zip(e.ids, e.attention_mask, strict=True) if m] for e in encoded]

        return cls(
            functools.partial(tokenizer.get_vocab, with_added_tokens=False), dictionary, spell
        )

    @cached_property
    def vocab(self) -> dict[str, int]:
        """Token -> id (read from the tokenizer when first needed: greedy never needs it)."""
        return self._vocab() if callable(self._vocab) else self._vocab

    @cached_property
    def texts(self) -> dict[int, str]:
        """Token id -> its text with a leading space mark removed."""
        return {i: t[1:] if t[:1] in SPACE_MARKS else t for t, i in self.vocab.items()}

    @property
    def words(self) -> dict[str, tuple[int, ...]]:
        """Word -> its token ids (for a whole-word token, the lowest id on duplicates)."""
        return self._words[0]

    @property
    def from_dictionary(self) -> bool:
        """Whether the words are the dictionary's (it has words the tokenizer spells)."""
        return self._words[1]

    @cached_property
    def _words(self) -> tuple[dict[str, tuple[int, ...]], bool]:
        """The words, and whether they are the dictionary's."""
        spelt = self._spelt() if self.dictionary else {}
        if spelt:
            return spelt, True
        found: dict[str, tuple[int, ...]] = {}
        for token, i in sorted(self.vocab.items(), key=lambda item: item[1]):
            word = token[1:]
            if token[:1] in SPACE_MARKS and word.isalpha():
                found.setdefault(word, (i,))
        return found, False

    def _spelt(self) -> dict[str, tuple[int, ...]]:
        """The dictionary's words (letters only) that the tokenizer spells as one word, in
        the dictionary's order."""
        listed = dict.fromkeys(w for w in self.dictionary if w.isalpha())
        return {word: tokens for word in listed if (tokens := self._spell(word))}

    def _spell(self, word: str) -> tuple[int, ...] | None:
        """``word``'s tokens where the tokenizer spells it as one word: a word-start token,
        then pieces that spell the rest of it.

        A word alone is spelt as it starts after a space by tokenizers that add one (the
        SentencePiece kind, byte-level BPE with a prefix space); others get the space.
        """
        for form in (word, " " + word) if self.spell else ():
            tokens = tuple(self.spell([form])[0])
            first = self._token_of.get(tokens[0], "") if tokens else ""
            spelt = "".join(self.texts.get(i, "") for i in tokens)
            if first[:1] in SPACE_MARKS and spelt == word:
                return tokens
        return None

    def _spelling(self, word: str) -> tuple[int, ...] | None:
        """Tokens of ``word`` (a known word, or one the tokenizer spells as a word)."""
        if word in self.words:
            return self.words[word]
        if word not in self._spellings:
            self._spellings[word] = self._spell(word)
        return self._spellings[word]

    @cached_property
    def _token_of(self) -> dict[int, str]:
        return {i: t for t, i in self.vocab.items()}

    @cached_property
    def _rank(self) -> dict[str, tuple[int, int]]:
        """Frequency order: fewer tokens first (a tokenizer merges frequent words), then
        the dictionary's order, or the lowest id (the earliest merge) without one."""
        if self.from_dictionary:
            return {w: (len(ids), n) for n, (w, ids) in enumerate(self.words.items())}
        return {w: (1, ids[0]) for w, ids in self.words.items()}

    @cached_property
    def _index(self) -> dict[str, list[str]]:
        index: defaultdict[str, list[str]] = defaultdict(list)
        for word in self.words:
            if len(word) >= MIN_LETTERS:
                for key in {word, *_deletions(word)}:
                    index[key].append(word)
        return dict(index)

    def correction(self, pieces: Sequence[int]) -> tuple[int, ...] | None:
        """The tokens of the word nearest to the word spelt by ``pieces``, if it is none.

        None when the pieces already spell a word, are not all letters, are too short, or
        no word is one edit away. Typing slips first (``_slip``), then the most frequent
        word (``_rank``).
        """
        key = tuple(pieces)
        if key in self._known:  # input words repeat across requests: look each up once
            return self._known[key]
        found = self._nearest("".join(self.texts.get(i, "") for i in pieces))
        if len(self._known) < KNOWN_WORDS:
            self._known[key] = found
        return found

    def _nearest(self, text: str) -> tuple[int, ...] | None:
        if len(text) < MIN_TYPO_LETTERS or not text.isalpha() or text in self.words:
            return None
        capital = text[0].isupper()
        if capital:  # "Teh": known as "the" is, corrected as "teh" is, then capitalised
            text = text[0].lower() + text[1:]
            if text in self.words:
                return None
        candidates = {w for k in (text, *_deletions(text)) for w in self._index.get(k, ())}
        near = [w for w in candidates if _one_edit(text, w)]
        best = min(((_slip(text, w), self._rank[w], w) for w in near), default=None)
        if best is None:
            return None
        word = best[-1]
        return self._spelling(word[0].upper() + word[1:]) if capital else self.words[word]


Fix = tuple[tuple[int, ...], int]  # a correction's tokens, and the index after the word


def corrections(
    source: Sequence[int], boundaries: frozenset[int], lexicon: Lexicon
) -> dict[int, Fix]:
    """Input words that are not words: ``{start: (nearest word's tokens, end)}``.

    A word runs from a token in ``boundaries`` (a word start or punctuation) to the next.
    """
    starts = [i for i, t in enumerate(source) if t in boundaries]
    if not starts:  # no word starts at all (ids passed without one)
        return {}
    fixes = {}
    for start, end in zip(starts, [*starts[1:], len(source)], strict=True):
        tokens = lexicon.correction(source[start:end])
        if tokens is not None:
            fixes[start] = (tokens, end)
    return fixes


def corrected(source: Sequence[int], fixes: dict[int, Fix]) -> list[int]:
    """``source`` with each word in ``fixes`` replaced by its correction."""
    out: list[int] = []
    index = 0
    while index < len(source):
        fix = fixes.get(index)
        if fix is None:
            out.append(source[index])
            index += 1
        else:
            out.extend(fix[0])
            index = fix[1]
    return out


def _deletions(word: str) -> Iterable[str]:
    return (word[:i] + word[i + 1 :] for i in range(len(word)))


def _slip(typo: str, word: str) -> int:
    """0 when ``typo`` is ``word`` with a typing slip (a forgotten letter, two letters
    swapped, a letter doubled, a key next to the right one), else 1 (one edit apart)."""
    start = 0
    while start < min(len(typo), len(word)) and typo[start] == word[start]:
        start += 1
    if len(typo) < len(word):  # a forgotten letter
        return 0
    if len(typo) > len(word):  # an extra letter at ``start``: doubled, or a neighbour's slip
        extra = typo[start]
        nearby = typo[start - 1 : start] + typo[start + 1 : start + 2]
        return 0 if any(c == extra or adjacent_keys(c, extra) for c in nearby) else 1
    if typo[start : start + 2] == word[start : start + 2][::-1]:  # swapped letters
        return 0
    return 0 if adjacent_keys(typo[start], word[start]) else 1


def adjacent_keys(a: str, b: str) -> bool:
    """Whether keys ``a`` and ``b`` touch on a QWERTY keyboard."""
    a, b = a.lower(), b.lower()
    if a not in _KEYS or b not in _KEYS or a == b:
        return False
    (ra, ia), (rb, ib) = _KEYS[a], _KEYS[b]
    return abs(ra - rb) <= 1 and abs((ib - ia) + 0.5 * (rb - ra)) <= 1


def _one_edit(a: str, b: str) -> bool:
    """Whether ``b`` is one drop, insertion, substitution or adjacent swap from ``a``."""
    if abs(len(a) - len(b)) > 1:
        return False
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    if len(a) == len(b):
        substituted = a[start + 1 :] == b[start + 1 :]
        swapped = (
            a[start : start + 2] == b[start : start + 2][::-1] and a[start + 2 :] == b[start + 2 :]
        )
        return substituted or swapped
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[start + 1 :] == shorter[start:]
