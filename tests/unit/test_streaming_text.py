"""Streamed text: pieces add up to the whole decode, and stop strings cut where they begin."""

from __future__ import annotations

import numpy as np
import pytest

from edgert.plugins.families.seq2seq.text import Detokenizer as _Detokenizer
from edgert.plugins.families.seq2seq.text import StopWatch as _StopWatch

TEXT = [
    "the café serves crème brûlée and naïve jalapeño dishes",
    "emoji 🙂 and 🚀 travel with CJK 你好世界 and 東京",
    "digits 12345, punctuation (a, b); quotes 'x' \"y\" - done.",
]


def tokenizer(kind):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "byte-level":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=160, special_tokens=["<pad>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )  # fmt: skip
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=["<pad>", "</s>", "<unk>"])
    tok.train_from_iterator(TEXT * 3, trainer)
    return tok


@pytest.mark.parametrize("kind", ["byte-level", "metaspace"])
def test_streamed_pieces_add_up_to_the_whole_decode(kind):
    tok = tokenizer(kind)
    rng = np.random.default_rng(0)
    sequences = [tok.encode(" ".join(TEXT * 2)).ids]  # long: the window moves many times
    sequences += [list(rng.integers(0, tok.get_vocab_size(), 60)) for _ in range(20)]
    for ids in sequences:
        whole = tok.decode(ids, skip_special_tokens=True)
        stream = _Detokenizer(tok)
        pieces = [stream.add(int(i)) for i in ids]
        joined = "".join(pieces)
        clean = whole.rstrip("\ufffd")  # a partial last character is held back
        assert joined == clean.lstrip(), (kind, ids)


def test_text_that_may_begin_a_stop_string_is_held_until_the_next_piece():
    watch = _StopWatch(("END", "stop here"))
    assert watch.cut("some text ") == ("some text ", False)
    assert watch.cut("then sto") == ("then ", False)  # "sto" may begin "stop here"
    assert watch.cut("p") == ("", False)
    assert watch.cut(" there") == ("stop there", False)  # it did not
    assert watch.cut(" E") == (" ", False)
    assert watch.cut("ND and more") == ("", True)
    assert watch.flush() == ""


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["ab", "cE", "ND", "x"], ("END",), "abc"),
        (["one END two stop"], ("stop", "END"), "one "),  # the first to begin wins
        (["a", "", "b"], ("zz",), "ab"),
        (["x", "y"], ("", "y"), "x"),  # an empty stop string never matches
        (["aaa"], ("a",), ""),
        (["xE", "N"], ("END",), "xEN"),  # generation ended: the held text is flushed
        (["12", "3"], (), "123"),
    ],
)
def test_the_text_ends_where_the_first_stop_string_begins(pieces, stops, expected):
    """Whatever the piece boundaries: the text is the whole text cut at the first stop."""
    watch = _StopWatch(stops)
    out = []
    for piece in pieces:
        kept, stopped = watch.cut(piece)
        out.append(kept)
        if stopped:
            break
    else:
        out.append(watch.flush())
    assert "".join(out) == expected
    whole = "".join(pieces)
    starts = [whole.find(s) for s in stops if s and s in whole]
    assert expected == (whole[: min(starts)] if starts else whole)
