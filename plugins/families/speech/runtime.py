"""Runtime of the ``speech`` family: ``transcribe`` (and ``generate``/``stream``) for
Whisper-class bundles.

No torch, no transformers: the numpy front-end (:mod:`.features`), two ONNX Runtime
sessions, the registered decoders through :class:`.core.SpeechCore`, and Whisper's rules
(:mod:`.rules`, :mod:`.windows`). Transcribing follows transformers' ``generate`` step by
step, so the tokens are the same: the prompt (start, language, task, timestamps), then
30-second windows from ``seek = 0``, each decoded and cut into segments at its timestamp
pairs, the next window starting where the last complete segment ended.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgert.errors import BundleError, InputError
from edgert.plugins.families.seq2seq.core import Layout
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable, check_width, multiplier
from edgert.plugins.families.seq2seq.generation import check_generation
from edgert.plugins.families.seq2seq.names import check_inputs, check_layout
from edgert.plugins.families.seq2seq.runtime import Generation, Seq2SeqModel
from edgert.plugins.families.speech.audio import read_audio
from edgert.plugins.families.speech.core import SpeechCore
from edgert.plugins.families.speech.fallback import (
    Thresholds,
    average_logprob,
    compression_ratio,
    no_speech_probability,
)
from edgert.plugins.families.speech.features import FeatureSettings, log_mel
from edgert.plugins.families.speech.names import speech_io
from edgert.plugins.families.speech.rules import WhisperRules
from edgert.plugins.families.speech.streaming import LocalAgreement
from edgert.plugins.families.speech.windows import Segment, cut_segments, init_tokens
from edgert.profiler import percentiles

if TYPE_CHECKING:
    from edgert.bundle import Bundle
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile

INPUT_STRIDE = 2  # feature frames per encoder position (the stride-2 convolution)
TIME_PRECISION = 0.02  # seconds per timestamp step
DEFAULT_MAX_LENGTH = 20  # transformers' own default max_length, which it reads as new tokens


@dataclass(frozen=True)
class Transcription:
    """Result of :meth:`SpeechModel.transcribe`: the text, the tokens ``generate`` returns
    (every window's, without prompt or end token), the segments (with times where the
    model gave timestamps), the language token used, and statistics."""

    text: str
    token_ids: tuple[int, ...]
    segments: tuple[Segment, ...] = ()
    language: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class SpeechModel(Seq2SeqModel):
    """A loaded speech model. Build it with :func:`edgert.load`.

    Example:
        >>> model = edgert.load("whisper-bundle")                  # doctest: +SKIP
        >>> model.transcribe("meeting.wav", language="en").text      # doctest: +SKIP
    """

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

        self.allow_fallback = allow_fallback
        self.bundle, self.profile, self.catalog = bundle, profile, catalog
        manifest = bundle.manifest
        self.defaults = check_generation(
            manifest, bundle.path, required=("decoder_start_token_id",)
        )
        self.rules = _check_rules(manifest["generation"], bundle.path)
        self.settings, self.filters = _features(bundle)
        self.open_sessions("encoder.onnx", allow_fallback, threads)
        decoder = self.session_info.session
        tables = manifest["embeddings"]
        table = check_width(EmbeddingTable(bundle.file(tables["decoder"]["file"]),
                                           multiplier(tables, "decoder", bundle.path)),
                            decoder, bundle.path)  # fmt: skip
        layout = check_layout(manifest["layout"], decoder, bundle.path)
        check_inputs(speech_io(layout["layers"]),
                     {"encoder": self.encoder_info.session, "decoder": decoder}, bundle.path,
                     "family")  # fmt: skip
        window = (self.settings.feature_size, self.settings.frames)
        self.core = SpeechCore(self.encoder_info.session, decoder, table, Layout(**layout), window)
        self.tokenizer = Tokenizer.from_file(str(bundle.file(manifest["tokenizer"])))
        self.describe_core()

    # --- public API -------------------------------------------------------------------
    def features(self, audio: str | Path | np.ndarray) -> np.ndarray:
        """Log-mel features of the audio, as transformers' extractor makes them for
        ``generate``: one window (padded with silence) for up to 30 s, else all of it."""
        samples = self.samples(audio)
        whole = samples.size > self.settings.chunk_samples
        return log_mel(samples, self.filters, self.settings, whole=whole)

    def samples(self, audio: str | Path | np.ndarray) -> np.ndarray:
        """Mono float32 samples at the model's rate: a WAV/FLAC path (any rate and
        channels: resampled), or an array already at that rate."""
        if isinstance(audio, str | Path):
            return read_audio(audio, self.settings.sampling_rate)
        samples = np.asarray(audio)
        if samples.dtype.kind != "f" or samples.ndim != 1 or not samples.size:
            raise InputError(
                f"audio must be a non-empty 1-D float array at {self.settings.sampling_rate} Hz, "
                f"got {samples.dtype} of shape {samples.shape}",
                hint="pass a WAV/FLAC path, or mono float32 samples in [-1, 1]",
            )
        if not np.isfinite(samples).all():
            raise InputError("the audio has NaN or infinite samples", hint="clean the signal")
        return samples.astype(np.float32, copy=False)

    def transcribe(
        self, audio: str | Path | np.ndarray, *, language: str | None = None,
        task: str | None = None, return_timestamps: bool | None = None,
        decoder: str | None = None, **options: Any,
    ) -> Transcription:  # fmt: skip
        """Transcribe (or translate) ``audio``. ``language`` (``"en"``, ``"<|en|>"`` or a
        name the bundle lists) is detected from the first window when a multilingual model
        is given none; ``return_timestamps`` defaults to the checkpoint's setting and is
        on for audio over 30 s. Decoder options are the decoder's (``num_beams``, ...)."""
        pieces: list[Segment] = []
        stats: dict[str, Any] = {}
        with self.exclusive():
            for segment in self._windows(audio, language, task, return_timestamps, decoder,
                                         options, stats):  # fmt: skip
                pieces.extend(segment)
        tokens = tuple(t for s in pieces for t in s.token_ids)
        return Transcription(self.text_of(tokens), tokens, tuple(pieces), stats.get("language"),
                             stats)  # fmt: skip

    def generate(
        self, audio: Any = None, *, decoder: str | None = None, **options: Any
    ) -> Generation:
        """``transcribe`` with the text families' result type (for generic callers)."""
        result = self.transcribe(audio, decoder=decoder, **_text_only(options))
        return Generation(result.text, result.token_ids, result.stats)

    def stream(self, audio: Any = None, *, decoder: str | None = None,
               stats: dict[str, Any] | None = None, **options: Any) -> Iterator[str]:  # fmt: skip
        """Yield each segment's text as its window is decoded."""
        for segment in self.segments(audio, decoder=decoder, stats=stats, **options):
            if segment.text:
                yield segment.text

    def segments(self, audio: Any = None, *, decoder: str | None = None,
                 stats: dict[str, Any] | None = None, language: str | None = None,
                 task: str | None = None, return_timestamps: bool | None = None,
                 **options: Any) -> Iterator[Segment]:  # fmt: skip
        """Yield the segments of ``audio`` as each window is decoded (``transcribe``'s
        arguments; ``stats`` receives its statistics)."""
        report = {} if stats is None else stats
        with self.exclusive():
            for window in self._windows(audio, language, task, return_timestamps, decoder,
                                        _text_only(options), report):  # fmt: skip
                yield from window

    @property
    def sampling_rate(self) -> int:
        """The rate, in Hz, of the samples the model takes (files are resampled to it)."""
        return self.settings.sampling_rate

    def stream_audio(
        self, chunks: Iterable[np.ndarray], *, language: str | None = None,
        task: str | None = None, update_s: float = 1.0, decoder: str | None = None,
        stats: dict[str, Any] | None = None, **options: Any,
    ) -> Iterator[str]:  # fmt: skip
        """Yield the transcript's text as audio arrives: ``chunks`` are mono float arrays at
        the model's rate, in order (a microphone's blocks, say). Every ``update_s`` seconds
        of new audio the window so far is decoded again, after the text already committed,
        and what two decodes in a row agree on is committed and yielded
        (:class:`.streaming.LocalAgreement`). ``stats`` receives the update latencies and
        the lag per token (``lag_ms``: audio between a token's first appearance and its
        commit)."""
        report = {} if stats is None else stats
        if not update_s > 0:
            raise InputError(f"update_s must be > 0, got {update_s!r}", hint="e.g. 1.0")
        rate, window = self.settings.sampling_rate, self.settings.chunk_samples
        step = max(1, int(update_s * rate))
        with self.exclusive():
            strategy, parsed = self.decoder_options(decoder or self.default_decoder,
                                                    _text_only(options))  # fmt: skip
            prompt: list[int] | None = None
            buffer = np.zeros(0, np.float32)
            heard = pending = 0
            policy, tokens, shown = LocalAgreement(), [], ""
            updates: list[float] = []
            lags: list[float] = []

            def decode(samples: np.ndarray) -> list[int]:
                nonlocal prompt
                features = log_mel(samples, self.filters, self.settings)
                if prompt is None:
                    prompt, report["language"] = init_tokens(
                        self.rules, language, task, False, lambda: self._detect_language(features)
                    )
                fed = [*prompt, *policy.committed]
                rules = WhisperRules(begin_suppress=() if policy.committed else
                                     tuple(self.rules["begin_suppress_token_ids"]))  # fmt: skip
                room = self.defaults["max_total_length"] - len(fed)
                if room < 1:
                    return list(policy.committed)
                chosen = dataclasses.replace(parsed, prefix_ids=tuple(fed), rules=rules,
                                             max_new_tokens=min(parsed.max_new_tokens, room),
                                             min_new_tokens=0)  # fmt: skip
                self.core.listen(features)
                begun = time.perf_counter()
                new = list(strategy.decode(self.core, fed, chosen))
                updates.append((time.perf_counter() - begun) * 1000)
                if new and new[-1] in chosen.stop_ids:
                    new.pop()
                return [*policy.committed, *(t for t in new if t < self.rules["eot"])]

            def emit(new: list[int]) -> str:
                nonlocal shown
                tokens.extend(new)
                text = self.text_of(tokens)
                piece, shown = text[len(shown) :], text
                return piece

            for chunk in chunks:
                chunk = self.samples(chunk)
                buffer = np.concatenate([buffer, chunk])
                heard += chunk.size
                pending += chunk.size
                while buffer.size >= window:  # the window is full: commit it, start anew
                    full, buffer = buffer[:window], buffer[window:]
                    new = policy.finish(decode(full), (heard - buffer.size) / rate)
                    lags.extend(policy.lags)
                    policy, pending = LocalAgreement(), buffer.size
                    if piece := emit(new):
                        yield piece
                if pending >= step and buffer.size:
                    pending = 0
                    new = policy.update(decode(buffer), heard / rate)
                    if piece := emit(new):
                        yield piece
            if buffer.size:
                new = policy.finish(decode(buffer), heard / rate)
                if piece := emit(new):
                    yield piece
            lags.extend(policy.lags)
        report.update(
            tokens=list(tokens), audio_s=heard / rate, updates=len(updates),
            update_ms=percentiles(updates) if updates else None,
            lag_ms=percentiles([1000 * x for x in lags]) if lags else None,
        )  # fmt: skip

    def text_of(self, tokens: tuple[int, ...] | list[int]) -> str:
        """The text of ``tokens``: timestamps and special tokens left out."""
        eot = self.rules["eot"]
        return self.output_tokenizer.decode([t for t in tokens if t < eot])

    # --- internals ----------------------------------------------------------------------
    def _windows(self, audio: Any, language: str | None, task: str | None,
                 return_timestamps: bool | None, decoder: str | None, options: dict[str, Any],
                 stats: dict[str, Any]) -> Iterator[list[Segment]]:  # fmt: skip
        """Decode ``audio`` window by window (transformers' seek loop, batch 1)."""
        started = time.perf_counter()
        samples = self.samples(audio)
        whole = samples.size > self.settings.chunk_samples
        features = log_mel(samples, self.filters, self.settings, whole=whole)
        feature_ms = (time.perf_counter() - started) * 1000
        frames = features.shape[1]
        window = self.settings.frames
        long_form = frames > window
        if return_timestamps is None:
            return_timestamps = self.rules["return_timestamps"]
        if return_timestamps and self.rules["no_timestamps_token_id"] is None:
            raise InputError(
                "this checkpoint's generation config names no timestamp tokens "
                "(no_timestamps_token_id), so it cannot give timestamps or transcribe audio "
                f"over {self.settings.seconds:.0f} s",
                hint="transcribe up to one window without timestamps, or re-export a checkpoint "
                "whose generation_config.json is Whisper's",
            )
        if long_form:
            if return_timestamps is False:
                raise InputError(
                    f"the audio is {frames * self.settings.hop_length / self.settings.sampling_rate:.1f} s, "
                    f"over one {self.settings.seconds:.0f} s window: long-form transcription "
                    "needs timestamps to stitch the windows",
                    hint="pass return_timestamps=True (or leave it unset), or cut the audio",
                )
            return_timestamps = True
        options = dict(options)
        checks = Thresholds.of(*(options.pop(name, self.rules.get(name)) for name in (
            "temperature", "compression_ratio_threshold", "logprob_threshold",
            "no_speech_threshold")))  # fmt: skip
        seed = options.pop("seed", None)
        prompt_ids = self._prompt_ids(options.pop("prompt", None), options.pop("prompt_ids", None))
        condition = options.pop(
            "condition_on_prev_tokens", self.rules.get("condition_on_prev_tokens")
        )
        if not isinstance(condition, bool | None):
            raise InputError(f"condition_on_prev_tokens must be true or false, got {condition!r}")
        condition = bool(condition)
        strategy, parsed = self.decoder_options(decoder or self.default_decoder, options)
        given_new = "max_new_tokens" in options or self.rules["max_new_tokens_given"]
        prompt, lang = init_tokens(self.rules, language, task, bool(return_timestamps),
                                   lambda: self._detect_language(features[:, :window]))  # fmt: skip
        stats.update(language=lang, prompt=list(prompt), feature_ms=feature_ms)
        rules = WhisperRules(
            begin_suppress=tuple(self.rules["begin_suppress_token_ids"]),
            timestamp_begin=self.rules["timestamp_begin"] if return_timestamps else None,
            no_timestamps=self.rules["no_timestamps_token_id"], eos=self.rules["eot"],
            max_initial_timestamp_index=self.rules["max_initial_timestamp_index"],
        )  # fmt: skip
        parsed = dataclasses.replace(parsed, rules=rules)
        plans = [(strategy, parsed, 0)] * len(checks.temperatures)  # one per temperature
        for index, temperature in enumerate(checks.temperatures):
            if temperature > 0:  # a fallback samples, as generate() does, with one beam
                top_k = self.rules.get("top_k", 50) or 0
                sampler, drawn = self.decoder_options(
                    "sampling", {"temperature": temperature, "top_k": top_k, "seed": seed}
                )
                plans[index] = (sampler, dataclasses.replace(drawn, rules=rules), top_k)
        history = _History(self.rules, prompt_ids, condition)
        seek, windows, tokens_out, decode_ms, skipped, fallbacks = 0, 0, 0, 0.0, 0, 0
        while seek < frames:
            chunk = features[:, seek : seek + window]
            width = chunk.shape[1]
            if width < window:
                chunk = np.pad(chunk, ((0, 0), (0, window - width)))
            self.core.listen(chunk)
            fed = history.decoder_input(prompt)
            limit = self._new_tokens(fed, parsed.max_new_tokens, given_new)
            window_plans = [(d, dataclasses.replace(
                o, prefix_ids=tuple(fed), max_new_tokens=limit,
                min_new_tokens=min(o.min_new_tokens, limit)), k) for d, o, k in plans]  # fmt: skip
            begun = time.perf_counter()
            tokens, skip, tries = self._decode_window(fed, window_plans, checks, len(prompt))
            decode_ms += (time.perf_counter() - begun) * 1000
            windows += 1
            fallbacks += tries - 1
            history.condition_next = condition and checks.temperatures[tries - 1] < 0.5
            if skip:  # probably silence: no segment, on to the next window
                skipped += 1
                seek += width
                continue
            if tokens and tokens[-1] in parsed.stop_ids:
                tokens = tokens[:-1]
            tokens_out += len(tokens)
            offset = seek * TIME_PRECISION / INPUT_STRIDE
            segments, advance = cut_segments(
                tokens, self.rules["timestamp_begin"], offset, width, TIME_PRECISION,
                INPUT_STRIDE, self.settings.hop_length / self.settings.sampling_rate,
            )  # fmt: skip
            seek += advance
            history.add(segments)
            yield [dataclasses.replace(s, text=self.text_of(s.token_ids)) for s in segments]
        seconds = samples.size / self.settings.sampling_rate
        total = (time.perf_counter() - started) * 1000
        stats.update(skipped_windows=skipped, fallbacks=fallbacks)
        stats.update(windows=windows, new_tokens=tokens_out, decode_ms=decode_ms, total_ms=total,
                     audio_s=seconds, real_time_factor=total / 1000 / seconds if seconds else None,
                     decoder=decoder or self.default_decoder)  # fmt: skip

    def _new_tokens(self, fed: list[int], asked: int, given: bool) -> int:
        """New tokens a window may take after ``fed`` decoder inputs: ``max_new_tokens``
        where given (within the position table), else ``max_length`` less the inputs,
        except transformers' default ``max_length`` of 20, which counts new tokens."""
        room = self.defaults["max_total_length"] - len(fed)
        if given:
            new = min(asked, room)
        elif self.rules["max_length"] == DEFAULT_MAX_LENGTH:
            new = min(DEFAULT_MAX_LENGTH, room)
        else:
            new = self.rules["max_length"] - len(fed)
        if new < 1:
            raise InputError(
                f"the decoder's inputs ({len(fed)} tokens: prompt, previous text and start "
                f"tokens) leave no room in its {self.defaults['max_total_length']} positions",
                hint="pass a shorter prompt or a smaller max_new_tokens",
            )
        return new

    def _prompt_ids(self, text: Any, ids: Any) -> list[int] | None:
        """An initial prompt (``prompt`` text, or ``prompt_ids`` as transformers'
        ``get_prompt_ids`` makes them, starting with ``<|startofprev|>``)."""
        if text is not None and ids is not None:
            raise InputError("pass prompt or prompt_ids, not both")
        previous = self.rules.get("prev_sot_token_id")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise InputError("prompt must be some text", hint='e.g. prompt="Kubernetes, Helm"')
            if previous is None:
                raise InputError("this checkpoint has no <|startofprev|> token to start a prompt")
            encoded = self.tokenizer.encode(" " + text.strip(), add_special_tokens=False).ids
            return [previous, *encoded]
        if ids is None:
            return None
        if (
            not isinstance(ids, list | tuple)
            or not ids
            or not all(type(t) is int and 0 <= t < self.core.vocab_size for t in ids)
        ):
            raise InputError(f"prompt_ids must be a list of token ids below {self.core.vocab_size}")
        return list(ids)

    def _decode_window(self, prompt: list[int], plans: list[tuple[Any, Any, int]],
                       checks: Thresholds, start_length: int) -> tuple[list[int], bool, int]:  # fmt: skip
        """The window's tokens (end token included), whether it is skipped as silence,
        and how many decodes it took: each plan (temperature) in turn while the checks
        fail, the last one's tokens kept (``generate_with_fallback``)."""
        no_speech = None
        if checks.no_speech is not None:
            options = plans[0][1]
            no_speech = no_speech_probability(
                self.core, prompt, len(prompt) - start_length, start_length,
                self.rules["no_timestamps_token_id"] - 1, options,
                getattr(options, "num_beams", 1) > 1,
            )  # fmt: skip
        tokens: list[int] = []
        for tries, (strategy, options, top_k) in enumerate(plans, 1):
            tokens = list(strategy.decode(self.core, prompt, options))
            if not checks.checks:
                return tokens, False, tries
            fails = False
            if checks.compression_ratio is not None:
                fails = compression_ratio(tokens, self.core.vocab_size) > checks.compression_ratio
            logprob = None
            if checks.logprob is not None:
                logprob = average_logprob(self.core, prompt, tokens, options, top_k)
                fails = fails or logprob < checks.logprob
            if (
                no_speech is not None
                and logprob is not None
                and (logprob < checks.logprob and no_speech > checks.no_speech)
            ):
                return tokens, True, tries
            if not fails:
                return tokens, False, tries
        return tokens, False, len(plans)

    @property
    def default_decoder(self) -> str:
        """What ``generate`` of the checkpoint does without arguments: Whisper decodes at
        temperature 0 (never sampling, whatever ``do_sample`` says), with beams where its
        generation config keeps several."""
        return "beam" if (self.defaults.get("num_beams") or 1) > 1 else "greedy"

    def _detect_language(self, features: np.ndarray) -> int:
        """The likeliest language token after ``<|startoftranscript|>`` on the first window
        (one decoder call, no rules: transformers' ``detect_language``)."""
        if features.shape[1] < self.settings.frames:
            features = np.pad(features, ((0, 0), (0, self.settings.frames - features.shape[1])))
        self.core.listen(features)
        logits = self.core.start([self.rules["decoder_start_token_id"]])[-1]
        ids = sorted(self.rules["lang_to_id"].values())
        return ids[int(np.argmax(logits[ids]))]

    def __repr__(self) -> str:
        return (
            f"SpeechModel({self.bundle.path}, device={self.profile.id}, provider={self.provider})"
        )


