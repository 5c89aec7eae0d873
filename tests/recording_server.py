"""A real LMA-protocol WebSocket server for tests: records everything it receives.

It can drop a connection mid-stream (after N audio frames, like a server restart) to test
reconnects, and require a bearer token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


@dataclass
class Connection:
    headers: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "START", "audio", "SPEAKER_CHANGE", "END"


class RecordingServer:
    def __init__(
        self,
        token: str | None = None,
        drop_after_frames: int | None = None,
        echo: Callable[[dict[str, Any], Connection], list[dict[str, Any]]] | None = None,
    ) -> None:
        """``echo``: called with each call event received (and its connection); what it
        returns is sent back (e.g. ADD_TRANSCRIPT_SEGMENT frames, as a transcriber would)."""
        self.token = token
        self.echo = echo
        self.drop_after_frames = drop_after_frames
        self.connections: list[Connection] = []
        self.rejected = 0
        self._server: Server | None = None
        self.ended = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/api/v1/ws"

    def _check_auth(self, _conn: ServerConnection, request: Request) -> Response | None:
        if self.token is None:
            return None
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.rejected += 1
            return Response(401, "Unauthorized", Headers(), b"unauthorized\n")
        return None

    async def start(self) -> RecordingServer:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check_auth, compression=None
        )
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(headers=dict(ws.request.headers) if ws.request else {})
        self.connections.append(conn)
        async for message in ws:
            if isinstance(message, bytes):
                conn.frames.append(message)
                conn.frame_times.append(time.monotonic())
                conn.order.append("audio")
                if (
                    self.drop_after_frames is not None
                    and len(conn.frames) >= self.drop_after_frames
                ):
                    self.drop_after_frames = None  # drop once
                    await ws.close(1011, "simulated server restart")
                    return
            else:
                event = json.loads(message)
                conn.events.append(event)
                for reply in self.echo(event, conn) if self.echo is not None else ():
                    await ws.send(json.dumps(reply))
                conn.order.append(event["callEvent"])
                if event["callEvent"] == "END":
                    self.ended.set()

    # -- views across connections ----------------------------------------------------
    @property
    def all_frames(self) -> list[bytes]:
        return [f for c in self.connections for f in c.frames]

    @property
    def audio_bytes(self) -> bytes:
        return b"".join(self.all_frames)

    @property
    def all_events(self) -> list[dict[str, Any]]:
        return [e for c in self.connections for e in c.events]
