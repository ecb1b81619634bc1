"""A small subword vocabulary and a stand-in tokenizer for lexicon and aligner tests."""

from __future__ import annotations

VOCAB = {"<pad>": 0, "</s>": 1, "Ġthe": 3, "Ġnervous": 4, "Ġrabbit": 5, "Ġne": 6, "v": 7,
         "rou": 8, "s": 9, "Ġfoll": 10, "ow": 11, "Ġhis": 12, "Ġher": 13, "Ġhs": 14, "i": 15,
         ".": 16, "Ġtheir": 17, "Ġth": 18, "ier": 19, "▁cat": 20, "Ġwee": 21, "Ġwe": 22, "a": 23,
         "Ġweak": 24, "Ġt": 25, "e": 26, "Ġbe": 27, "ee": 28, "Ġkeep": 29, "Ġbeef": 30,
         "Ġbeer": 31}  # fmt: skip


def speller(vocab):
    """A stand-in for the tokenizer: ``" " + word`` in longest-match pieces of ``vocab``."""

    def spell(words):
        spelt = []
        for word in words:
            ids, rest = [], "Ġ" + word
            while rest and (
                piece := max((t for t in vocab if rest.startswith(t)), key=len, default="")
            ):
                ids.append(vocab[piece])
                rest = rest[len(piece) :]
            spelt.append([] if rest else ids)
        return spelt

    return spell
