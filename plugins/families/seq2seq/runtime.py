"""Runtime of the ``seq2seq`` family: ``generate`` and ``stream`` for T5 / BART / Marian.

No torch, no transformers: tokenization with ``tokenizers``, two ONNX Runtime sessions
created once, decoding by the registered decoder plugins through the step interface.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgert.decoding import VerifyTolerance
from edgert.errors import BundleError, InputError
from edgert.plugins.decoding.lexicon import Lexicon
from edgert.plugins.families.seq2seq.core import Layout, PositionBias, Seq2SeqCore
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, check_width, multiplier
from edgert.plugins.families.seq2seq.generation import check_generation
from edgert.plugins.families.seq2seq.names import (
    check_inputs,
    check_layout,
    encoder_decoder_io,
    lean_t5_io,
)
from edgert.plugins.families.seq2seq.static_core import (
    StaticSeq2SeqCore,
    one_token_hint,
    open_verify,
    verify_drift,
)
from edgert.plugins.families.seq2seq.text import (
    Detokenizer,
    StopWatch,
    vocab_signature,
    word_boundaries,
)
from edgert.plugins.families.seq2seq.text_rules import TextRules
from edgert.providers import LOOSEST_DRIFT, create_session
from edgert.schema import build

if TYPE_CHECKING:
    from edgert.bundle import Bundle
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile
    from edgert.providers import SessionInfo


def verify_bound(precision: str, decoder: SessionInfo, catalog: Catalog) -> VerifyTolerance:
    """How far the decoder's logits may move between one-token and multi-token calls: the
    largest ``verify_drift`` at ``precision`` of the providers that run part of it (one
    edgert does not know, or a precision not measured on a provider: ``LOOSEST_DRIFT``)."""
    bound = VerifyTolerance()
    for name in decoder.placement or [decoder.active]:
        drift = catalog.providers.get(name).verify_drift if name in catalog.providers else {}
        bound = bound.at_least(*drift.get(precision, LOOSEST_DRIFT))
    return bound


OPTIONS_CACHE = 64  # validated decoder options kept per model

# Generation defaults in the manifest -> the option names decoders use.
_DEFAULT_OPTIONS = {
    "eos_token_ids": "stop_ids",
    "suppress_token_ids": "suppress_ids",
    "forced_bos_token_id": "forced_first_id",
    "forced_eos_token_id": "forced_last_id",
    "max_new_tokens": "max_new_tokens",
    "min_new_tokens": "min_new_tokens",
    "no_repeat_ngram_size": "no_repeat_ngram_size",
    "repetition_penalty": "repetition_penalty",
    "num_beams": "num_beams",
    "length_penalty": "length_penalty",
    "early_stopping": "early_stopping",
}


@dataclass(frozen=True)
class Generation:
    """Result of :meth:`Seq2SeqModel.generate`."""

    text: str
    token_ids: tuple[int, ...]
    stats: dict[str, Any] = field(default_factory=dict)


class Seq2SeqModel:
    """A loaded encoder-decoder model. Build it with :func:`edgert.load`.

    Example:
        >>> model = edgert.load("speller-bundle")                      # doctest: +SKIP
        >>> model.generate("teh cat sat in teh garden").text               # doctest: +SKIP
        'the cat sat in the garden'
        >>> for piece in model.stream("helo world", decoder="greedy"):  # doctest: +SKIP
        ...     print(piece, end="")
    """

    verify_info: SessionInfo | None = None  # a static bundle's verify graph, where it has one

    def __init__(
        self,
        bundle: Bundle,
        profile: DeviceProfile,
        catalog: Catalog,
        *,
        allow_fallback: bool | None = None,
        threads: int | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self.allow_fallback = allow_fallback  # as the caller gave it (None: the profile's)
        if bundle.manifest.get("format") == "optimum":
            self._init_optimum(bundle, profile, catalog, allow_fallback, threads)
            return
        self.bundle, self.profile, self.catalog = bundle, profile, catalog
        manifest = bundle.manifest
        self.defaults: dict[str, Any] = check_generation(
            manifest, bundle.path, required=("decoder_start_token_id",)
        )
        self.open_sessions("encoder.onnx", allow_fallback, threads)
        sessions = (self.encoder_info.session, self.session_info.session)
        tables = manifest["embeddings"]
        encoder_table, decoder_table = (
            check_width(EmbeddingTable(bundle.file(tables[role]["file"]),
                                       multiplier(tables, role, bundle.path)), session, bundle.path)
            for role, session in zip(("encoder", "decoder"), sessions, strict=True)
        )  # fmt: skip
        layout = check_layout(manifest["layout"], self.session_info.session, bundle.path)
        start = self.defaults["decoder_start_token_id"]
        static = manifest.get("static")
        if static:
            self.verify_info = open_verify(bundle, lambda path: create_session(
                path, profile, catalog, allow_fallback=allow_fallback, threads=threads))  # fmt: skip
            self.core: Any = StaticSeq2SeqCore(
                *sessions, (encoder_table, decoder_table), Layout(**layout), start,
                static["source_length"], static["max_total_length"],
                np.load(bundle.file(static["bias"]), allow_pickle=False),
                self.verify_info.session if self.verify_info else None, static.get("verify_width", 0),
            )  # fmt: skip
        else:
            bias = _position_bias(bundle, manifest.get("position_bias") or {}, layout["heads"])
            io = (lean_t5_io if bias else encoder_decoder_io)(layout["layers"])
            check_inputs(io, dict(zip(("encoder", "decoder"), sessions, strict=True)),
                         bundle.path, "position_bias")  # fmt: skip
            self.core = Seq2SeqCore(
                *sessions, (encoder_table, decoder_table), Layout(**layout), start, bias
            )
        self.tokenizer = Tokenizer.from_file(str(bundle.file(manifest["tokenizer"])))
        self.describe_core()

    def _init_optimum(
        self,
        bundle: Bundle,
        profile: DeviceProfile,
        catalog: Catalog,
        allow_fallback: Any,
        threads: Any,
    ) -> None:
        from tokenizers import Tokenizer

        from edgert.plugins.families.seq2seq.optimum import OptimumCore

        self.bundle, self.profile, self.catalog = bundle, profile, catalog
        self.defaults = bundle.manifest["generation"]
        quiet = profile.with_runtime(spinning=False)

        def session(name: str, prof: DeviceProfile) -> Any:
            return create_session(
                bundle.path / name, prof, catalog, allow_fallback=allow_fallback, threads=threads
            )

        self.encoder_info = session("encoder_model.onnx", quiet)
        first = session("decoder_model.onnx", quiet)
        self.session_info = session("decoder_with_past_model.onnx", profile)
        self.core = OptimumCore(
            self.encoder_info.session, first.session, self.session_info.session,
            self.defaults["decoder_start_token_id"], self.defaults["vocab_size"],
        )  # fmt: skip
        self.tokenizer = Tokenizer.from_file(str(bundle.path / "tokenizer.json"))
        self.describe_core()

    def open_sessions(self, encoder_file: str, allow_fallback: Any, threads: Any) -> None:
        """``encoder_info`` for ``encoder_file`` and ``session_info`` for the decoder.

        The encoder runs once per input: its idle threads must not spin and steal the
        cores the decoder needs right after (measured: 2x slower steps on 2 cores).
        """
        quiet = self.profile.with_runtime(spinning=False)
        for attribute, name, profile in (
            ("encoder_info", encoder_file, quiet), ("session_info", "decoder.onnx", self.profile),
        ):  # fmt: skip
            info = create_session(self.bundle.file(name), profile, self.catalog,
                                  allow_fallback=allow_fallback, threads=threads)  # fmt: skip
            setattr(self, attribute, info)

    def describe_core(self) -> None:
        """The text side (the tokenizer that decodes, when the bundle has its own for
        that, and the tokenizer rules it names), and the core's ``ModelInfo``, all decoders
        may know of it: the output vocabulary's signature, word boundaries and lexicon, how
        far verified logits may move, the profile id for messages, where it was told to
        run, and the decoder positions it holds."""
        from tokenizers import Tokenizer

        manifest = self.bundle.manifest
        target = manifest.get("target_tokenizer")
        self.output_tokenizer = (
            Tokenizer.from_file(str(self.bundle.file(target))) if target else self.tokenizer
        )
        self.text_rules = TextRules.from_manifest(manifest, self._read_json)
        words = self.output_tokenizer
        self.core.info = dataclasses.replace(
            self.core.info,
            vocab_signature=vocab_signature(words),
            word_boundaries=word_boundaries(words),
            lexicon=Lexicon.from_tokenizer(words, _dictionary(self.bundle)),
            verify_tolerance=self._verify_tolerance(),
            profile_id=self.profile.id,
            one_token_hint=one_token_hint(self.bundle, self.profile, self.verify_info),
            run_device=self._run_device(),  # where a draft model runs too
            run_allow_fallback=self.allow_fallback,
            max_length=self.defaults["max_total_length"],  # a draft must stop there too
        )
        self._parsed: dict[Any, tuple[Any, Any]] = {}
        self._lock, self._owner = threading.Lock(), None  # see ``exclusive``
        _return_freed_heap()

    def _verify_tolerance(self) -> VerifyTolerance:
        """The providers' multi-token drift for the decoder (and a static bundle's verify
        graph), and the drift measured at export between a verify and a step graph."""
        precision = self.bundle.manifest["precision"]
        bound = verify_bound(precision, self.session_info, self.catalog)
        if self.verify_info is None:
            return bound
        wide = verify_bound(precision, self.verify_info, self.catalog)
        return bound.at_least(wide.absolute, wide.relative).at_least(*verify_drift(self.bundle))

    def _read_json(self, name: str) -> Any:
        import json

        try:
            return json.loads(self.bundle.file(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"cannot read {name} in {self.bundle.path}: {exc}",
                              hint="re-export the bundle") from exc  # fmt: skip

    def _run_device(self) -> str | None:
        """The ``.toml`` of the profile this model was told to run with (``--device``),
        for ``edgert.load``; None when it runs with the profile its manifest holds (or, for
        an optimum folder, the default one). A draft model follows it: the user said where
        to run."""
        source = self.profile.source
        return str(Path(source).resolve()) if source.endswith(".toml") else None

    @property
    def provider(self) -> str:
        """The provider that runs the decoder (after any reported fallback)."""
        return self.session_info.active

    # --- public API -------------------------------------------------------------------
    def generate(
        self, text: str | None = None, *, input_ids: list[int] | None = None,
        decoder: str | None = None, truncate: bool = False, stop: tuple[str, ...] = (),
        **options: Any,
    ) -> Generation:  # fmt: skip
        """Generate a whole answer. Options are the decoder's (``max_new_tokens``, ...);
        ``decoder`` and every option default to the checkpoint's generation defaults (see
        ``default_decoder``), and ``stats["overridden"]`` lists what the call changed."""
        with self.exclusive():
            extra = self.before_decoding(decoder, options)
            ids: list[int] = []
            stats: dict[str, Any] = {}
            pieces = self._run(
                text, input_ids, decoder, truncate, stop, options, ids, stats, streaming=False
            )
            result = Generation("".join(pieces), tuple(ids), stats)
        result.stats.update(extra)
        return result

    def stream(
        self, text: str | None = None, *, input_ids: list[int] | None = None,
        decoder: str | None = None, truncate: bool = False, stop: tuple[str, ...] = (),
        stats: dict[str, Any] | None = None, **options: Any,
    ) -> Iterator[str]:  # fmt: skip
        """Yield the answer's text as it is decoded (``stats`` receives the statistics)."""
        report = {} if stats is None else stats
        with self.exclusive():
            extra = self.before_decoding(decoder, options)
            yield from self._run(text, input_ids, decoder, truncate, stop, options, [], report)
        report.update(extra)

    def before_decoding(self, decoder: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """What a family does before each generation, under the model's lock; it may take
        its own arguments out of ``options`` and returns statistics to report (none here)."""
        return {}

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One generation at a time: the core holds one generation's caches, so calls from
        several threads queue here (each gets exactly its own answer). A second generation
        started on the thread whose stream is still open would wait for itself: refused.

        A plain lock, not a re-entrant one: a web server may iterate one stream from
        several worker threads, and releasing must work from whichever ends it."""
        me = threading.get_ident()
        if self._owner == me:
            raise InputError(
                "this model is already generating on this thread: a stream of it is still open",
                hint="iterate the first stream to its end (or call .close() on it) before "
                "starting another on the same model, or load the bundle a second time",
            )
        with self._lock:
            self._owner = me
            try:
                yield
            finally:
                self._owner = None

    @property
    def default_decoder(self) -> str:
        """What ``generate()`` of the source checkpoint does without arguments: sampling
        when its generation defaults sample, beam search when they keep several beams,
        else greedy."""
        if self.defaults.get("do_sample"):
            return "sampling"
        return "beam" if (self.defaults.get("num_beams") or 1) > 1 else "greedy"

    def option_defaults(self) -> dict[str, Any]:
        """The decoder options this bundle sets from its checkpoint's generation defaults
        (``max_new_tokens``, ``num_beams``, ...): what a call uses unless it passes them,
        and what an application's form should start from."""
        return {name: self.defaults[key] for key, name in _DEFAULT_OPTIONS.items()
                if self.defaults.get(key) is not None}  # fmt: skip

    def overridden(self, decoder: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """The bundle's defaults that a call's arguments change: name -> bundle, given."""
        changed: dict[str, Any] = {}
        if decoder is not None and decoder != self.default_decoder:
            changed["decoder"] = {"bundle": self.default_decoder, "given": decoder}
        names = {name: key for key, name in _DEFAULT_OPTIONS.items()}
        for name, value in options.items():
            key = names.get(name)
            if key is not None and self.defaults.get(key) is not None:
                default = self.defaults[key]
                if (list(default) if isinstance(default, tuple | list) else default) != (
                    list(value) if isinstance(value, tuple | list) else value
                ):
                    changed[name] = {"bundle": default, "given": value}
        return changed

    def encode_text(self, text: str, *, truncate: bool = False) -> list[int]:
        """Token ids of ``text``, checked against the profile's maximum input length."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the input text is empty", hint="pass the text to process")
        ids = self.text_rules.encode(self.tokenizer, text)
        return self._check_length(ids, truncate)

    # --- internals ----------------------------------------------------------------------
    def _check_length(self, ids: list[int], truncate: bool) -> list[int]:
        limit = self.defaults["max_input_length"]
        if len(ids) > limit:
            if not truncate:
                raise InputError(
                    f"the input has {len(ids)} tokens; this bundle takes at most {limit} (profile "
                    f"{self.profile.id!r}'s max_input_length, or the model's position table if shorter)",
                    hint="shorten the input, pass truncate=True (--truncate) to cut it, or export "
                    "with a profile whose max_input_length is larger (up to the position table)",
                )
            ids = ids[: limit - 1] + ids[-1:]  # keep the closing EOS
        if not ids:
            raise InputError("the input is empty", hint="pass some text or token ids")
        return ids

    def decoder_options(self, decoder: str, options: dict[str, Any]) -> tuple[Any, Any]:
        """The decoder instance and its validated, frozen options (bundle defaults first).

        Validated options are kept per (decoder, options) when the values are hashable: on
        a model this small, validating them again on every call costs about a decoder call.
        """
        try:
            key: Any = (decoder, tuple(sorted(options.items())))
            hash(key)
        except TypeError:  # e.g. a list value: validate every time
            key = None
        cached = self._parsed.get(key) if key is not None else None
        if cached is None:
            cached = self._parse_options(decoder, options)
            if key is not None and len(self._parsed) < OPTIONS_CACHE:
                self._parsed[key] = cached
        decoder_cls, parsed = cached
        return decoder_cls(), parsed

    def _parse_options(self, decoder: str, options: dict[str, Any]) -> tuple[Any, Any]:
        decoder_cls = self.catalog.decoders.get(decoder)
        fields = {f.name for f in dataclasses.fields(decoder_cls.Options)}
        merged = {
            name: self.defaults[key]
            for key, name in _DEFAULT_OPTIONS.items()
            if name in fields and self.defaults.get(key) is not None
        }
        start = self.defaults.get("decoder_start_token_id")
        merged["prefix_ids"] = [] if start is None else [start]
        merged.update(options)
        parsed = build(decoder_cls.Options, merged, f"decoder {decoder!r} options", InputError)
        room = self.defaults["max_total_length"] - 1
        if parsed.max_new_tokens > room:
            raise InputError(
                f"max_new_tokens {parsed.max_new_tokens} exceeds what this bundle holds: {room} "
                f"new tokens (max_total_length {self.defaults['max_total_length']}: profile "
                f"{self.profile.id!r}'s KV cache, or the model's position table if shorter)",
                hint=f"use max_new_tokens <= {room}; a profile with a larger max_total_length "
                "helps only up to the model's position table",
            )
        return decoder_cls, parsed

    def _run(
        self, text: str | None, input_ids: list[int] | None, decoder: str, truncate: bool,
        stop: tuple[str, ...], options: dict[str, Any], ids_out: list[int], stats: dict[str, Any],
        streaming: bool = True,
    ) -> Iterator[str]:  # fmt: skip
        if (text is None) == (input_ids is None):
            raise InputError("pass either text or input_ids", hint="generate('some text')")
        ids = (
            self.encode_text(text, truncate=truncate)
            if text is not None
            else self._check_length(list(input_ids), truncate)
        )
        overridden = self.overridden(decoder, options)
        strategy, parsed = self.decoder_options(decoder or self.default_decoder, options)
        if isinstance(stop, str):
            stop = (stop,)
        started = time.perf_counter()
        stamps: list[float] = []
        text_out = Detokenizer(self.output_tokenizer)
        watch = StopWatch(stop)
        for token in strategy.decode(self.core, ids, parsed):
            stamps.append(time.perf_counter())
            ids_out.append(token)
            if not (streaming or stop):
                continue
            piece, stopped = watch.cut(text_out.add(token))
            if piece:
                yield piece
            if stopped:
                break
        else:
            if rest := watch.flush():
                yield rest
        if not (streaming or stop):
            text = self.output_tokenizer.decode(ids_out, skip_special_tokens=True)
            yield text.strip() if self.text_rules.strip else text.lstrip()
        stats.update(_stats(started, stamps, strategy))
        stats["decoder"] = decoder or self.default_decoder
        stats["overridden"] = overridden

    def __repr__(self) -> str:
        return (
            f"Seq2SeqModel({self.bundle.path}, device={self.profile.id}, provider={self.provider})"
        )


def _position_bias(bundle: Bundle, files: dict[str, str], heads: int) -> PositionBias | None:
    """The lean T5 graphs' per-distance bias vectors (``[heads, distances]`` each), checked
    against the layout at load; None for graphs that bucket positions themselves."""
    vectors = {role: np.load(bundle.file(f), allow_pickle=False) for role, f in files.items()}
    for role, vector in vectors.items():
        if vector.ndim != 2 or vector.shape[0] != heads or not vector.size:
            raise BundleError(f"{files[role]} in {bundle.path} holds a {vector.shape} position "
                              f"bias; the layout has {heads} heads", hint="re-export the bundle")  # fmt: skip
    return PositionBias(**vectors) if vectors else None


def _return_freed_heap() -> None:
    """Give the heap that loading freed back to the OS (glibc keeps it otherwise: about
    10 MB of model buffers on a T5-small, which also made peak RSS vary by that much from
    run to run; ``benchmarks/seq2seq.py``). Elsewhere, nothing to do."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, looked up once (``find_library`` runs a subprocess), or
    None off Linux and on a libc without it (musl)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _dictionary(bundle: Bundle) -> tuple[str, ...]:
    """The bundle's dictionary (one word per line, most frequent first), or none."""
    manifest = bundle.manifest
    name = manifest.get("dictionary")  # absent from bundles of older exports
    if not name:
        return ()
    if "files" in manifest and name not in manifest["files"]:  # an optimum folder has none
        raise BundleError(
            f"the manifest of {bundle.path} names a dictionary {name!r} it does not list with a "
            "checksum",
            hint="re-export the bundle",
        )
    try:
        lines = bundle.file(name).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"cannot read the dictionary {name} in {bundle.path}: {exc}",
            hint="it must be UTF-8 text, one word per line; fix or remove it",
        ) from exc
    return tuple(word for line in lines if (word := line.strip()))


def _stats(started: float, stamps: list[float], strategy: Any) -> dict[str, Any]:
    if not stamps:
        return {"new_tokens": 0}
    times = [started, *stamps]
    steps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    decode_s = stamps[-1] - started
    stats = {
        "new_tokens": len(stamps),
        "first_token_ms": steps[0],
        "per_token_ms": steps[1:],
        "per_token_median_ms": statistics.median(steps[1:]) if len(steps) > 1 else None,
        "total_ms": decode_s * 1000,
        "tokens_per_s": len(stamps) / decode_s if decode_s > 0 else None,
    }
    stats.update(getattr(strategy, "stats", {}) or {})
    return stats
