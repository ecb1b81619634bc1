"""Synthetic English typo-correction data for the embedded speller.

The default generative model has to be reproducible from the repository alone
(no downloads, no corpora), so its training data is generated: a small grammar
with a few hundred common words (``words.toml`` next to this file) produces
lowercase English sentences of 6-16 words, and a seeded typo generator damages
1-3 words in each with the mistakes people make on phone keyboards: adjacent
character swaps, dropped characters, doubled characters and substitutions by a
QWERTY neighbour. The target is the clean sentence, so the output is a copy of
the input with the typos fixed - the copy-heavy shape that input-guided
(speculative / prompt-lookup) decoding can exploit on device.

Design choices, and why:

* Typos are *non-word* errors only: a corrupted word is never another word of
  the vocabulary nor a common English word (``[reject]`` in ``words.toml``). A real-word error ("cat" -> "car") cannot be detected from
  the word itself and the grammar does not guarantee enough context to resolve
  it, so including those would cap exact match with label noise.
* Only alphabetic words of 3+ letters are damaged: dropping a letter of "a" or
  "in" leaves nothing or another word, and punctuation is kept intact so that
  the model learns to copy it.
* The held-out split is a fixed partition of the *sentence space* by a stable
  hash (CRC-32) of the clean sentence, not a slice of one random stream. The
  training stream skips every held-out sentence, so evaluation sentences are
  guaranteed unseen combinations of the same vocabulary however many training
  examples are drawn.
* Everything is driven by explicit ``random.Random`` instances (no global
  state, no ``hash()``), so a seed gives the same data on every machine.
"""

from __future__ import annotations

import random
import re
import tomllib
import zlib
from collections import Counter
from collections.abc import Iterator
from functools import cache
from itertools import islice
from pathlib import Path

from edgert.plugins.decoding.lexicon import KEYBOARD_ROWS, adjacent_keys

WORDS_FILE = Path(__file__).with_name("words.toml")
START_SYMBOL = "sentence"
MIN_WORDS, MAX_WORDS = 6, 16
MIN_TYPO_LEN = 3
# 1 in HELDOUT_MODULUS sentences of the whole sentence space is evaluation-only.
HELDOUT_MODULUS = 8
SPLITS = ("train", "heldout")
# How many words get a typo: mostly one or two, sometimes three.
TYPO_COUNTS = (1, 2, 3)
TYPO_COUNT_WEIGHTS = (0.45, 0.35, 0.20)
TYPO_KINDS = ("swap", "drop", "double", "neighbour")

_SLOT = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"^([a-z]+)(\W*)$")
_WORDS = re.compile(r"[a-z]+")
_VOWELS = frozenset("aeiou")


def _keyboard_neighbours() -> dict[str, str]:
    """Letters physically adjacent on a QWERTY keyboard (same row and the rows above/below):
    the slips the speller's typos make, by the rule its decoder ranks corrections by."""
    letters = "".join(KEYBOARD_ROWS)
    return {c: "".join(sorted(d for d in letters if adjacent_keys(c, d))) for c in letters}


KEYBOARD_NEIGHBOURS = _keyboard_neighbours()


@cache
def grammar() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """The ``(words, rules)`` tables of ``words.toml``, validated once."""
    data = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    words = {k: tuple(v) for k, v in data["words"].items()}
    rules = {k: tuple(v) for k, v in data["rules"].items()}
    for name, alternatives in rules.items():
        for alt in alternatives:
            for slot in _SLOT.findall(alt):
                if slot not in words and slot not in rules:
                    raise ValueError(f"rule {name!r} uses unknown slot {{{slot}}}")
    return words, rules


@cache
def vocabulary() -> frozenset[str]:
    """Every word the generator can emit (pieces of multi-word entries and grammar literals)."""
    words, rules = grammar()
    vocab = {w for entries in words.values() for entry in entries for w in entry.split()}
    for alternatives in rules.values():
        for alt in alternatives:
            vocab.update(re.findall(r"[a-z]+", _SLOT.sub(" ", alt)))
    vocab.add("an")  # produced by the article fix-up
    return frozenset(vocab)


@cache
def _not_a_typo() -> frozenset[str]:
    """Strings a typo must never produce: the vocabulary plus ``[reject]`` common words."""
    data = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    return vocabulary() | frozenset(data.get("reject", {}).get("words", ()))


def _expand(symbol: str, rng: random.Random) -> str:
    words, rules = grammar()
    if symbol in words:
        return rng.choice(words[symbol])
    return _SLOT.sub(lambda m: _expand(m.group(1), rng), rng.choice(rules[symbol]))


def _fix_articles(text: str) -> str:
    """``a apple`` -> ``an apple``: the grammar has no phonology, this is enough for its words."""
    tokens = text.split()
    for i in range(len(tokens) - 1):
        if tokens[i] == "a" and tokens[i + 1][0] in _VOWELS:
            tokens[i] = "an"
    return " ".join(tokens)


