"""``vp serve``: the local control plane — SQLite store, local launcher, HTTP API, console."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
from datetime import timedelta
from pathlib import Path

import structlog
import uvicorn

from scheduler.api import create_app
from scheduler.auth import Authenticator
from scheduler.local_launcher import LocalLauncher
from scheduler.ratelimit import RateLimiter
from scheduler.service import VpService
from scheduler.sqlite_store import SqliteStore

log = structlog.get_logger(__name__)


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
) -> int:
    """Run until SIGINT/SIGTERM; at shutdown running VPs leave their meetings cleanly and
    SCHEDULED ones stay in the store, re-armed at the next start."""
    out_root = out_root or db.parent / "vps"
    service = build_service(
        db,
        out_root,
        max_concurrent=max_concurrent,
        launches_per_minute=launches_per_minute,
        fingerprint_key=fingerprint_key_from(auth_secret),
    )
    app = create_app(service, Authenticator(auth_secret), out_root=out_root)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # query strings may carry stream tokens; RequestLog logs paths
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=3,  # open event streams must not hold shutdown forever
    )
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
