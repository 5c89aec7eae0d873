"""A whole local meeting on loopback: Janus, its demo site and a room, as one unit.

Used by ``vp demo``, the integration tests and the benchmarks, so all three exercise the
same real WebRTC path.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from vp.localmeeting.janus import JanusServer
from vp.localmeeting.site import DemoSite


class LocalMeeting:
    """``async with LocalMeeting(workdir) as m:`` → a fresh AudioBridge room at ``m.url``."""

    def __init__(self, workdir: Path | None = None, room_id: int | None = None) -> None:
        self.janus = JanusServer(workdir, http_port=0, keep_workdir=workdir is not None)
        self.site: DemoSite | None = None
        self.room_id = room_id or random.randint(10_000, 99_999)

    @property
    def url(self) -> str:
        assert self.site is not None
        return self.site.room_url(self.room_id)

    @property
    def allowed_host(self) -> str:
        """The ``VP_ALLOWED_HOSTS`` entry a VP needs to open :attr:`url`."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}"

    async def start(self) -> LocalMeeting:
        await self.janus.start()
        try:
            self.site = DemoSite(self.janus.http_url)
            await self.site.start()
            await self.janus.client.create_room(self.room_id)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def participants(self) -> list[str]:
        return await self.janus.client.list_participants(self.room_id)

    async def end_meeting(self) -> None:
        """Destroy the room, as a host ending the meeting would."""
        await self.janus.client.destroy_room(self.room_id)

    async def aclose(self) -> None:
        if self.site is not None:
            await self.site.stop()
        await self.janus.stop()

    async def __aenter__(self) -> LocalMeeting:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
