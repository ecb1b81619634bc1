"""The app's core, shared by the web server and the terminal front-end: loaded models,
one queue per model, generation jobs that stream events and stop when cancelled.

A loaded model holds one generation's caches, so a model runs one job at a time; other
jobs wait in its queue and are told their position, which is what a person in a second
tab sees. A job's generation runs in a thread of its own (the model's calls block) and
checks its cancel flag after every piece the decoder yields, so Stop, or a closed tab,
ends it within one decoder step and frees the model for the next job in the queue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import edgert

from .library import PAGES, Entry, build_library

log = logging.getLogger("edgert.studio")

Event = dict[str, Any]
# Decoder options a person may set from the page: the plain ones. Token-id lists (stop,
# suppressed, forced and prefix ids) come from the bundle and stay as it says.
HIDDEN_OPTIONS = frozenset({"stop_ids", "suppress_ids", "forced_first_id", "forced_last_id",
                            "prefix_ids", "rules"})  # fmt: skip
ONE_CALL_PER_TOKEN = frozenset({"greedy", "sampling"})  # decoders that report no call count
MAX_TEXT_CHARS = 200_000  # a pasted document; the model's own limits are checked by edgert
PROFILE_RUNS = {"runs": 10, "warmup": 2}  # "profile this bundle": a quick, honest look
# What a page may set of a profile run: no device, threads or decoder options (a draft's
# path), so a request cannot make the app read a file it chose.
PROFILE_OPTIONS = {"runs": (1, 200), "warmup": (0, 20), "new_tokens": (1, 512),
                   "input_tokens": (1, 4096), "context_tokens": (1, 65536), "batch": (1, 256)}  # fmt: skip
CONTEXTS_KEPT = 256  # contexts whose first memory time is kept (for the saving shown)


class Cancelled(Exception):
    """The job was cancelled while it waited in its model's queue."""


class Lane:
    """One model's first-come-first-served queue of jobs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()

    def enter(self, job: Job) -> None:
        """Wait for ``job``'s turn, telling it its position while it waits."""
        with self._cond:
            self._jobs.append(job)
            told = None
            while self._jobs[0] is not job:
                if job.cancelled:
                    self._jobs.remove(job)
                    self._cond.notify_all()
                    raise Cancelled
                position = self._jobs.index(job)
                if position != told:
                    job.emit("queued", position=position)
                    told = position
                self._cond.wait(0.05)
            if job.cancelled:  # cancelled while the job ahead finished
                self._jobs.popleft()
                self._cond.notify_all()
                raise Cancelled

    def leave(self, job: Job) -> None:
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._jobs)


class Job:
    """A request to a model: its events go to ``sink`` (a queue's put, or a callback into an
    event loop); ``cancel()`` may be called from any thread."""

    def __init__(self, sink: Callable[[Event], None]) -> None:
        self.id = uuid.uuid4().hex
        self._sink = sink
        self._cancel = threading.Event()
        self.cancelled_at: int | None = None  # pieces yielded when the cancel was seen
        self.finished = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def emit(self, kind: str, **data: Any) -> None:
        try:
            self._sink({"event": kind, "job": self.id, **data})
        except RuntimeError:  # the event loop of a closed connection: nobody listens
            self.cancel()


