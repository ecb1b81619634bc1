"""The web front-end: a Starlette app over :class:`Studio`, served by uvicorn.

Text is streamed as server-sent events from ``POST /api/bundles/{id}/generate`` (and a
transcript, segment by segment, from ``.../transcribe``); the first
event names the job, which ``POST /api/jobs/{job}/cancel`` stops, and so does closing the
connection (a closed tab). Static files come from a fixed list shipped in the package and
bundles are named by id: no request reaches a path on disk that it chose.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import edgert

from .core import Job, Studio, decoder_forms

log = logging.getLogger("edgert.studio")
ASSETS = {  # name -> media type; nothing else is served
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
HEARTBEAT_S = 1.0  # a quiet stream (queued, encoding) still notices a closed tab this fast
MAX_BODY = 4 * 1024 * 1024  # a pasted document or an image, with room to spare


class JobStream(StreamingResponse):
    """A stream of a job's events that cancels the job however the response ends."""

    def __init__(self, job: Job, content: Any) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip
        self.job = job

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancel()  # a no-op once the job has finished


def error_response(exc: edgert.EdgertError) -> JSONResponse:
    missing = isinstance(exc, edgert.UnknownNameError) and exc.kind in ("bundle", "running job")
    status = 404 if missing else 400  # what the path names is missing; else the request is bad
    return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=status)


def create_app(studio: Studio) -> Starlette:
    """The ASGI app serving ``studio``'s bundles."""

    async def asset(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in ASSETS:
            return JSONResponse({"error": "not found"}, status_code=404)
        body = (resources.files(__package__) / "static" / name).read_bytes()
        return Response(body, media_type=ASSETS[name],
                        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:"})  # fmt: skip

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def bundles(request: Request) -> Response:
        return JSONResponse([entry.facts() for entry in studio.entries.values()])

    async def bundle(request: Request) -> Response:
        entry_id = request.path_params["bundle"]
        return JSONResponse(await run_in_threadpool(studio.describe, entry_id))

    async def decoders(request: Request) -> Response:
        return JSONResponse(decoder_forms())

    async def generate(request: Request) -> Response:
        entry_id = request.path_params["bundle"]
        body = await _json_body(request)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def sink(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        job = studio.start_text(
            entry_id, sink, text=body.get("text"), decoder=body.get("decoder") or None,
            options=body.get("options") or {}, context=body.get("context"),
        )  # fmt: skip
        return JobStream(job, _events(job, events))

    async def transcribe(request: Request) -> Response:
        entry_id = request.path_params["bundle"]
        body = await _json_body(request)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def sink(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        job = await run_in_threadpool(
            studio.start_audio, entry_id, sink, pcm16=body.get("pcm16"), rate=body.get("rate"),
            language=body.get("language") or None, task=body.get("task") or None,
            timestamps=body.get("timestamps", True), decoder=body.get("decoder") or None,
        )  # fmt: skip
        return JobStream(job, _events(job, events))

    async def cancel(request: Request) -> Response:
        studio.cancel(request.path_params["job"])
        return JSONResponse({"cancelled": True})

    async def classify(request: Request) -> Response:
        body = await _json_body(request)
        top_k = body.get("top_k", 5)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 100:
            raise edgert.InputError(f"top_k must be an integer from 1 to 100, got {top_k!r}")
        result = await run_in_threadpool(
            studio.classify, request.path_params["bundle"], body.get("pixels"), top_k
        )
        return JSONResponse(result)

    async def profile(request: Request) -> Response:
        body = await _json_body(request, empty_ok=True)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise edgert.InputError("profile options must be an object")
        report = await run_in_threadpool(studio.profile, request.path_params["bundle"], **options)
        return JSONResponse(json.loads(json.dumps(report, default=str)))

    async def edgert_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)  # type: ignore[arg-type]

    routes = [
        Route("/", asset),
        Route("/static/{name}", asset),
        Route("/favicon.ico", favicon),
        Route("/api/bundles", bundles),
        Route("/api/bundles/{bundle}", bundle),
        Route("/api/decoders", decoders),
        Route("/api/bundles/{bundle}/generate", generate, methods=["POST"]),
        Route("/api/bundles/{bundle}/transcribe", transcribe, methods=["POST"]),
        Route("/api/bundles/{bundle}/classify", classify, methods=["POST"]),
        Route("/api/bundles/{bundle}/profile", profile, methods=["POST"]),
        Route("/api/jobs/{job}/cancel", cancel, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={edgert.EdgertError: edgert_error})
    app.state.studio = studio
    return app


async def _json_body(request: Request, empty_ok: bool = False) -> dict[str, Any]:
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY:  # refused before it is read
        raise edgert.InputError(f"the request has {declared} bytes; at most {MAX_BODY}",
                                hint="send a shorter text, a smaller image or a shorter clip")  # fmt: skip
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise edgert.InputError(f"the request has {len(raw)} bytes; at most {MAX_BODY}",
                                hint="send a shorter text or a smaller image")  # fmt: skip
    if not raw and empty_ok:
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise edgert.InputError(f"the request body is not JSON: {exc}",
                                hint='send e.g. {"text": "..."}') from exc  # fmt: skip
    if not isinstance(body, dict):
        raise edgert.InputError("the request body must be a JSON object")
    return body


async def _events(job: Job, events: asyncio.Queue) -> Any:
    """The job's id, then its events as they come, with a heartbeat while it is quiet."""
    yield _sse({"event": "job", "job": job.id})
    while True:
        try:
            event = await asyncio.wait_for(events.get(), HEARTBEAT_S)
        except TimeoutError:
            yield ": ping\n\n"
            continue
        yield _sse(event)
        if event["event"] in ("done", "error", "cancelled"):
            return


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"