class _History:
    """What conditions each window's decoder: the initial prompt, and with
    ``condition_on_prev_tokens`` the text of the windows before (``_prepare_decoder_input_ids``
    and ``_pad_to_max_length`` of transformers' ``generate``)."""

    def __init__(
        self, rules: dict[str, Any], prompt_ids: list[int] | None, condition: bool
    ) -> None:
        self.rules, self.prompt_ids, self.condition = rules, prompt_ids, condition
        self.condition_next = condition
        previous = rules.get("prev_sot_token_id")
        self.segments: list[tuple[int, ...]] = []
        if prompt_ids:  # the prompt is the first "previous" segment
            first = prompt_ids[1:] if prompt_ids[0] == previous else prompt_ids
            self.segments.append(tuple(first))

    def decoder_input(self, prompt: list[int]) -> list[int]:
        if self.condition and self.condition_next and self.segments:
            begin = self.rules["timestamp_begin"]
            tokens = [t for s in self.segments
                      for t in (s[:-1] if len(s) > 2 and s[-2] >= begin else s)]  # fmt: skip
            keep = self.rules["max_total_length"] // 2 - 1
            previous = self.rules.get("prev_sot_token_id")
            head = [previous] if previous is not None else []
            return [*head, *tokens[-keep:], *prompt]
        if self.prompt_ids:
            return [*self.prompt_ids, *prompt]
        return list(prompt)

    def add(self, segments: list[Segment]) -> None:
        self.segments.extend(s.token_ids for s in segments)


