"""The control plane on AWS: ``handler`` for API Gateway HTTP API (payload 2.0) events.

``reaper_handler`` (scheduled) ends VPs whose Step Functions execution is over while they
are not (a cancelled VP's task killed before it recorded its end).

Routes (contract 4): ``POST /v1/vps``, ``GET /v1/vps``, ``GET /v1/vps/{id}``,
``DELETE /v1/vps/{id}``. The event is served by the *same* ASGI app as ``vp serve``
(:func:`scheduler.api.create_app`) over the same service layer, so status codes, validation
and error bodies are identical; only the stores and launchers differ (DynamoDB, Step
Functions) and who the caller is comes from the Cognito JWT authorizer, which has verified the
token already: ``requestContext.authorizer.jwt.claims`` (``sub`` = owner, ``cognito:groups``
containing ``admin`` = admin). No claims → 401, as a missing token locally.

Environment: ``VP_TABLE_NAME``, ``STATE_MACHINE_ARN``, ``VP_PASSCODE_KMS_KEY_ID``; optionally
``VP_TABLE_OWNER_INDEX``, ``VP_RECORD_TTL_DAYS``, ``VP_ALLOWED_HOSTS``. The service is built
once per Lambda container and reused across invocations.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import os
import re
import secrets
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message

from scheduler.api import ApiError, create_app
from scheduler.auth import Authenticator, caller_from_claims
from scheduler.aws_launcher import AwsLauncher
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.errors import Unauthorized
from scheduler.service import Caller, VpService
from vp import log as vplog

log = structlog.get_logger(__name__)

# Only the contract's four routes are served here (the event streams of `vp serve` need a
# long-lived connection, which API Gateway + Lambda do not give).
_ROUTES = re.compile(r"^/v1/vps(/[^/]+)?$")
_claims: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "vp_claims", default=None
)


class ClaimsAuthenticator(Authenticator):
    """Callers from the claims API Gateway's JWT authorizer verified for this request."""

    def __init__(self) -> None:
        # Stream tokens are not served on AWS; a random secret makes any such token invalid.
        super().__init__(secrets.token_urlsafe(32))

    def caller_from_header(self, header: str | None) -> Caller:
        claims = _claims.get()
        if not claims:
            raise Unauthorized("no verified JWT claims (is the authorizer attached?)")
        return caller_from_claims(claims)


class LambdaApp:
    """The service and ASGI app of one Lambda container."""

    def __init__(self, service: VpService) -> None:
        self.service = service
        self.app: ASGIApp = create_app(service, ClaimsAuthenticator(), manage_service=False)
        self._started = False

    @classmethod
    def from_env(cls) -> LambdaApp:
        from scheduler.dynamodb_limits import DynamoDbLaunchLimiter

        return cls(
            VpService(
                DynamoDbStore.from_env(),
                AwsLauncher.from_env(),
                rate_limiter=DynamoDbLaunchLimiter.from_env(),  # per owner, across containers
            )
        )

    async def _start(self) -> None:
        if not self._started:
            await self.service.start()
            self._started = True

    async def reap(self) -> dict[str, Any]:
        await self._start()
        launcher = self.service.launcher
        assert isinstance(launcher, AwsLauncher)
        reaped = await launcher.reap()
        return {"reaped": [{"vp_id": r.vp_id, "status": r.status.value} for r in reaped]}

    async def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        await self._start()
        path = _path(event)
        if not _ROUTES.match(path):
            return _response_from_error(ApiError(404, "not-found", f"no route {path[:100]}"))
        token = _claims.set(_jwt_claims(event))
        try:
            return await _call_asgi(self.app, event, path)
        finally:
            _claims.reset(token)


def _jwt_claims(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, Mapping) else None


def _path(event: Mapping[str, Any]) -> str:
    context = event.get("requestContext") or {}
    path = str(event.get("rawPath") or (context.get("http") or {}).get("path") or "/")
    stage = context.get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]  # a named stage prefixes the path
    return path


def _response_from_error(error: ApiError) -> dict[str, Any]:
    response = error.response()
    return {
        "statusCode": response.status_code,
        "headers": {k: v for k, v in response.headers.items() if k != "content-length"},
        "body": bytes(response.body).decode(),
        "isBase64Encoded": False,
    }


async def _call_asgi(app: ASGIApp, event: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Serve one payload-2.0 event with the ASGI ``app``; the Lambda proxy response."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "GET").upper()
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode()
    headers = [
        (str(k).lower().encode("latin-1"), str(v).encode("latin-1"))
        for k, v in (event.get("headers") or {}).items()
    ]
    if event.get("cookies"):
        headers.append((b"cookie", "; ".join(event["cookies"]).encode("latin-1")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": str(event.get("rawQueryString") or "").encode("latin-1"),
        "headers": headers,
        "client": (str(http.get("sourceIp") or "0.0.0.0"), 0),
        "server": ("lambda", 443),
    }
    sent_body = False
    status = 500
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if sent_body:
            return {"type": "http.disconnect"}
        sent_body = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", []):
                name = key.decode("latin-1").lower()
                text = value.decode("latin-1")
                response_headers[name] = (
                    f"{response_headers[name]}, {text}" if name in response_headers else text
                )
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    try:
        await app(scope, receive, send)
    except Exception as exc:  # Starlette has sent its 500 (if it got that far) and re-raised
        log.error("lambda.unhandled", error=type(exc).__name__)
        if not chunks:
            return _response_from_error(ApiError(500, "internal-error", "internal error"))
    response_headers.pop("content-length", None)
    payload = b"".join(chunks)
    try:
        text, encoded = payload.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(payload).decode(), True
    return {
        "statusCode": status,
        "headers": response_headers,
        "body": text,
        "isBase64Encoded": encoded,
    }


_APP: LambdaApp | None = None


def _app() -> LambdaApp:
    global _APP
    if _APP is None:
        vplog.configure(os.environ.get("VP_LOG_LEVEL", "INFO"))
        _APP = LambdaApp.from_env()
    return _APP


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The API entry point (``scheduler.aws_lambda.handler``)."""
    return asyncio.run(_app().handle(event))


def reaper_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The reaper entry point (``scheduler.aws_lambda.reaper_handler``), for a schedule such
    as EventBridge ``rate(5 minutes)``: ends VPs whose execution is over (see
    :meth:`scheduler.aws_launcher.AwsLauncher.reap`). Same environment as :func:`handler`."""
    return asyncio.run(_app().reap())
