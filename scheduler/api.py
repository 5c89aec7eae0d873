"""The local HTTP API of contract 4 (Starlette), its OpenAPI document and the web console.

Routes::

    POST   /v1/vps                    launch (201; Idempotency-Key header honoured)
    GET    /v1/vps                    the caller's VPs (an admin's: all)
    GET    /v1/vps/{vp_id}            one VP (404 when missing or another owner's)
    DELETE /v1/vps/{vp_id}            cancel a scheduled VP / stop a running one
    POST   /v1/stream-token           a short-lived token for the two event streams
    GET    /v1/events?token=          server-sent events: snapshot, then every VP change
    GET    /v1/vps/{vp_id}/transcript?token=   server-sent events: transcript and chat lines
    GET    /openapi.json, /healthz, /  (the console), /console/*

Errors are JSON ``{"error": code, "message": str, "fields": [{"field", "message"}]}``;
every validation error names its field. Bodies are capped (:data:`BODY_LIMIT`), must be
``application/json`` objects, and are never echoed back (they may hold a passcode).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.auth import Authenticator
from scheduler.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
)
from scheduler.models import VP_ID_PATTERN, LaunchRequest, VpRecord
from scheduler.service import Caller, VpService

log = structlog.get_logger(__name__)
BODY_LIMIT = 16 * 1024
KEEPALIVE_SECONDS = 15.0
TAIL_INTERVAL = 0.25
TAIL_CHUNK = 64 * 1024
CONSOLE_DIR = Path(__file__).with_name("console")
_VP_ID = re.compile(VP_ID_PATTERN)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """An error response: HTTP status, code, message, optional field errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return JSONResponse(body, self.status, headers={**SECURITY_HEADERS, **self.headers})


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    # Only location and message: pydantic's "input" could be a passcode.
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status, headers={**SECURITY_HEADERS, **(headers or {})})


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in json.dumps(data).splitlines())
    return ("\n".join(lines) + "\n\n").encode()