def generate_sentence(rng: random.Random) -> str:
    """One clean sentence of MIN_WORDS..MAX_WORDS words (rejection-sampled on length)."""
    while True:
        text = _fix_articles(_expand(START_SYMBOL, rng))
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return text


def is_heldout(sentence: str) -> bool:
    """Whether a clean sentence belongs to the evaluation-only part of the sentence space."""
    return zlib.crc32(sentence.encode("utf-8")) % HELDOUT_MODULUS == 0


def iter_sentences(seed: int, split: str = "train", unique: bool = False) -> Iterator[str]:
    """Endless deterministic stream of clean sentences from one split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    want_heldout = split == "heldout"
    rng = random.Random(seed)
    seen: set[str] = set()
    while True:
        s = generate_sentence(rng)
        if is_heldout(s) != want_heldout:
            continue
        if unique:
            if s in seen:
                continue
            seen.add(s)
        yield s


def sentences(n: int, seed: int, split: str = "train", unique: bool = False) -> list[str]:
    """``n`` clean sentences of ``split`` ("train" or "heldout"), reproducible from ``seed``."""
    return list(islice(iter_sentences(seed, split, unique), n))


DICTIONARY_SAMPLE = 20_000  # training sentences counted to order the dictionary


def dictionary(seed: int = 0) -> list[str]:
    """The task's words, most frequent first in training text (then alphabetical): the
    model folder's ``words.txt``, which input-guided decoding corrects misspelt words to."""
    counts = Counter(w for s in sentences(DICTIONARY_SAMPLE, seed) for w in _WORDS.findall(s))
    return sorted(vocabulary(), key=lambda w: (-counts[w], w))


def typo(word: str, rng: random.Random, kind: str | None = None, tries: int = 20) -> str | None:
    """A non-word misspelling of ``word``, or ``None`` when none was found in ``tries`` draws."""
    banned = _not_a_typo()
    for _ in range(tries):
        k = kind or rng.choice(TYPO_KINDS)
        i = rng.randrange(len(word))
        if k == "swap":
            if i == len(word) - 1 or word[i] == word[i + 1]:
                continue
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif k == "drop":
            out = word[:i] + word[i + 1 :]
        elif k == "double":
            out = word[: i + 1] + word[i] + word[i + 1 :]
        elif k == "neighbour":
            near = KEYBOARD_NEIGHBOURS.get(word[i])
            if not near:
                continue
            out = word[:i] + rng.choice(near) + word[i + 1 :]
        else:
            raise ValueError(f"unknown typo kind {k!r}")
        if out != word and out not in banned:
            return out
    return None


def corrupt(sentence: str, rng: random.Random, n_typos: int | None = None) -> str:
    """``sentence`` with typos in 1-3 distinct words (``n_typos`` fixes the count).

    Punctuation attached to a word is preserved; words shorter than
    MIN_TYPO_LEN letters are never touched. At least one word is changed
    whenever the sentence has an eligible word.
    """
    tokens = sentence.split(" ")
    eligible = [
        i for i, t in enumerate(tokens) if (m := _WORD.match(t)) and len(m.group(1)) >= MIN_TYPO_LEN
    ]
    if not eligible:
        return sentence
    if n_typos is None:
        n_typos = rng.choices(TYPO_COUNTS, weights=TYPO_COUNT_WEIGHTS)[0]
    order = rng.sample(eligible, len(eligible))
    changed = 0
    for i in order:
        if changed == n_typos:
            break
        m = _WORD.match(tokens[i])
        assert m is not None
        bad = typo(m.group(1), rng)
        if bad is not None:
            tokens[i] = bad + m.group(2)
            changed += 1
    return " ".join(tokens)


def iter_pairs(
    seed: int, split: str = "train", clean_fraction: float = 0.0, unique: bool = False
) -> Iterator[tuple[str, str]]:
    """Endless ``(noisy, clean)`` stream; ``clean_fraction`` of inputs are left uncorrupted.

    Clean inputs teach the model to leave correct text alone, which matters on
    device where most typed sentences have no typo at all.
    """
    rng = random.Random(seed ^ 0x5EED)  # typo stream independent of the sentence stream
    for s in iter_sentences(seed, split, unique):
        if clean_fraction and rng.random() < clean_fraction:
            yield s, s
        else:
            yield corrupt(s, rng), s


def pairs(
    n: int, seed: int, split: str = "train", clean_fraction: float = 0.0, unique: bool = False
) -> list[tuple[str, str]]:
    """``n`` ``(noisy, clean)`` pairs of ``split``, reproducible from ``seed``."""
    return list(islice(iter_pairs(seed, split, clean_fraction, unique), n))


def heldout_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` evaluation pairs: distinct held-out sentences, each with 1-3 typos.

    Disjoint from every training sentence by construction (see ``is_heldout``).
    """
    return pairs(n, seed, split="heldout", unique=True)
