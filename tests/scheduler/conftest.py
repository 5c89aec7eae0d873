"""Fixtures for the control-plane tests: a real uvicorn server on a free port, tokens."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from scheduler.api import create_app
from scheduler.auth import STREAM_TOKEN_TTL, Authenticator, mint_token
from scheduler.hooks import HookService
from scheduler.serve import HEADER_TIMEOUT, uvicorn_config
from scheduler.service import VpService

SECRET = "test-secret-of-32-characters-0123"


def token(sub: str = "alice", *, admin: bool = False, secret: str = SECRET) -> str:
    return mint_token(secret, sub, admin=admin)


def bearer(sub: str = "alice", *, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, admin=admin)}"}


async def start_vp_serve(
    db: Path,
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
    stderr: int = asyncio.subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    """`vp serve` as a real process on ``port`` over ``db``, returned once /healthz answers.

    The auth secret goes in the environment (never in argv), with ``env`` on top; ``args``
    are more `vp serve` options."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vp.cli", "serve", "--port", str(port), "--db", str(db), *args,
        env={**os.environ, "VP_AUTH_SECRET": SECRET, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "vp serve exited early"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("vp serve did not come up")


@dataclass
class RunningServer:
    """A real uvicorn server running the API in this test's event loop."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    service: VpService

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, sub: str | None = "alice", *, admin: bool = False) -> httpx.AsyncClient:
        headers = bearer(sub, admin=admin) if sub else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 60)


async def start_server(
    service: VpService,
    out_root: Path | None = None,
    *,
    stream_ttl: int = STREAM_TOKEN_TTL,
    header_timeout: float = HEADER_TIMEOUT,
    hooks: HookService | None = None,
) -> RunningServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound here, so the port cannot be taken meanwhile
    port = sock.getsockname()[1]
    app = create_app(
        service, Authenticator(SECRET, stream_ttl=stream_ttl), out_root=out_root, hooks=hooks
    )
    # `vp serve`'s own configuration (connection limits, header timeout)
    config = uvicorn_config(app, header_timeout=header_timeout, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return RunningServer(server, task, port, service)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., object]]:
    """``await serve(service, out_root=None, **start_server options)`` → a started
    :class:`RunningServer`; all are stopped at the end of the test."""
    running: list[RunningServer] = []

    async def _serve(service: VpService, out_root: Path | None = None, **kw: Any) -> RunningServer:
        server = await start_server(service, out_root, **kw)
        running.append(server)
        return server

    yield _serve
    for server in running:
        if not server.task.done():
            await server.stop()
