"""The HTTP translation service behind `neuralese serve` (FastAPI; docs/live_translation.md).

    POST /v1/translate   {"channel": "continuous", "to": "english", "items": [{"message": [...], "context": [...]}]}
    GET  /healthz        liveness, loaded channels, batching counters
    GET  /openapi.json   the schema (and /docs, the interactive page)

Translators `RUN/translators/<channel>/<name>` load once at start; a request names a loaded channel.

Micro-batching: checked rows are queued; one collector task gathers requests until a quiet gap,
groups their rows by (channel, direction, with/without context) and runs one translator call per
group on the event loop itself, so concurrent clients share matrix products (why not a worker
thread: docs/decisions.md). A failed call is retried request by request.
Bad input answers 422 (a wrong dimension, NaN, an unknown channel or field), 413 (over `max_body`
bytes or `max_batch` rows) or 503 (a full queue) with a `{"detail": "..."}`; an unexpected failure
answers 500 for that request alone."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from translator.apps import games
from translator.apps.colors.play import add_play_routes, load_play_rounds
from translator.games.colors.plays_db import PlaysDB
from translator.translate.colors.api import DEFAULT_NAME, MAX_UTTERANCE_CHARS, Translator, load_run_translators, served_channels
from translator.translate.translations import Translation

MAX_BATCH = 256  # rows per request, and per translator call
MAX_BODY = 1 << 20  # bytes; 256 continuous 64-d messages with contexts are ~450 KB
MAX_QUEUED = 64 * MAX_BATCH  # rows waiting for the worker before the service answers 503
BATCH_WAIT = 0.002  # a gap this long (seconds) with no new request ends a batch's gathering
MAX_GATHER = 0.02  # seconds a batch gathers at most: a bound on the latency batching adds

Number = StrictFloat | StrictInt
Id = StrictStr | StrictInt | Annotated[StrictFloat, AllowInfNan(False)]  # as in the line format: a string or a finite number
Colour = Annotated[list[Number], Field(description="[h, s, l]: h in [0, 360], s and l in [0, 100]")]


class Item(BaseModel):
    """One row: `message` (to English) or `utterance` (to neuralese), and optionally its game context."""

    model_config = ConfigDict(extra="forbid")
    message: list[Number] | None = Field(None, description="to English: `dim` floats (continuous) or up to `max_len` symbol ids (discrete)")
    utterance: str | None = Field(None, description=f"to neuralese: English text, at most {MAX_UTTERANCE_CHARS} characters")
    context: list[Colour] | None = Field(None, description="the round's three colours; omit for a context-free translation")
    id: Id | None = Field(None, description="a string or a finite number, echoed back in the result")


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(description="a channel the service loaded (see /healthz)")
    to: Literal["english", "neuralese"]
    items: list[Item] = Field(description=f"the batch, at most max_batch rows (default {MAX_BATCH})")


def _result_model() -> type[BaseModel]:
    """A response row: the request item's `id` and the fields of `Translation` (translator/translate/translations.py)
    with their descriptions, so the schema shows what `Translation.to_json()` sends."""
    hints = get_type_hints(Translation)
    rows: dict[str, Any] = {"id": (Id | None, None)}
    for f in fields(Translation):
        rows[f.name] = (hints[f.name], Field(description=f.metadata.get("description")))
    return create_model("Result", **rows)


Result = _result_model()


class TranslateResponse(BaseModel):
    channel: str
    to: str
    translator: str
    results: list[Result] = Field(description="one per item, in item order")  # type: ignore[valid-type]


class Health(BaseModel):
    status: str
    translator: str
    channels: dict[str, dict[str, Any]]
    driving: str | None = Field(None, description="the driving translator at /v1/driving/translate; null without one")
    requests: int
    rows: int
    batches: int
    queued_rows: int


# -- micro-batching -----------------------------------------------------------------------------------


@dataclass
class _Job:
    key: tuple[str, str, bool]  # channel, direction, in context
    sources: list[Any]  # checked messages (lists) or texts
    contexts: list[list] | None
    future: asyncio.Future = field(repr=False)

    def __len__(self) -> int:
        return len(self.sources)


class MicroBatcher:
    """Gathers concurrent requests into batched translator calls, run on the event loop."""

    def __init__(self, translators: dict[str, Translator], max_batch: int = MAX_BATCH, batch_wait: float = BATCH_WAIT,
                 max_queued: int = MAX_QUEUED):
        self.translators, self.max_batch, self.batch_wait, self.max_queued = translators, max_batch, batch_wait, max_queued
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.queued_rows = 0
        self.requests = self.rows = self.batches = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, key: tuple[str, str, bool], sources: list[Any], contexts: list[list] | None) -> list[Translation]:
        """Translate one request's rows, all with context (`key[2]`) or all without."""
        self._admit(len(sources))
        return await self._enqueue(key, sources, contexts)

    async def translate(self, channel: str, to: str, sources: list[Any], contexts: list[list | None]) -> list[Translation]:
        """Translate one request's rows, each with its context or `None`: rows with and without
        context go to different batches (one job each), and the results come back in row order."""
        self._admit(len(sources))
        modes = [c is not None for c in contexts]
        results: list[Any] = [None] * len(sources)
        idx = {mode: [i for i, m in enumerate(modes) if m == mode] for mode in (True, False)}
        waits = {mode: self._enqueue((channel, to, mode), [sources[i] for i in rows], [contexts[i] for i in rows] if mode else None)
                 for mode, rows in idx.items() if rows}  # fmt: skip
        outs = await asyncio.gather(*waits.values(), return_exceptions=True)  # both awaited, whichever fails
        for mode, out in zip(waits, outs):
            if isinstance(out, BaseException):
                raise out
            for i, r in zip(idx[mode], out):
                results[i] = r
        return results

    def _admit(self, rows: int) -> None:
        """Count a request, or refuse it (503) when the queue is full."""
        if self.queued_rows + rows > self.max_queued:
            raise HTTPException(503, f"busy: {self.queued_rows} rows already queued; retry shortly")
        self.requests += 1

    def _enqueue(self, key: tuple[str, str, bool], sources: list[Any], contexts: list[list] | None) -> asyncio.Future:
        job = _Job(key, sources, contexts, asyncio.get_running_loop().create_future())
        self.queued_rows += len(job)
        self.queue.put_nowait(job)
        return job.future

    def _drain(self, jobs: list[_Job]) -> None:
        while True:
            try:
                jobs.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    async def _collect(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            await self._gather(jobs)
            for chunk in self._chunks(jobs):
                self.queued_rows -= sum(len(j) for j in chunk)
                live = [j for j in chunk if not j.future.done()]  # skip clients that went away
                if live:
                    self._run(live)
                    await asyncio.sleep(0)  # let the loop read and answer requests between batches

    def _run(self, jobs: list[_Job]) -> None:
        """Translate the jobs in one call and settle their futures. Should the call fail, each job
        is run alone, so that a request that breaks a batch fails by itself, not its neighbours'."""
        try:
            results = self._translate(jobs)
        except Exception as e:  # noqa: BLE001 - one failed batch must not stop the service
            if len(jobs) > 1:
                for j in jobs:
                    self._run([j])
                return
            results = [e]
        else:
            self.batches += 1
            self.rows += sum(len(j) for j in jobs)
        for j, r in zip(jobs, results):
            if j.future.done():
                continue
            if isinstance(r, BaseException):
                j.future.set_exception(r)
            else:
                j.future.set_result(r)

    async def _gather(self, jobs: list[_Job]) -> None:
        """Add requests to `jobs` while they keep coming. Under load the clients answered by the last
        batch come back within a gap, so batches grow with the load (32 clients: about 32 rows);
        a lone request waits one gap."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_GATHER
        self._drain(jobs)
        while self.batch_wait > 0 and sum(len(j) for j in jobs) < self.max_batch and loop.time() < deadline:
            n = len(jobs)
            await asyncio.sleep(self.batch_wait)
            self._drain(jobs)
            if len(jobs) == n:
                return

    def _chunks(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Jobs grouped by key, in arrival order, split so that no call exceeds `max_batch` rows."""
        groups: dict[tuple, list[list[_Job]]] = defaultdict(lambda: [[]])
        for j in jobs:
            chunks = groups[j.key]
            if chunks[-1] and sum(len(x) for x in chunks[-1]) + len(j) > self.max_batch:
                chunks.append([])
            chunks[-1].append(j)
        return [c for chunks in groups.values() for c in chunks]

    def _translate(self, jobs: list[_Job]) -> list[list[Translation]]:
        """One translator call for the jobs' rows, split back per job."""
        channel, to, in_context = jobs[0].key
        tr = self.translators[channel]
        sources = [s for j in jobs for s in j.sources]
        colors = [c for j in jobs for c in j.contexts] if in_context else None  # type: ignore[union-attr]
        out = tr.english_checked(sources, colors) if to == "english" else tr.neuralese_checked(sources, colors)
        parts, s = [], 0
        for j in jobs:
            parts.append(out[s : s + len(j)])
            s += len(j)
        return parts


# -- the app ------------------------------------------------------------------------------------------


def _loc(loc: tuple) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


_UNION_TAGS = {"float", "int", "str", "list[int]", "list[float]", "list[str]"}


def _describe(errors: list[dict]) -> str:
    """Pydantic errors as one readable line: `items[2].message[5]: Input should be a valid number`."""
    seen: dict[str, str] = {}
    for e in errors:
        if e.get("type") == "json_invalid":
            return f"body: invalid JSON ({e.get('ctx', {}).get('error', 'decode error')})"
        if e.get("type") == "model_type" and not e.get("loc"):  # valid JSON, but not an object
            return "body: expected a JSON object"
        if e.get("type") == "model_attributes_type" and tuple(e.get("loc", ())) == ("body",):  # FastAPI: not JSON at all
            return "body: expected a JSON object (send Content-Type: application/json)"
        loc = _loc(tuple(p for p in e.get("loc", ()) if p not in _UNION_TAGS))  # one line per place, not per union branch
        seen.setdefault(loc, e.get("msg", "invalid"))
    shown = list(seen.items())
    more = f" (and {len(shown) - 5} more)" if len(shown) > 5 else ""
    return "; ".join(f"{loc}: {msg}" for loc, msg in shown[:5]) + more


# `/v1/translate` reads its body itself (`_read_request`), so its schema is declared by hand.
_REQUEST_BODY = {"requestBody": {"required": True,
                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TranslateRequest"}}}}}


async def _read_request(request: Request) -> TranslateRequest:
    """The body as a `TranslateRequest`, decoded and validated in one pass by pydantic-core.

    FastAPI's own path decodes the JSON into Python objects and then validates them, twice the
    work: with it the service answered ~20% fewer messages a second (`bench/serve.py`). Errors
    read as FastAPI's would.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise HTTPException(422, "body: expected a JSON object (send Content-Type: application/json)")
    try:
        text = (await request.body()).decode()  # decoded once; pydantic then parses the str as is
    except UnicodeDecodeError:
        raise HTTPException(400, "body: could not be read as JSON (is it UTF-8?)") from None
    try:
        return TranslateRequest.model_validate_json(text)
    except ValidationError as e:
        raise HTTPException(422, _describe(e.errors())) from None


def _document_request(app: FastAPI) -> None:
    """Put `TranslateRequest` (and `Item`) in the OpenAPI components, where `_REQUEST_BODY` points."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            request = TranslateRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request.pop("$defs", {}))
            components["TranslateRequest"] = request
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _too_large(max_body: int) -> HTTPException:
    return HTTPException(413, f"request body larger than the limit of {max_body} bytes")


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_body` bytes, declared or streamed, before they are parsed."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope["headers"]:
            if k == b"content-length" and (not v.isdigit() or int(v) > self.max_body):
                response = JSONResponse({"detail": _too_large(self.max_body).detail}, status_code=413)
                return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # chunked body without a length: stop reading here
                    raise _too_large(self.max_body)
            return message

        await self.app(scope, limited, send)


def _check_play_options(run: str | Path | None, plays_db: str | Path | None, play_data: str | Path | None) -> None:
    if play_data is not None and plays_db is None:
        raise ValueError("play data given without a plays database (--play-data needs --plays DB)")
    if plays_db is not None and run is None:
        raise ValueError("the play page needs a run directory (agents in RUN/agents/<kind>)")


@dataclass
class _Service:
    """What the routes share: the translators by channel, the limits, and (while running) the batcher."""

    translators: dict[str, Translator]
    max_batch: int
    batch_wait: float
    max_queued: int
    batcher: MicroBatcher | None = None
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def running(self) -> MicroBatcher:
        if self.batcher is None:
            raise HTTPException(503, "the service is starting or stopping")
        return self.batcher

    async def submit(self, key: tuple[str, str, bool], sources: list[Any], contexts: list[Any] | None) -> list[Translation]:
        return await self.running().submit(key, sources, contexts)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        self.batcher = MicroBatcher(self.translators, self.max_batch, self.batch_wait, max(self.max_queued, self.max_batch))
        self.batcher.start()
        # The loaded models and vocabularies are millions of long-lived objects; frozen, they are
        # out of the collector's reach, so a full collection does not stall requests for ~0.2 s.
        gc.collect()
        gc.freeze()
        yield
        await self.batcher.stop()
        self.batcher = None
        for stop in self.on_stop:
            stop()


def create_app(run: str | Path | None = None, max_batch: int = MAX_BATCH, max_body: int = MAX_BODY, batch_wait: float = BATCH_WAIT,
               name: str = DEFAULT_NAME, translators: dict[str, Translator] | None = None, max_queued: int = MAX_QUEUED,
               plays_db: str | Path | None = None, play_data: str | Path | None = None, others: dict[str, Any] | None = None) -> FastAPI:
    """The service for every `RUN/translators/*/<name>` (any kind of translator), or for `translators` given directly.

    `others` (game name -> translator), or the translators of every other registered game whose
    bundles the run holds (translator/apps/games.py): also each game's own routes, such as the
    driving game's `POST /v1/driving/translate`; a run may hold only those.

    `plays_db`: also serve the play page (`/play`, translator/apps/colors/play.py), storing rounds in this SQLite
    file; `play_data`: the corpus CSV its rounds come from (default: the bundled dev.csv).
    """
    _check_play_options(run, plays_db, play_data)
    if translators is None:
        if run is None:
            raise ValueError("create_app: give a run directory or translators")
        if others is None:
            others = games.served_games(run, name)
        translators = _run_translators(run, name, bool(others))
    others = others or {}
    if max_batch < 1 or max_body < 1:
        raise ValueError("max_batch and max_body must be >= 1")
    service = _Service(translators, max_batch, batch_wait, max_queued)
    app = FastAPI(
        title="neuralese translation service",
        version="1",
        description="Translate agent messages (neuralese) to English and back, with belief divergences and faithfulness flags.",
        lifespan=service.lifespan,
        # FastAPI's native OpenTelemetry checks its providers (and the environment) on every request:
        # 8% of the service's time under load. Off unless asked for (`neuralese serve` has no tracer).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_middleware(BodyLimit, max_body=max_body)
    _document_request(app)
    _add_error_handlers(app)
    _add_routes(app, service, others)
    for game, translator in others.items():
        routes = games.get(game).routes
        if routes is not None:
            routes(app, translator, max_batch, _describe)
    if plays_db is not None:
        play = add_play_routes(app, run, plays_db, play_data, translators, submit=service.submit)  # type: ignore[arg-type]
        service.on_stop.append(play.close)
    return app


def _run_translators(run: str | Path, name: str, has_other_game: bool) -> dict[str, Translator]:
    """The colour game's translators of the run; none is an error unless the run has another game."""
    try:
        return load_run_translators(run, name)
    except ValueError:
        if has_other_game:
            return {}
        raise


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers `{"detail": "one readable line"}`."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _describe(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's words for undecodable bytes
            detail = "body: could not be read as JSON (is it UTF-8?)"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def _add_routes(app: FastAPI, service: _Service, others: dict[str, Any]) -> None:
    """`GET /healthz` and `POST /v1/translate`; `others`: the other games' translators (named in the health answer)."""
    translators = service.translators
    name = next(iter(translators.values())).name if translators else next((t.kind for t in others.values()), DEFAULT_NAME)
    driving = others.get("driving")

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        b = service.running()
        return Health(status="ok", translator=name, requests=b.requests, rows=b.rows, batches=b.batches, queued_rows=b.queued_rows,
                      channels={c: t.channel.to_dict() for c, t in translators.items()},
                      driving=None if driving is None else driving.kind)

    @app.post("/v1/translate", response_model=TranslateResponse, openapi_extra=_REQUEST_BODY,
              responses={413: {"description": "body or batch too large"}, 503: {"description": "queue full"}})
    async def translate(request: Request) -> Response:
        req = await _read_request(request)
        tr = translators.get(req.channel)
        if tr is None:
            raise HTTPException(422, f"unknown channel {req.channel!r}; this service has: {', '.join(sorted(translators))}")
        if len(req.items) > service.max_batch:
            raise HTTPException(413, f"batch of {len(req.items)} items is over the limit of {service.max_batch}; split it")
        sources, contexts = _checked_items(tr, req)
        try:
            results = await service.running().translate(req.channel, req.to, sources, contexts) if sources else []
        except ValueError as e:  # input the checks let through but the translator refuses (a value beyond float32)
            raise HTTPException(422, f"items: {e}") from None
        body = {"channel": req.channel, "to": req.to, "translator": tr.name,
                "results": [_result(it.id, r) for it, r in zip(req.items, results)]}  # fmt: skip
        return Response(json.dumps(body, ensure_ascii=False, allow_nan=False), media_type="application/json")


def _checked_items(tr: Translator, req: TranslateRequest) -> tuple[list[Any], list[list | None]]:
    """Each item's source and context, checked; 422 naming the first bad item."""
    sources, contexts = [], []
    field_name, other = ("message", "utterance") if req.to == "english" else ("utterance", "message")
    check = tr.check_message if req.to == "english" else tr.check_utterance
    for i, it in enumerate(req.items):
        value = getattr(it, field_name)
        try:
            if value is None:
                raise ValueError(f"missing {field_name!r} (a request to {req.to} translates {field_name}s)")
            if getattr(it, other) is not None:
                raise ValueError(f"unexpected {other!r} in a request to {req.to}")
            sources.append(check(value))
            contexts.append(None if it.context is None else tr.check_context(it.context))
        except ValueError as e:
            raise HTTPException(422, f"items[{i}].{e}" if str(e).startswith(field_name) or str(e).startswith("context")
                                else f"items[{i}]: {e}") from None
    return sources, contexts


def _result(rid: Any, r: Translation) -> dict[str, Any]:
    d = r.to_json()
    return {"id": rid, **d} if rid is not None else d


ENV_CONFIG = "NEURALESE_SERVICE"  # how `serve --workers N` hands its settings to the worker processes


def app_from_environment() -> FastAPI:
    """The app factory uvicorn's worker processes call (`serve` with `workers > 1`)."""
    config = json.loads(os.environ[ENV_CONFIG])
    threads = config.pop("threads", None)
    if threads:
        torch.set_num_threads(threads)
    return create_app(**config)


def _check_before_workers(run: str | Path, name: str, plays_db: str | Path | None, play_data: str | Path | None) -> None:
    """Check once, before the workers start, what would make each of them fail: uvicorn restarts a
    worker that dies at start, forever. Creating the plays database here also spares the workers
    from racing to create its tables."""
    _check_play_options(run, plays_db, play_data)
    if not games.holds_other_game(run):
        served_channels(run, name)
    if plays_db is not None:
        PlaysDB(plays_db).close()  # created, or refused when it is not a plays database
        load_play_rounds(play_data)


def serve(run: str | Path, host: str = "127.0.0.1", port: int = 8000, name: str = DEFAULT_NAME, max_batch: int = MAX_BATCH,
          max_body: int = MAX_BODY, batch_wait: float = BATCH_WAIT, log_level: str = "info", plays_db: str | Path | None = None,
          play_data: str | Path | None = None, workers: int = 1, threads: int | None = None) -> None:
    """Load the run's translators and serve until interrupted (loopback unless `host` says otherwise).

    `workers > 1`: that many processes (uvicorn's), each with its own translators and batcher,
    sharing the port: one core each on a busy service. The play page works with any number: its
    rounds' tokens and rows are in the SQLite file, which every process opens (plays_db.py), so a
    round dealt by one process can be answered through another, or after a restart.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > 1:
        _check_before_workers(run, name, plays_db, play_data)
        config = {"run": str(run), "max_batch": max_batch, "max_body": max_body, "batch_wait": batch_wait, "name": name, "threads": threads,
                  "plays_db": None if plays_db is None else str(plays_db), "play_data": None if play_data is None else str(play_data)}
        os.environ[ENV_CONFIG] = json.dumps(config)
        print(f"neuralese serve: {workers} workers; http://{host}:{port}/docs", flush=True)
        if plays_db is not None:
            print(f"neuralese serve: play page at http://{host}:{port}/play; rounds stored in {plays_db}", flush=True)
        uvicorn.run("translator.apps.service:app_from_environment", factory=True, workers=workers, host=host, port=port,
                    log_level=log_level, access_log=False)
        return
    start = time.perf_counter()
    app = create_app(run, max_batch=max_batch, max_body=max_body, batch_wait=batch_wait, name=name, plays_db=plays_db,
                     play_data=play_data)
    print(f"neuralese serve: loaded translators in {time.perf_counter() - start:.1f} s; http://{host}:{port}/docs", flush=True)
    if plays_db is not None:
        print(f"neuralese serve: play page at http://{host}:{port}/play; rounds stored in {plays_db}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