class Studio:
    """The bundles of an app, their models (loaded once, on first use) and their queues."""

    def __init__(
        self, paths: list[str | Path], *, device: str | None = None,
        allow_fallback: bool | None = None,
    ) -> None:  # fmt: skip
        self.entries: dict[str, Entry] = build_library(paths)
        self.device = device
        self.allow_fallback = allow_fallback
        self._models: dict[str, Any] = {}
        self._loading = threading.Lock()
        self._lanes = {entry_id: Lane() for entry_id in self.entries}
        self._jobs: dict[str, Job] = {}
        self._contexts: dict[tuple[str, str], float] = {}  # first memory time, by digest

    # --- bundles and models -------------------------------------------------------------
    def entry(self, entry_id: str) -> Entry:
        try:
            return self.entries[entry_id]
        except KeyError:
            raise edgert.UnknownNameError(
                "bundle",
                entry_id,
                self.entries,
                hint="the app serves only the bundles it was started with",
            ) from None

    def model(self, entry_id: str) -> Any:
        """The loaded model of a bundle (checksums verified once, sessions created once)."""
        entry = self.entry(entry_id)
        with self._loading:
            if entry_id not in self._models:
                self._models[entry_id] = edgert.load(
                    entry.path, device=self.device, allow_fallback=self.allow_fallback
                )
            return self._models[entry_id]

    def page(self, entry_id: str) -> str:
        """Which page a bundle gets: by its manifest's family, else by what its model does."""
        entry = self.entry(entry_id)
        if entry.family in PAGES:
            return PAGES[entry.family]
        model = self.model(entry_id)
        if callable(getattr(model, "classify", None)):
            return "image"
        stream = getattr(model, "stream", None)
        if callable(stream):
            return "context" if "context" in inspect.signature(stream).parameters else "text"
        return "facts"

    def describe(self, entry_id: str) -> dict[str, Any]:
        """A bundle's facts, its page, and what that page needs (decoders, image input)."""
        facts = self.entry(entry_id).facts()
        model = self.model(entry_id)
        info = model.session_info
        page = self.page(entry_id)
        facts.update(
            page=page,
            provider=info.active,
            simulated=bool(getattr(info, "simulated", False)),
            fallback=list(info.fallback),
            running_profile=model.profile.id,
            waiting=self._lanes[entry_id].waiting,
        )
        if page in ("text", "context"):
            facts["default_decoder"] = getattr(model, "default_decoder", "greedy")
            defaults = getattr(model, "option_defaults", dict)()  # the bundle's, not the class's
            facts["option_defaults"] = {k: v for k, v in defaults.items()
                                        if isinstance(v, bool | int | float | str)}  # fmt: skip
            facts["drafts"] = self._drafts(entry_id)
        if page == "audio":
            facts["sampling_rate"] = model.sampling_rate
            facts["languages"] = sorted(t.strip("<|>") for t in model.rules["lang_to_id"])
            facts["tasks"] = sorted(model.rules["task_to_id"])
        if page == "image":
            shape = list(model.example_input(1).shape)
            facts["input"] = {"shape": shape, "channels": shape[1] if len(shape) == 4 else 1,
                              "range": [0.0, 1.0], "layout": "NCHW"}  # fmt: skip
            facts["labels"] = list(getattr(model, "labels", ()))
        return facts

    def _drafts(self, entry_id: str) -> list[str]:
        """The app's other bundles of the same family: the drafts a page may pick."""
        family = self.entry(entry_id).family
        return [e.id for e in self.entries.values() if e.id != entry_id and e.family == family]

    def _draft(self, entry_id: str, draft: str) -> Path:
        """A draft model is one of the app's own bundles, named by id: a request never
        makes the app open a path it was not given."""
        if draft not in self.entries or draft == entry_id:
            choices = self._drafts(entry_id)
            raise edgert.InputError(
                f"draft {draft!r} is not another bundle of this app",
                hint=f"choose one of: {', '.join(choices) or 'none (start the app with a draft bundle too)'}",
            )
        return self.entries[draft].path

    def lane(self, entry_id: str) -> Lane:
        self.entry(entry_id)
        return self._lanes[entry_id]

    # --- jobs ---------------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise edgert.UnknownNameError("running job", job_id, (),
                                          hint="it has finished or never existed") from None  # fmt: skip

    def cancel(self, job_id: str) -> None:
        self.job(job_id).cancel()

    def start_text(
        self, entry_id: str, sink: Callable[[Event], None], *, text: str, decoder: str | None,
        options: dict[str, Any] | None = None, context: str | None = None,
    ) -> Job:  # fmt: skip
        """Start streaming a generation; its events go to ``sink`` from a worker thread.

        Bad input (unknown bundle, empty or huge text, options of the wrong type) is refused
        here, before a thread starts; the model's own checks (window, decoder options)
        arrive as an ``error`` event with the runtime's message and hint.
        """
        self.entry(entry_id)
        for name, value in (("text", text), ("context", context), ("decoder", decoder)):
            if value is not None and not isinstance(value, str):
                raise edgert.InputError(f"{name} must be a string, got {type(value).__name__}")
        if not text or not text.strip():
            raise edgert.InputError("the input text is empty", hint="type something to process")
        for name, value in (("text", text), ("context", context or "")):
            if len(value) > MAX_TEXT_CHARS:
                raise edgert.InputError(
                    f"the {name} has {len(value)} characters; this app takes at most {MAX_TEXT_CHARS}",
                    hint="shorten it",
                )
        options = check_options(decoder, options or {})
        if options.get("draft"):
            options["draft"] = str(self._draft(entry_id, options["draft"]))
        return self._start(sink, entry_id, lambda job: self._stream(
            job, entry_id, text, decoder, options, context))  # fmt: skip

    def start_audio(
        self, entry_id: str, sink: Callable[[Event], None], *, pcm16: str, rate: int,
        language: str | None = None, task: str | None = None, timestamps: bool = True,
        decoder: str | None = None,
    ) -> Job:  # fmt: skip
        """Start transcribing audio sent as base64 little-endian 16-bit PCM, mono, at the
        model's rate (the page decodes and resamples files and recordings); segments go
        to ``sink`` as each 30 s window is decoded."""
        self.entry(entry_id)
        for name, value in (("language", language), ("task", task), ("decoder", decoder)):
            if value is not None and not isinstance(value, str):
                raise edgert.InputError(f"{name} must be a string, got {type(value).__name__}")
        if not isinstance(timestamps, bool):
            raise edgert.InputError(f"timestamps must be true or false, got {timestamps!r}")
        samples = _pcm16(pcm16)
        model = self.model(entry_id)
        expected = getattr(model, "sampling_rate", None)
        if expected is None:
            raise edgert.InputError(f"bundle {entry_id!r} does not take audio")
        if rate != expected:
            raise edgert.InputError(f"the audio is at {rate!r} Hz; this model takes {expected} Hz",
                                    hint=f"resample it to {expected} Hz")  # fmt: skip
        kwargs = {"language": language or None, "task": task or None,
                  "return_timestamps": timestamps, "decoder": decoder}  # fmt: skip
        return self._start(sink, entry_id, lambda job: self._transcribe(job, entry_id, samples,
                                                                          kwargs))  # fmt: skip

    def _start(self, sink: Callable[[Event], None], entry_id: str,
               work: Callable[[Job], None]) -> Job:  # fmt: skip
        job = Job(sink)
        self._jobs[job.id] = job
        worker = threading.Thread(target=self._generate, args=(job, entry_id, work),
                                  name=f"studio-{job.id[:8]}", daemon=True)  # fmt: skip
        worker.start()
        return job

    def _generate(self, job: Job, entry_id: str, work: Callable[[Job], None]) -> None:
        lane = self._lanes[entry_id]
        try:
            lane.enter(job)
        except Cancelled:
            job.emit("cancelled", pieces=0)
            self._finish(job)
            return
        try:
            work(job)
        except edgert.EdgertError as exc:
            job.emit("error", message=exc.message, hint=exc.hint)
        except Exception as exc:  # a bug: the page gets a line, the log the traceback
            log.exception("job %s failed", job.id)
            job.emit("error", message=f"internal error: {type(exc).__name__}: {exc}",
                     hint="see the app's log; please report it")  # fmt: skip
        finally:
            lane.leave(job)
            self._finish(job)

    def _stream(
        self, job: Job, entry_id: str, text: str, decoder: str | None, options: dict[str, Any],
        context: str | None,
    ) -> None:  # fmt: skip
        model = self.model(entry_id)
        stats: dict[str, Any] = {}
        kwargs: dict[str, Any] = {"decoder": decoder, "stats": stats, **options}
        if context is not None:
            kwargs.update(context=context, context_policy="chunk")
        job.emit("start", provider=model.session_info.active, profile=model.profile.id,
                 decoder=decoder or getattr(model, "default_decoder", None))  # fmt: skip
        started = time.perf_counter()
        first_ms = None
        pieces: list[str] = []
        stream = model.stream(text, **kwargs)
        try:
            for piece in stream:
                elapsed = (time.perf_counter() - started) * 1000
                first_ms = elapsed if first_ms is None else first_ms
                pieces.append(piece)
                job.emit("token", text=piece, pieces=len(pieces), elapsed_ms=elapsed,
                         first_ms=first_ms)  # fmt: skip
                if job.cancelled:
                    job.cancelled_at = len(pieces)
                    break
        finally:
            stream.close()  # releases the model at once, also when cancelled mid-answer
        if job.cancelled:
            job.emit("cancelled", pieces=len(pieces), text="".join(pieces))
            return
        job.emit("done", text="".join(pieces), stats=self._summary(entry_id, stats, context))

    def _transcribe(self, job: Job, entry_id: str, samples: np.ndarray,
                    kwargs: dict[str, Any]) -> None:  # fmt: skip
        model = self.model(entry_id)
        stats: dict[str, Any] = {}
        job.emit("start", provider=model.session_info.active, profile=model.profile.id,
                 decoder=kwargs["decoder"] or getattr(model, "default_decoder", None))  # fmt: skip
        started = time.perf_counter()
        texts: list[str] = []
        tokens: list[int] = []
        segments = model.segments(samples, stats=stats, **kwargs)
        try:
            for segment in segments:
                texts.append(segment.text)
                tokens.extend(segment.token_ids)
                job.emit("segment", start=segment.start, end=segment.end, text=segment.text,
                         pieces=len(texts),
                         elapsed_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
                if job.cancelled:
                    job.cancelled_at = len(texts)
                    break
        finally:
            segments.close()
        if job.cancelled:
            job.emit("cancelled", pieces=len(texts), text="".join(texts))
            return
        summary = {k: v for k, v in stats.items()
                   if isinstance(v, bool | int | float | str) or v is None}  # fmt: skip
        job.emit("done", text=model.text_of(tokens), language=stats.get("language"),
                 stats=summary)  # fmt: skip

    def _summary(self, entry_id: str, stats: dict[str, Any], context: str | None) -> dict:
        """The run's statistics as the page shows them: scalars only, plus the saving a
        cached context memory brought."""
        summary = {k: v for k, v in stats.items()
                   if isinstance(v, bool | int | float | str) or v is None}  # fmt: skip
        calls = stats.get("target_calls")
        if calls is None and summary.get("decoder") in ONE_CALL_PER_TOKEN:
            calls = stats.get("new_tokens")
        summary["decoder_calls"] = calls
        if context is not None and "memory_ms" in stats:
            key = (entry_id, hashlib.sha256(context.encode("utf-8")).hexdigest())
            if not stats.get("memory_cache_hit"):
                self._contexts[key] = float(stats["memory_ms"])
                while len(self._contexts) > CONTEXTS_KEPT:  # oldest first
                    self._contexts.pop(next(iter(self._contexts)))
            first = self._contexts.get(key)
            if stats.get("memory_cache_hit") and first is not None:
                summary["memory_saved_ms"] = max(first - float(stats["memory_ms"]), 0.0)
        return summary

    def _finish(self, job: Job) -> None:
        job.finished.set()
        self._jobs.pop(job.id, None)

    # --- classifiers and profiles -------------------------------------------------------
    def classify(self, entry_id: str, pixels: Any, top_k: int = 5) -> dict[str, Any]:
        """Top-k classes of one image given as numbers in [0, 1], shaped like the input
        without its batch dimension (or flat), and the time the model took."""
        model = self.model(entry_id)
        shape = model.example_input(1).shape[1:]
        try:
            image = np.asarray(pixels, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise edgert.InputError(f"the image is not a list of numbers: {exc}",
                                    hint=f"send {int(np.prod(shape))} numbers in [0, 1]") from exc  # fmt: skip
        if image.size != int(np.prod(shape)):
            raise edgert.InputError(
                f"the image has {image.size} values; this bundle takes {list(shape)} "
                f"({int(np.prod(shape))} values)",
                hint="resize the image to the bundle's input",
            )
        if not np.all(np.isfinite(image)):
            raise edgert.InputError("the image holds NaN or infinite values",
                                    hint="send numbers in [0, 1]")  # fmt: skip
        image = image.reshape(shape)
        started = time.perf_counter()  # sessions run calls from several threads safely
        (prediction,) = model.classify(image[None], top_k=top_k)
        latency = (time.perf_counter() - started) * 1000
        return {
            "top": [
                {"label": label, "score": float(score), "index": int(index)}
                for label, score, index in zip(
                    prediction.labels, prediction.scores, prediction.indices, strict=True
                )
            ],
            "latency_ms": latency,
            "provider": model.session_info.active,
        }

    def profile(self, entry_id: str, **options: Any) -> dict[str, Any]:
        """The ``edgert profile`` report of a bundle, with few runs; while it runs, the
        bundle's generations wait in the same queue (so neither disturbs the other)."""
        entry = self.entry(entry_id)
        for name, value in options.items():
            bounds = PROFILE_OPTIONS.get(name)
            if bounds is None:
                raise edgert.InputError(f"profile option {name!r} cannot be set from the app",
                                        hint=f"options: {', '.join(PROFILE_OPTIONS)}")  # fmt: skip
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not bounds[0] <= value <= bounds[1]
            ):
                raise edgert.InputError(f"profile option {name!r} must be an integer from "
                                        f"{bounds[0]} to {bounds[1]}, got {value!r}")  # fmt: skip
        job = Job(lambda event: None)
        lane = self._lanes[entry_id]
        lane.enter(job)
        try:
            chosen = {**PROFILE_RUNS, **options}
            if self.device is not None:
                chosen.setdefault("device", self.device)
            if self.allow_fallback is not None:
                chosen.setdefault("allow_fallback", self.allow_fallback)
            return edgert.profile(entry.path, **chosen)
        finally:
            lane.leave(job)


def decoder_forms() -> dict[str, list[dict[str, Any]]]:
    """Every registered decoder and the options a page offers for it: name, default and
    kind (``int``, ``float``, ``bool``, ``str``), read from the decoder's options class."""
    forms: dict[str, list[dict[str, Any]]] = {}
    for name, options in edgert.decoders().items():
        fields = []
        for field in dataclasses.fields(options):
            if field.name in HIDDEN_OPTIONS:
                continue
            default = field.default
            if default is dataclasses.MISSING:
                continue
            kind = _kind(default, str(field.type))
            if kind is None:
                continue
            fields.append({"name": field.name, "default": default, "kind": kind})
        forms[name] = fields
    return forms


def _kind(default: Any, annotation: str) -> str | None:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int) or (default is None and annotation.startswith("int")):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return None