class RequestLog:
    """ASGI middleware: one structlog line per request, path only (query strings may carry
    a stream token)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )


class Api:
    """The handlers, bound to one service and one authenticator."""

    def __init__(
        self,
        service: VpService,
        auth: Authenticator,
        *,
        out_root: Path | None = None,
        body_limit: int = BODY_LIMIT,
    ) -> None:
        self.service = service
        self.auth = auth
        self.out_root = out_root
        self.body_limit = body_limit

    # -- helpers ---------------------------------------------------------------------------
    def caller(self, request: Request) -> Caller:
        return self.auth.caller_from_header(request.headers.get("authorization"))

    def stream_caller(self, request: Request) -> tuple[Caller, float]:
        """The caller of an event stream and when its stream token expires."""
        return self.auth.stream_session(request.query_params.get("token"))

    @staticmethod
    def vp_id(request: Request) -> str:
        vp_id = str(request.path_params["vp_id"])
        if not _VP_ID.match(vp_id):
            raise NotFound(f"no VP {vp_id[:64]!r}")
        return vp_id

    async def read_json_object(self, request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.body_limit):
            raise ApiError(413, "body-too-large", f"the body exceeds {self.body_limit} bytes")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise ApiError(415, "unsupported-media-type", "the body must be application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.body_limit:
                raise ApiError(413, "body-too-large", f"the body exceeds {self.body_limit} bytes")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ApiError(
                400,
                "malformed-body",
                "the body is not valid UTF-8 JSON",
                [{"field": "body", "message": "not valid JSON"}],
            ) from None
        if not isinstance(data, dict):
            raise ApiError(
                422,
                "invalid-request",
                "the body must be a JSON object",
                [{"field": "body", "message": "must be a JSON object"}],
            )
        return data

    # -- handlers --------------------------------------------------------------------------
    async def launch(self, request: Request) -> Response:
        caller = self.caller(request)
        data = await self.read_json_object(request)
        try:
            launch = LaunchRequest.model_validate(data)
        except ValidationError as exc:
            fields = _field_errors(exc)
            raise ApiError(422, "invalid-request", "the request is invalid", fields) from None
        key = request.headers.get("idempotency-key")
        result = await self.service.launch(caller, launch, idempotency_key=key)
        headers = {"Location": f"/v1/vps/{result.record.vp_id}"}
        if not result.created:
            headers["Idempotent-Replayed"] = "true"
        return _json(result.record.public(), 201, headers)

    async def vps(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.launch(request)
        return await self.list_vps(request)

    async def vp(self, request: Request) -> Response:
        if request.method == "DELETE":
            return await self.cancel_vp(request)
        return await self.get_vp(request)

    async def list_vps(self, request: Request) -> Response:
        caller = self.caller(request)
        records = await self.service.list(caller)
        return _json({"vps": [r.public() for r in records]})

    async def get_vp(self, request: Request) -> Response:
        caller = self.caller(request)
        record = await self.service.get(caller, self.vp_id(request))
        return _json(record.public())

    async def cancel_vp(self, request: Request) -> Response:
        caller = self.caller(request)
        record = await self.service.cancel(caller, self.vp_id(request))
        return _json(record.public())

    async def stream_token(self, request: Request) -> Response:
        caller = self.caller(request)
        token = self.auth.issue_stream_token(caller)
        return _json({"token": token, "expires_in": self.auth.stream_ttl})

    async def events(self, request: Request) -> Response:
        caller, expires_at = self.stream_caller(request)
        return StreamingResponse(
            self._events(caller, expires_at),
            media_type="text/event-stream",
            headers=SECURITY_HEADERS,
        )

    async def _events(self, caller: Caller, expires_at: float) -> AsyncIterator[bytes]:
        with self.service.subscribe(caller) as sub:
            records = await self.service.list(caller)
            yield b"retry: 2000\n\n"
            yield _sse("snapshot", {"vps": [r.public() for r in records]})
            while True:
                left = expires_at - time.time()
                if left <= 0:
                    yield _sse("expired", {})
                    return
                record = await sub.next(min(KEEPALIVE_SECONDS, left))
                if record is None:
                    yield b": keep-alive\n\n"
                elif sub.take_lag():
                    records = await self.service.list(caller)
                    yield _sse("snapshot", {"vps": [r.public() for r in records]})
                else:
                    yield _sse("vp", record.public())

    async def transcript(self, request: Request) -> Response:
        caller, expires_at = self.stream_caller(request)
        vp_id = self.vp_id(request)
        record = await self.service.get(caller, vp_id)
        if self.out_root is None:
            raise NotFound("this control plane keeps no transcripts")
        # EventSource resends Last-Event-ID on its own reconnects; a new EventSource (a fresh
        # stream token) cannot set headers, so it passes the same value as ?after=.
        resume = request.headers.get("last-event-id") or request.query_params.get("after")
        offsets = _parse_offsets(resume)
        return StreamingResponse(
            self._tail(caller, record, self.out_root / vp_id, offsets, expires_at),
            media_type="text/event-stream",
            headers=SECURITY_HEADERS,
        )

    async def _tail(
        self,
        caller: Caller,
        record: VpRecord,
        folder: Path,
        offsets: list[int],
        expires_at: float,
    ) -> AsyncIterator[bytes]:
        """Follow transcript.jsonl and chat.jsonl (server-side polling of two local files
        every TAIL_INTERVAL); end with an ``end`` event once the VP is over and read, or with
        ``expired`` when the stream token expires (resume with a new one and ``after``)."""
        files = [("segment", folder / "transcript.jsonl"), ("chat", folder / "chat.jsonl")]
        with self.service.hub.subscribe(lambda r: r.vp_id == record.vp_id) as sub:
            yield b"retry: 2000\n\n"
            ended = record.terminal
            idle = 0.0
            while True:
                sent = False
                for index, (event, path) in enumerate(files):
                    lines, new_offset = await asyncio.to_thread(_read_lines, path, offsets[index])
                    for line, after in lines:
                        offsets[index] = after  # the event id resumes after this line
                        try:
                            item = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        sent = True
                        yield _sse(event, item, f"{offsets[0]}.{offsets[1]}")
                    offsets[index] = new_offset
                if ended and not sent:
                    final = await self.service.get(caller, record.vp_id)
                    yield _sse("end", final.public())
                    return
                if time.time() >= expires_at:
                    yield _sse("expired", {})
                    return
                if sent:
                    idle = 0.0
                    continue  # catching up: read on without waiting
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keep-alive\n\n"
                changed = await sub.next(TAIL_INTERVAL)
                idle += TAIL_INTERVAL
                if changed is not None and changed.terminal:
                    ended = True  # read what is left, then end

    async def health(self, _request: Request) -> Response:
        return _json({"ok": True})

    async def openapi(self, _request: Request) -> Response:
        return _json(openapi_document())

    async def console(self, _request: Request) -> Response:
        return FileResponse(
            CONSOLE_DIR / "index.html",
            headers={**SECURITY_HEADERS, "Content-Security-Policy": CONSOLE_CSP},
        )


def _parse_offsets(value: str | None) -> list[int]:
    if value:
        parts = value.split(".")
        if len(parts) == 2 and all(p.isdigit() and len(p) < 16 for p in parts):
            return [int(parts[0]), int(parts[1])]
    return [0, 0]


def _read_lines(path: Path, offset: int) -> tuple[list[tuple[str, int]], int]:
    """Complete lines of ``path`` from byte ``offset`` (at most TAIL_CHUNK bytes), each with
    the offset just after it, and the new offset. A partial last line waits for the next
    read; a single line longer than TAIL_CHUNK is skipped (its tail then fails to parse)."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            chunk = file.read(TAIL_CHUNK)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset + (len(chunk) if len(chunk) == TAIL_CHUNK else 0)
    lines: list[tuple[str, int]] = []
    position = offset
    for raw in chunk[: end + 1].splitlines(keepends=True):
        position += len(raw)
        if raw.strip():
            lines.append((raw.decode("utf-8", "replace"), position))
    return lines, offset + end + 1


