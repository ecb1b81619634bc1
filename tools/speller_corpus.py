"""Real English for the spelling corrector: prose that ships with Python and a model of
the typos people make.

Nothing is downloaded. The prose is the reference text of Python's own ``pydoc_data``
topics plus the docstrings of the standard library's modules: edited English, with
capitals, names and punctuation, that every Python installation carries (technical
English: dictionary spellers do worse on it than on everyday text, see
``benchmarks/speller.py``).

Sentences are split into a training and a held-out part by a hash of their text, so the
benchmark never scores a sentence the trainer saw, whatever the seed.

The typo model draws the error kinds that spelling studies find in typed text: a
neighbouring key, an omitted letter, a doubled or undoubled letter, two letters swapped,
and phonetic confusions ("-ible"/"-able", "ie"/"ei", "-ance"/"-ence", single and double
consonants). Capitals and punctuation are kept: only letters inside a word change.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
HELD_OUT_PERCENT = 5
MIN_WORDS, MAX_WORDS = 5, 24

# QWERTY neighbours: the keys a finger lands on by mistake.
ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
CONFUSIONS = (  # (written, meant): both directions are drawn
    ("able", "ible"), ("ie", "ei"), ("ance", "ence"), ("ant", "ent"), ("ary", "ery"),
    ("tion", "sion"), ("ph", "f"), ("c", "s"), ("ck", "k"), ("our", "or"), ("ise", "ize"),
    ("ll", "l"), ("ss", "s"), ("mm", "m"), ("nn", "n"), ("rr", "r"), ("tt", "t"), ("pp", "p"),
    ("cc", "c"), ("ea", "ee"), ("ou", "ow"), ("y", "i"), ("er", "re"), ("al", "el"),
)  # fmt: skip
KINDS = ("neighbour", "omission", "doubling", "transposition", "phonetic")


def _neighbours() -> dict[str, str]:
    near: dict[str, list[str]] = {}
    for r, row in enumerate(ROWS):
        for c, key in enumerate(row):
            keys = []
            for dr in (-1, 0, 1):
                rr = r + dr
                if 0 <= rr < len(ROWS):
                    for dc in (-1, 0, 1):
                        cc = c + dc
                        if (dr, dc) != (0, 0) and 0 <= cc < len(ROWS[rr]):
                            keys.append(ROWS[rr][cc])
            near[key] = keys
    return {k: "".join(v) for k, v in near.items()}


NEIGHBOURS = _neighbours()


def _clean(text: str) -> Iterator[str]:
    """Prose lines of a document: no code, grammar rules, tables or headings."""
    paragraph: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        prose = (
            stripped and not line.startswith((" ", "\t")) and not stripped.startswith((">>>", "..."))
            and not set(stripped) <= set("*=-~^#+|")
        )  # fmt: skip
        if prose:
            paragraph.append(stripped)
        elif paragraph:
            yield " ".join(paragraph)
            paragraph = []
    if paragraph:
        yield " ".join(paragraph)


def _good(sentence: str) -> bool:
    """A sentence of plain English words: no code, markup, or digits."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if re.search(r"[_`\\{}<>\[\]=/@#$%^&*|~0-9]|\(\)|\.\w", sentence):
        return False
    if not sentence[0].isupper() or sentence[-1] not in ".!?":
        return False
    return all(WORD.fullmatch(w.strip(",;:.!?\"()'")) for w in words)


def documents() -> Iterator[str]:
    """The prose: pydoc topics, then the standard library's module and class docstrings."""
    import sys
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield topics[name]
    yield from _docstrings(sorted(sys.stdlib_module_names))


def _docstrings(names: list[str]) -> Iterator[str]:
    """Docstrings of modules, their classes and functions, and their public submodules."""
    for name in names:
        if name.startswith("_") or name in {"antigravity", "this", "idlelib", "turtledemo"}:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # platform modules that do not import here
            continue
        yield inspect.getdoc(module) or ""
        for _, obj in sorted(vars(module).items()):
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(
                obj, "__module__", ""
            ) == name:
                yield inspect.getdoc(obj) or ""
        if hasattr(module, "__path__"):
            for info in pkgutil.iter_modules(module.__path__, name + "."):
                if info.name.split(".")[-1].startswith(("_", "test")):
                    continue
                try:
                    yield inspect.getdoc(importlib.import_module(info.name)) or ""
                except Exception:
                    continue


def sentences() -> list[str]:
    """Every good sentence of the prose, once, in a fixed order."""
    import warnings

    seen: dict[str, None] = {}
    with warnings.catch_warnings():  # deprecated modules say so when imported
        warnings.simplefilter("ignore")
        docs = list(documents())
    for doc in docs:
        for paragraph in _clean(doc):
            for sentence in SENTENCE_END.split(paragraph):
                sentence = " ".join(sentence.split())
                if _good(sentence):
                    seen.setdefault(sentence, None)
    return list(seen)


def held_out(sentence: str) -> bool:
    """Whether a sentence belongs to the held-out part (by a hash of its text)."""
    digest = hashlib.sha256(sentence.encode("utf-8")).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def split() -> tuple[list[str], list[str]]:
    """(training, held-out) sentences."""
    train, test = [], []
    for sentence in sentences():
        (test if held_out(sentence) else train).append(sentence)
    return train, test


@dataclass(frozen=True)
class Typo:
    """One damaged word: where, the kind of error, and the word before and after."""

    index: int  # word index in the sentence
    kind: str
    meant: str
    written: str


def misspell(word: str, rng: random.Random, kind: str | None = None) -> tuple[str, str]:
    """``word`` with one typo (case kept), and its kind; the word itself if none applies."""
    kinds = [kind] if kind else rng.sample(KINDS, len(KINDS))
    lower = word.lower()
    for k in kinds:
        damaged = _apply(lower, k, rng)
        if damaged and damaged != lower:
            return case_like(word, damaged), k
    return word, "none"


def _apply(w: str, kind: str, rng: random.Random) -> str | None:
    letters = [i for i, ch in enumerate(w) if ch.isalpha()]
    if len(letters) < 3:
        return None
    if kind == "neighbour":
        i = rng.choice(letters)
        near = NEIGHBOURS.get(w[i])
        return w[:i] + rng.choice(near) + w[i + 1 :] if near else None
    if kind == "omission":
        i = rng.choice(letters[1:])  # the first letter is rarely dropped
        return w[:i] + w[i + 1 :]
    if kind == "doubling":
        i = rng.choice(letters)
        return w[:i] + w[i] + w[i:]
    if kind == "transposition":
        pairs = [i for i in letters[:-1] if i + 1 in letters and w[i] != w[i + 1]]
        if not pairs:
            return None
        i = rng.choice(pairs)
        return w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    if kind == "phonetic":
        options = []
        for a, b in CONFUSIONS:
            for meant, written in ((a, b), (b, a)):
                start = w.find(meant, 1)
                if start > 0:
                    options.append(w[:start] + written + w[start + len(meant) :])
        return rng.choice(options) if options else None
    raise ValueError(kind)


def case_like(original: str, new: str) -> str:
    """``new`` with the capitals of ``original`` (all caps, first capital, or none)."""
    if original.isupper() and len(original) > 1:
        return new.upper()
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def corrupt(sentence: str, rng: random.Random, typos: int = 1) -> tuple[str, list[Typo]]:
    """``sentence`` with ``typos`` words of at least four letters misspelt (punctuation,
    spacing and capitals kept), and what was changed."""
    matches = list(WORD.finditer(sentence))
    candidates = [i for i, m in enumerate(matches) if len(m.group()) >= 4 and "'" not in m.group()]
    chosen = sorted(rng.sample(candidates, min(typos, len(candidates))))
    out, last, changes = [], 0, []
    for i, m in enumerate(matches):
        if i in chosen:
            written, kind = misspell(m.group(), rng)
            out.append(sentence[last : m.start()] + written)
            last = m.end()
            if written != m.group():
                changes.append(Typo(i, kind, m.group(), written))
    out.append(sentence[last:])
    return "".join(out), changes
