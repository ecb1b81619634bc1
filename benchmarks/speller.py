"""Spelling correction against the spellers people use, in one run.

    python benchmarks/speller.py [--bundle B1 --bundle B2 ...] [--decoder greedy ...]
        [--limit N] [--json out.json]

Without ``--bundle`` it exports the embedded ``zoo:speller`` for ``--device auto``.

Correctors: ``pyspellchecker`` and ``symspellpy`` with their shipped English dictionaries
(word by word; symspellpy also ``lookup_compound`` on the whole sentence, as its
documentation suggests for sentences), and each edgert speller bundle with each decoder.

Sets, all held out from the speller's training (``tools/speller_corpus.py`` splits by a
hash of each sentence):

* one typo: every held-out sentence with one word of four or more letters misspelt by the
  typo model (neighbouring key, omission, doubling, transposition, phonetic; seed 0);
* common misspellings: ``benchmarks/data/misspellings.txt``, one word each ("recieve");
* clean: the held-out sentences as written, to count false corrections.

Metrics: misspelt words fixed (the output word aligned to it is the meant word), correct
words changed (false corrections), sentences fixed (their words equal the original's;
punctuation is compared only by the strict column, since ``lookup_compound`` drops it),
clean sentences changed, and milliseconds per sentence. Speeds are also given as a ratio
to pyspellchecker's, the slowest peer.
"""

from __future__ import annotations

import argparse
import difflib
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))

import speller_corpus as corpus  # noqa: E402
from _peers import cpu_name  # noqa: E402

WORD = corpus.WORD


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_by_word(fix: Callable[[str], str]) -> Callable[[str], str]:
    """A sentence corrector from a word corrector: punctuation, spacing and case kept."""

    def correct(sentence: str) -> str:
        return WORD.sub(lambda m: corpus.case_like(m.group(), fix(m.group().lower())), sentence)

    return correct


def pyspellchecker() -> Callable[[str], str]:
    from spellchecker import SpellChecker

    spell = SpellChecker()

    def fix(word: str) -> str:
        if word in spell:
            return word
        return spell.correction(word) or word

    return word_by_word(fix)


def _symspell():
    from symspellpy import SymSpell

    sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    dictionary = resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    bigrams = resources.files("symspellpy") / "frequency_bigramdictionary_en_243_342.txt"
    with resources.as_file(dictionary) as path:
        sym.load_dictionary(str(path), term_index=0, count_index=1)
    with resources.as_file(bigrams) as path:
        sym.load_bigram_dictionary(str(path), term_index=0, count_index=2)
    return sym


def symspell_words() -> Callable[[str], str]:
    from symspellpy import Verbosity

    sym = _symspell()

    def fix(word: str) -> str:
        found = sym.lookup(word, Verbosity.TOP, max_edit_distance=2, include_unknown=True)
        return found[0].term if found else word

    return word_by_word(fix)


def symspell_compound() -> Callable[[str], str]:
    sym = _symspell()

    def correct(sentence: str) -> str:
        found = sym.lookup_compound(sentence, max_edit_distance=2, transfer_casing=True)
        return found[0].term if found else sentence

    return correct


def edgert_speller(bundle: str, decoder: str) -> Callable[[str], str]:
    import edgert

    model = edgert.load(bundle)

    def correct(sentence: str) -> str:
        return model.generate(sentence, decoder=decoder, truncate=True).text

    return correct


def aligned(target: list[str], output: list[str]) -> set[int]:
    """Indices of ``target`` words that the output reproduces in place."""
    right: set[int] = set()
    matcher = difflib.SequenceMatcher(None, target, output, autojunk=False)
    for block in matcher.get_matching_blocks():
        right.update(range(block.a, block.a + block.size))
    return right