def _error_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def unauthorized(_request: Request, exc: Exception) -> Response:
        return ApiError(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"}
        ).response()

    async def not_found(_request: Request, exc: Exception) -> Response:
        return ApiError(404, "not-found", str(exc)).response()

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidRequest)
        fields = [{"field": exc.field, "message": exc.message}]
        return ApiError(422, "invalid-request", str(exc), fields).response()

    async def reused(_request: Request, exc: Exception) -> Response:
        fields = [{"field": "Idempotency-Key", "message": str(exc)}]
        return ApiError(409, "idempotency-key-reused", str(exc), fields).response()

    async def limited(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        headers = {"Retry-After": str(int(exc.retry_after + 0.999))}
        return ApiError(429, "rate-limited", str(exc), headers=headers).response()

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        headers = dict(exc.headers or {})
        return ApiError(exc.status_code, code, str(exc.detail), headers=headers).response()

    return {
        ApiError: api_error,
        Unauthorized: unauthorized,
        NotFound: not_found,
        InvalidRequest: invalid,
        IdempotencyKeyReused: reused,
        RateLimited: limited,
        HTTPException: http_error,
    }


def create_app(
    service: VpService,
    auth: Authenticator,
    *,
    out_root: Path | None = None,
    body_limit: int = BODY_LIMIT,
    manage_service: bool = True,
) -> Starlette:
    """The ASGI app. With ``manage_service`` its lifespan starts and closes the service
    (the launcher re-arms pending VPs at start and stops running ones at shutdown)."""
    api = Api(service, auth, out_root=out_root, body_limit=body_limit)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_service:
            await service.start()
        try:
            yield
        finally:
            if manage_service:
                await service.aclose()

    routes = [
        Route("/", api.console, methods=["GET"]),
        Route("/healthz", api.health, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        # One route per path (several methods), so a 405's Allow header lists them all.
        Route("/v1/vps", api.vps, methods=["GET", "POST"]),
        Route("/v1/vps/{vp_id}", api.vp, methods=["GET", "DELETE"]),
        Route("/v1/vps/{vp_id}/transcript", api.transcript, methods=["GET"]),
        Route("/v1/stream-token", api.stream_token, methods=["POST"]),
        Route("/v1/events", api.events, methods=["GET"]),
        Mount("/console", app=StaticFiles(directory=CONSOLE_DIR), name="console"),
    ]
    app = Starlette(routes=routes, exception_handlers=_error_handlers(), lifespan=lifespan)
    app.add_middleware(RequestLog)
    return app


# -- OpenAPI -------------------------------------------------------------------------------
def _schemas() -> dict[str, Any]:
    ref = "#/components/schemas/{model}"
    schemas: dict[str, Any] = {}
    for model in (LaunchRequest, VpRecord):
        schema = model.model_json_schema(ref_template=ref)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["VpList"] = {
        "type": "object",
        "required": ["vps"],
        "properties": {"vps": {"type": "array", "items": {"$ref": ref.format(model="VpRecord")}}},
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
    schemas["StreamToken"] = {
        "type": "object",
        "required": ["token", "expires_in"],
        "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}},
    }
    return schemas


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_VP_ID_PARAM = {
    "name": "vp_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_TOKEN_PARAM = {
    "name": "token",
    "in": "query",
    "required": True,
    "description": "a stream token from POST /v1/stream-token",
    "schema": {"type": "string"},
}
_AFTER_PARAM = {
    "name": "after",
    "in": "query",
    "required": False,
    "description": "resume after this event id (what Last-Event-ID would carry)",
    "schema": {"type": "string", "pattern": "^[0-9]{1,15}[.][0-9]{1,15}$"},
}
_SSE = {
    "description": "server-sent events; an `expired` event ends the stream when its token "
    "expires (open it again with a new token)",
    "content": {"text/event-stream": {}},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API (served at /openapi.json)."""
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    common = {"401": _error("missing or invalid bearer token")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "vp control plane", "version": "1"},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "paths": {
            "/v1/vps": {
                "post": {
                    "operationId": "launchVp",
                    "summary": "Launch (or schedule) a virtual participant",
                    "security": bearer,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 128},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/LaunchRequest"}
                            }
                        },
                    },
                    "responses": {
                        "201": _ok("created (or an idempotent replay)", "VpRecord"),
                        "400": _error("malformed body"),
                        **common,
                        "409": _error("Idempotency-Key reused for another request"),
                        "413": _error("body too large"),
                        "415": _error("not application/json"),
                        "422": _error("invalid request; fields name the problems"),
                        "429": _error("too many launches"),
                    },
                },
                "get": {
                    "operationId": "listVps",
                    "summary": "The caller's VPs (an admin's: all)",
                    "security": bearer,
                    "responses": {"200": _ok("the VPs, newest first", "VpList"), **common},
                },
            },
            "/v1/vps/{vp_id}": {
                "parameters": [_VP_ID_PARAM],
                "get": {
                    "operationId": "getVp",
                    "security": bearer,
                    "responses": {
                        "200": _ok("the VP", "VpRecord"),
                        **common,
                        "404": _error("no such VP"),
                    },
                },
                "delete": {
                    "operationId": "cancelVp",
                    "summary": "Cancel a scheduled VP or stop a running one",
                    "security": bearer,
                    "responses": {
                        "200": _ok("the VP after the cancel request", "VpRecord"),
                        **common,
                        "404": _error("no such VP"),
                    },
                },
            },
            "/v1/vps/{vp_id}/transcript": {
                "get": {
                    "operationId": "streamTranscript",
                    "summary": "Live transcript and chat lines of a VP (server-sent events)",
                    "parameters": [_VP_ID_PARAM, _TOKEN_PARAM, _AFTER_PARAM],
                    "responses": {
                        "200": _SSE,
                        "401": _error("missing or invalid stream token"),
                        "404": _error("no such VP"),
                    },
                }
            },
            "/v1/stream-token": {
                "post": {
                    "operationId": "streamToken",
                    "summary": "A short-lived token for the event streams",
                    "security": bearer,
                    "responses": {"200": _ok("the token", "StreamToken"), **common},
                }
            },
            "/v1/events": {
                "get": {
                    "operationId": "streamEvents",
                    "summary": "Snapshot, then every change of the caller's VPs",
                    "parameters": [_TOKEN_PARAM],
                    "responses": {"200": _SSE, "401": _error("missing or invalid stream token")},
                }
            },
        },
    }
