"""The control plane on AWS: ``handler`` for API Gateway HTTP API (payload 2.0) events.

``reaper_handler`` (scheduled) ends VPs whose Step Functions execution is over while they
are not (a cancelled VP's task killed before it recorded its end).

Routes (contract 4): ``POST /v1/vps``, ``GET /v1/vps``, ``GET /v1/vps/{id}``,
``DELETE /v1/vps/{id}``, and ``GET /v1/vps/{id}/artifacts`` (presigned S3 URLs; bucket
``VP_ARTIFACT_BUCKET``). The event is served by the *same* ASGI app as ``vp serve``
(:func:`scheduler.api.create_app`) over the same service layer, so status codes, validation
and error bodies are identical; only the stores and launchers differ (DynamoDB, Step
Functions) and who the caller is comes from the Cognito JWT authorizer, which has verified the
token already: ``requestContext.authorizer.jwt.claims`` (``sub`` = owner, ``cognito:groups``
containing ``admin`` = admin). No claims → 401, as a missing token locally.

API Gateway events are turned into ASGI requests by Mangum; a thin ASGI wrapper
(:class:`LambdaApp`) serves only the contract's routes, strips a named stage from the path
and hands the authorizer's claims to :class:`ClaimsAuthenticator`.

Environment: ``VP_TABLE_NAME``, ``STATE_MACHINE_ARN``, ``VP_PASSCODE_KMS_KEY_ID``; optionally
``VP_TABLE_OWNER_INDEX``, ``VP_RECORD_TTL_DAYS``, ``VP_ALLOWED_HOSTS`` and
``VP_FINGERPRINT_KEY`` (the key of the idempotency fingerprints, ≥ 32 characters, e.g. from
Secrets Manager; without it the key is derived from the table and KMS key names, which keeps
replays working across containers but is no secret). The service is built once per Lambda
container and reused across invocations, on one event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from typing import Any

import structlog
from mangum import Mangum
from starlette.types import ASGIApp, Receive, Scope, Send

from scheduler.api import ApiError, create_app
from scheduler.artifacts import S3Artifacts
from scheduler.auth import Authenticator, caller_from_claims
from scheduler.aws_launcher import AwsLauncher
from scheduler.dynamodb_store import DynamoDbStore
from scheduler.errors import Unauthorized
from scheduler.service import Caller, VpService
from vp import log as vplog

log = structlog.get_logger(__name__)

# Only the contract's four routes are served here (the event streams of `vp serve` need a
# long-lived connection, which API Gateway + Lambda do not give).
_ROUTES = re.compile(r"^/v1/vps(/[^/]+(/artifacts)?)?$")
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
    """The service and ASGI app of one Lambda container. As an ASGI app (what Mangum calls)
    it starts the service once, serves only the contract's routes and passes the
    authorizer's claims (``scope["aws.event"]``) to the authenticator."""

    def __init__(self, service: VpService, artifacts: S3Artifacts | None = None) -> None:
        self.service = service
        self.app: ASGIApp = create_app(
            service, ClaimsAuthenticator(), artifacts=artifacts, manage_service=False
        )
        self._started = False
        self.loop = asyncio.new_event_loop()
        self.adapter = Mangum(self, lifespan="off")

    @classmethod
    def from_env(cls) -> LambdaApp:
        from scheduler.dynamodb_limits import DynamoDbLaunchLimiter

        return cls(
            VpService(
                DynamoDbStore.from_env(),
                AwsLauncher.from_env(),
                rate_limiter=DynamoDbLaunchLimiter.from_env(),  # per owner, across containers
                fingerprint_key=_fingerprint_key(),
            ),
            S3Artifacts.from_env(),  # VP_ARTIFACT_BUCKET
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

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on this container's loop (the service's loop across invocations)."""
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(coro)

    def handle(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """One API Gateway event → its Lambda proxy response (through Mangum)."""
        asyncio.set_event_loop(self.loop)  # Mangum runs on the current loop
        response: dict[str, Any] = self.adapter(dict(event), context)
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await self._start()
        event: Mapping[str, Any] = scope.get("aws.event") or {}
        path = _path(event, scope["path"])
        if not _ROUTES.match(path):
            error = ApiError(404, "not-found", f"no route {path[:100]}")
            await error.response()(scope, receive, send)
            return
        token = _claims.set(_jwt_claims(event))
        try:
            await self.app({**scope, "path": path, "raw_path": path.encode()}, receive, send)
        finally:
            _claims.reset(token)


def _fingerprint_key() -> bytes:
    configured = os.environ.get("VP_FINGERPRINT_KEY", "")
    if len(configured) >= 32:
        return configured.encode()
    names = f"{os.environ.get('VP_TABLE_NAME', '')}|{os.environ.get('VP_PASSCODE_KMS_KEY_ID', '')}"
    return hashlib.sha256(b"vp idempotency fingerprint|" + names.encode()).digest()


def _jwt_claims(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, Mapping) else None


def _path(event: Mapping[str, Any], path: str) -> str:
    stage = (event.get("requestContext") or {}).get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]  # a named stage prefixes the path
    return path


_APP: LambdaApp | None = None


def _app() -> LambdaApp:
    global _APP
    if _APP is None:
        vplog.configure(os.environ.get("VP_LOG_LEVEL", "INFO"))
        _APP = LambdaApp.from_env()
    return _APP


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The API entry point (``scheduler.aws_lambda.handler``)."""
    return _app().handle(event, context)


def reaper_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The reaper entry point (``scheduler.aws_lambda.reaper_handler``), for a schedule such
    as EventBridge ``rate(5 minutes)``: ends VPs whose execution is over (see
    :meth:`scheduler.aws_launcher.AwsLauncher.reap`). Same environment as :func:`handler`."""
    result: dict[str, Any] = _app().run(_app().reap())
    return result