def _text_only(options: dict[str, Any]) -> dict[str, Any]:
    """Generic callers pass text-family arguments a speech model has no use for."""
    for name in ("stop", "truncate", "text", "input_ids"):
        if options.pop(name, None) not in (None, (), False):
            raise InputError(f"{name} is for text bundles; a speech bundle takes audio",
                             hint="pass a WAV/FLAC path or samples")  # fmt: skip
    return options


def _features(bundle: Bundle) -> tuple[FeatureSettings, np.ndarray]:
    """The front-end's settings and mel filters, checked against each other."""
    spec = dict(bundle.manifest.get("features") or {})
    name = spec.pop("mel_filters", None)
    try:
        settings = FeatureSettings(**{k: int(v) for k, v in spec.items()})
    except (TypeError, ValueError) as exc:
        raise BundleError(f"the manifest of {bundle.path}: bad features {spec!r}: {exc}",
                          hint="re-export the bundle") from exc  # fmt: skip
    filters = np.load(bundle.file(name), allow_pickle=False) if name else None
    bins = settings.n_fft // 2 + 1
    if filters is None or filters.shape != (bins, settings.feature_size):
        raise BundleError(
            f"the mel filters of {bundle.path} are {None if filters is None else filters.shape}; "
            f"the front-end needs ({bins}, {settings.feature_size})",
            hint="re-export the bundle",
        )
    return settings, filters


def _check_rules(generation: dict[str, Any], where: Any) -> dict[str, Any]:
    """Whisper's decoding facts from the manifest, with the ids the rules use."""
    rules = dict(generation)
    no_timestamps = rules.get("no_timestamps_token_id")
    eos = rules.get("eos_token_ids") or []
    if (no_timestamps is not None and type(no_timestamps) is not int) or not eos:
        raise BundleError(f"the manifest of {where}: no_timestamps_token_id is "
                          f"{no_timestamps!r} and eos_token_ids {eos!r}",
                          hint="re-export the bundle")  # fmt: skip
    # Without timestamp tokens no id is one (transformers' own fallback: past the vocabulary).
    rules["timestamp_begin"] = no_timestamps + 1 if no_timestamps is not None else 1 << 31
    rules["eot"] = eos[0]
    rules.setdefault("begin_suppress_token_ids", [])
    rules.setdefault("lang_to_id", {})
    rules.setdefault("task_to_id", {})
    rules.setdefault("max_initial_timestamp_index", None)
    rules.setdefault("return_timestamps", None)
    rules.setdefault("max_length", rules["max_total_length"])
    rules["max_new_tokens_given"] = bool(rules.get("max_new_tokens_given"))
    return rules