def score(correct: Callable[[str], str], typo_set, words_set, clean_set) -> dict:
    """Every metric of one corrector over the three sets."""
    fixed_words = typo_words = changed_words = other_words = 0
    fixed_sentences = strict = 0
    times = []
    for original, noisy, typos in typo_set:
        started = time.perf_counter()
        output = correct(noisy)
        times.append((time.perf_counter() - started) * 1000)
        target = words(original)
        right = aligned(target, words(output))
        damaged = {t.index for t in typos}
        typo_words += len(damaged)
        fixed_words += len(damaged & right)
        other_words += len(target) - len(damaged)
        changed_words += len(set(range(len(target))) - damaged - right)
        fixed_sentences += words(output) == target
        strict += output.strip() == original
    single = sum(correct(written).strip().lower() == meant for written, meant in words_set)
    clean_changed = clean_changed_words = clean_words = 0
    for sentence in clean_set:
        output = correct(sentence)
        target = words(sentence)
        right = aligned(target, words(output))
        clean_words += len(target)
        clean_changed_words += len(target) - len(right)
        clean_changed += words(output) != target
    return {
        "misspelt_words_fixed": fixed_words / typo_words,
        "correct_words_changed": changed_words / other_words,
        "sentences_fixed": fixed_sentences / len(typo_set),
        "sentences_fixed_strict": strict / len(typo_set),
        "common_misspellings_fixed": single / len(words_set),
        "clean_sentences_changed": clean_changed / len(clean_set),
        "clean_words_changed": clean_changed_words / clean_words,
        "ms_per_sentence": statistics.mean(times),
        "ms_per_sentence_p50": statistics.median(times),
    }


def sets(limit: int | None) -> tuple[list, list, list]:
    _, held = corpus.split()
    held = held[:limit] if limit else held
    rng = random.Random(0)
    typo_set = []
    for sentence in held:
        noisy, typos = corpus.corrupt(sentence, rng, typos=1)
        if typos:
            typo_set.append((sentence, noisy, typos))
    lines = (HERE / "data" / "misspellings.txt").read_text(encoding="utf-8").splitlines()
    words_set = [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#")]
    return typo_set, words_set, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", action="append", default=[], help="edgert speller bundle(s)")
    parser.add_argument(
        "--decoder", action="append", default=[], help="default: greedy, aggressive"
    )
    parser.add_argument("--limit", type=int, default=None, help="held-out sentences to use")
    parser.add_argument("--json", default=str(HERE / "results" / "speller.json"))
    args = parser.parse_args()
    typo_set, words_set, clean_set = sets(args.limit)
    if not args.bundle:  # the embedded default, exported for this machine
        import subprocess
        import tempfile

        out = Path(tempfile.mkdtemp()) / "speller-auto"
        subprocess.run([sys.executable, "-m", "edgert", "export", "zoo:speller", "--device", "auto",
                        "--out", str(out)], check=True, capture_output=True)  # fmt: skip
        args.bundle = [str(out)]
    correctors: dict[str, Callable[[], Callable[[str], str]]] = {
        "pyspellchecker (words)": pyspellchecker,
        "symspellpy lookup (words)": symspell_words,
        "symspellpy lookup_compound": symspell_compound,
    }
    for bundle in args.bundle:
        for decoder in args.decoder or ["greedy", "aggressive"]:
            correctors[f"edgert {Path(bundle).name} ({decoder})"] = lambda b=bundle, d=decoder: (
                edgert_speller(b, d)
            )
    rows = {}
    for name, build in correctors.items():
        try:
            correct = build()
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); pip install pyspellchecker symspellpy")
            continue
        correct(typo_set[0][1])  # warm-up: dictionaries, sessions
        rows[name] = score(correct, typo_set, words_set, clean_set)
    slow = rows.get("pyspellchecker (words)", {}).get("ms_per_sentence")
    print(f"held out: {len(typo_set)} sentences with one typo, {len(words_set)} common "
          f"misspellings, {len(clean_set)} clean sentences; CPU {cpu_name() or platform.machine()}")  # fmt: skip
    header = (f"{'corrector':<40} {'words fixed':>11} {'words broken':>12} {'sent. fixed':>11} "
              f"{'strict':>7} {'common':>7} {'clean chg':>9} {'ms/sent':>8} {'x pyspell':>9}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        ratio = f"{slow / r['ms_per_sentence']:.1f}x" if slow else "-"
        print(f"{name:<40} {r['misspelt_words_fixed']:>11.1%} {r['correct_words_changed']:>12.1%} "
              f"{r['sentences_fixed']:>11.1%} {r['sentences_fixed_strict']:>7.1%} "
              f"{r['common_misspellings_fixed']:>7.1%} {r['clean_sentences_changed']:>9.1%} "
              f"{r['ms_per_sentence']:>8.2f} {ratio:>9}")  # fmt: skip
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sets": {"one_typo": len(typo_set), "common": len(words_set),
                                        "clean": len(clean_set)},
                               "cpu": cpu_name(), "results": rows}, indent=2))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
