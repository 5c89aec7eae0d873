"""``vp serve``: the local control plane — SQLite store, local launcher, HTTP API, console."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
from datetime import timedelta
from pathlib import Path

import h11
import structlog
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from scheduler.api import create_app
from scheduler.auth import Authenticator
from scheduler.hook_store import HookStore
from scheduler.hooks import HookService, HookSettings
from scheduler.local_launcher import LocalLauncher
from scheduler.ratelimit import RateLimiter
from scheduler.service import VpService
from scheduler.sqlite_store import SqliteStore

log = structlog.get_logger(__name__)

# Connection limits of `vp serve` (issue 13): a client gets HEADER_TIMEOUT seconds from
# connecting (or from the first byte of a next request) to send complete request headers,
# an idle keep-alive connection is closed after IDLE_TIMEOUT, and at most MAX_CONNECTIONS
# connections/requests are served at once (more get 503). Half-open and slow-header
# connections therefore cannot pile up, and the event loop keeps answering the rest.
HEADER_TIMEOUT = 10.0
IDLE_TIMEOUT = 5
MAX_CONNECTIONS = 1000
MAX_HEADER_BYTES = 32 * 1024


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for request headers (uvicorn has none: a
    connection that sends nothing, or headers a byte at a time, is otherwise held forever).
    """

    header_timeout = HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._disarm_header_timer()  # a request's headers are complete
        elif cycle is None or cycle.response_complete:
            self._arm_header_timer()  # bytes of a next request: its headers are on the clock

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse (a malformed header, a bad Transfer-Encoding) gets the
        API's JSON error envelope too, not uvicorn's text/plain line."""
        body = json.dumps({"error": "bad-request", "message": msg, "fields": []}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: not ours to cut
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    header_timeout: float = HEADER_TIMEOUT,
    **overrides: object,
) -> uvicorn.Config:
    """The uvicorn configuration of `vp serve` (also what the tests run)."""
    protocol = type("HeaderTimeout", (HeaderTimeoutProtocol,), {"header_timeout": header_timeout})
    settings: dict[str, object] = {
        "host": host,
        "port": port,
        "http": protocol,
        "access_log": False,  # query strings may carry stream tokens; RequestLog logs paths
        "log_config": None,
        "lifespan": "on",
        "timeout_graceful_shutdown": 3,  # open event streams must not hold shutdown forever
        "timeout_keep_alive": IDLE_TIMEOUT,
        "limit_concurrency": MAX_CONNECTIONS,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "backlog": 2048,
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)  # type: ignore[arg-type]


def build_service(
    db: Path,
    out_root: Path,
    *,
    max_concurrent: int = 2,
    launches_per_minute: int = 10,
    launch_grace: timedelta = timedelta(minutes=5),
    extra_args: tuple[str, ...] = (),
    fingerprint_key: bytes | None = None,
) -> VpService:
    """The local service: SQLite at ``db``, VP output under ``out_root``."""
    launcher = LocalLauncher(
        out_root,
        max_concurrent=max_concurrent,
        launch_grace=launch_grace,
        extra_args=extra_args,
    )
    return VpService(
        SqliteStore(db),
        launcher,
        rate_limiter=RateLimiter(launches_per_minute, 60.0),
        fingerprint_key=fingerprint_key,
    )


def build_hooks(
    service: VpService, db: Path, out_root: Path, settings: HookSettings | None = None
) -> HookService:
    """Webhooks and calendars (contract 5) of the local service: same SQLite file."""
    return HookService(HookStore(db), service, out_root=out_root, settings=settings)


def fingerprint_key_from(auth_secret: str) -> bytes:
    """The idempotency fingerprint key of ``vp serve``: derived from the auth secret, so it
    survives restarts (a retry after one is still a replay) and is never stored."""
    return hmac.new(auth_secret.encode(), b"vp idempotency fingerprint", hashlib.sha256).digest()


def serve(
    host: str,
    port: int,
    db: Path,
    auth_secret: str,
    *,
    out_root: Path | None = None,
    max_concurrent: int = 2,
    launches_per_minute: int = 10,
    webhook_retry_hours: float = 24.0,
    calendar_poll: float = 300.0,
) -> int:
    """Run until SIGINT/SIGTERM; at shutdown running VPs leave their meetings cleanly and
    SCHEDULED ones stay in the store, re-armed at the next start; pending webhook
    deliveries stay in the outbox (same file) and go out after the next start."""
    out_root = out_root or db.parent / "vps"
    service = build_service(
        db,
        out_root,
        max_concurrent=max_concurrent,
        launches_per_minute=launches_per_minute,
        fingerprint_key=fingerprint_key_from(auth_secret),
    )
    hooks = build_hooks(
        service,
        db,
        out_root,
        HookSettings(retry_hours=webhook_retry_hours, calendar_poll=calendar_poll),
    )
    app = create_app(service, Authenticator(auth_secret), out_root=out_root, hooks=hooks)
    config = uvicorn_config(app, host=host, port=port)
    log.info("serve.start", url=f"http://{host}:{port}/", db=str(db), out=str(out_root))
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal for the
    # previous handler: ours turns that into a normal exit (code 0) instead of a kill.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(uvicorn.Server(config).serve())
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("serve.stopped")
    return 0


class _Stopped(Exception):
    pass


def _stopped(_signum: int, _frame: object) -> None:
    raise _Stopped