MAX_AUDIO_SAMPLES = 16000 * 600  # ten minutes at 16 kHz


def _pcm16(data: Any) -> np.ndarray:
    """Float samples of base64 little-endian 16-bit PCM, refused clearly when malformed."""
    import base64
    import binascii

    if not isinstance(data, str) or not data:
        raise edgert.InputError("pcm16 must be base64 text of 16-bit samples",
                                hint="decode the file in the page and send its samples")  # fmt: skip
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise edgert.InputError(f"pcm16 is not base64: {exc}") from exc
    if len(raw) % 2 or not raw:
        raise edgert.InputError(f"pcm16 holds {len(raw)} bytes; 16-bit samples take 2 each")
    if len(raw) // 2 > MAX_AUDIO_SAMPLES:
        raise edgert.InputError(f"the audio has {len(raw) // 2} samples; this app takes at most "
                                f"{MAX_AUDIO_SAMPLES} (ten minutes)", hint="send a shorter clip")  # fmt: skip
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0


def check_options(decoder: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Options sent by a page, checked against the decoder's form: names and kinds.

    The decoder validates values itself (ranges, combinations); this refuses what it could
    not: unknown names and values of the wrong type, with the valid choices."""
    if not isinstance(options, dict):
        raise edgert.InputError("decoder options must be an object of name: value",
                                hint='e.g. {"max_new_tokens": 32}')  # fmt: skip
    if decoder is None:
        return dict(options)
    forms = decoder_forms()
    if decoder not in forms:
        raise edgert.UnknownNameError("decoder", decoder, forms)
    fields = {f["name"]: f for f in forms[decoder]}
    checked: dict[str, Any] = {}
    for name, value in options.items():
        field = fields.get(name)
        if field is None:
            raise edgert.InputError(
                f"decoder {decoder!r} has no option {name!r}",
                hint=f"its options: {', '.join(fields) or 'none'}",
            )
        checked[name] = _coerce(decoder, field, value)
    return checked


def _coerce(decoder: str, field: dict[str, Any], value: Any) -> Any:
    kind, name = field["kind"], field["name"]
    if value is None and field["default"] is None:
        return None
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if not ok:
        raise edgert.InputError(
            f"option {name!r} of decoder {decoder!r} must be {kind}, got {value!r}",
            hint=f"its default is {field['default']!r}",
        )
    return float(value) if kind == "float" else value
