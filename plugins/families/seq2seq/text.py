"""The text side of a generation: streaming the decoded text, stop strings, and the facts of a
vocabulary that decoders use (its signature, its word boundaries)."""

from __future__ import annotations

from typing import Any

from edgert.plugins.decoding.lexicon import SPACE_MARKS


def vocab_signature(tokenizer: Any) -> str:
    """A hash of id -> token: drafts and targets must agree on it exactly. Read id by id,
    so no copy of the whole vocabulary is built at load (a 32k one is MBs in Python)."""
    import hashlib

    digest = hashlib.sha256()
    for i in range(tokenizer.get_vocab_size(with_added_tokens=True)):
        token = tokenizer.id_to_token(i)
        digest.update(b"\x00" if token is None else f"{len(token)}:{token}".encode())
    return digest.hexdigest()


def word_boundaries(tokenizer: Any) -> frozenset[int]:
    """Ids of tokens that do not continue a word: a word start (byte-level BPE's ``Ġ``,
    SentencePiece's ``▁``), punctuation or a special token.

    Input-guided decoding uses them to resume copying after a corrected word.
    """
    tokens = (
        (i, tokenizer.id_to_token(i))
        for i in range(tokenizer.get_vocab_size(with_added_tokens=True))
    )
    return frozenset(
        i for i, token in tokens if token and (token[0] in SPACE_MARKS or not token[0].isalnum())
    )


class Detokenizer:
    """Incremental decoding, by ``tokenizers``' own ``DecodeStream``: one short decode per
    token in Rust (it keeps the few tokens of context a word's leading space needs, and
    holds back a partial UTF-8 character until the token that completes it).
    Measured by ``benchmarks/hot_loop.py``.
    """

    def __init__(self, tokenizer: Any) -> None:
        from tokenizers.decoders import DecodeStream

        self.tokenizer = tokenizer
        self.step = DecodeStream(skip_special_tokens=True).step
        self.started = False  # some text was emitted

    def add(self, token: int) -> str:
        piece = self.step(self.tokenizer, token) or ""
        if not self.started:
            piece = piece.lstrip()  # byte-level and Metaspace tokenizers mark a leading space
            self.started = bool(piece)
        return piece


class StopWatch:
    """Cuts the text at the first stop string, as it streams.

    Text that could be the beginning of a stop string is held back until the next piece
    shows whether it is, so neither the stream nor the joined text ever holds part of a
    stop string; each piece is searched with only the held characters before it (a rescan
    of the whole text per token would make long outputs quadratic).
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.held = ""  # the end of the text so far, where a stop string may be beginning

    def cut(self, piece: str) -> tuple[str, bool]:
        """The text to emit after ``piece`` arrives, and whether a stop string was found
        (then the text ends where it begins)."""
        if not self.stops:
            return piece, False
        window = self.held + piece
        hits = [i for s in self.stops if (i := window.find(s)) >= 0]
        if hits:
            self.held = ""
            return window[: min(hits)], True
        start = len(window)  # where the held text begins: the earliest possible stop start
        for s in self.stops:
            i = window.find(s[0], max(0, len(window) - len(s) + 1))
            while 0 <= i < start and not s.startswith(window[i:]):
                i = window.find(s[0], i + 1)
            if 0 <= i < start:
                start = i
        self.held = window[start:]
        return window[:start], False

    def flush(self) -> str:
        """What is still held when generation ends without a stop string."""
        held, self.held = self.held, ""
        return held
