"""Janus AudioBridge demo page (Debian ``janus-demos``: ``audiobridgetest.html?room=N``).

Our first platform, and the one real WebRTC server tests can run. The demo page: click
``#start`` (creates the Janus session), type an alphanumeric display name into ``#username``,
click ``#register``; once in the room ``#room`` shows, ``#participant`` holds our name and
``#list`` the others. Destroying the room pops a bootbox dialog "The room has been
destroyed". Decisions: :mod:`platforms.janus.decisions`; page reads: ``page.js``.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import SplitResult

from playwright.async_api import Error as PlaywrightError

from platforms.base import JoinState, PolledDriver
from platforms.janus import decisions
from platforms.janus.decisions import NO_ROOM, JanusSnapshot
from vp.incoming_video import IncomingVideo

DEMO_PAGE = "audiobridgetest.html"

# Debian's settings.js lacks globals the demo reads; define them before any page script.
SETTINGS_SHIM = """
(() => {
  for (const name of ["token", "apisecret"]) {
    if (!(name in window)) window[name] = null;
  }
  if (!("iceServers" in window)) window.iceServers = null;
})();
"""


class JanusDriver(PolledDriver[JanusSnapshot, JanusSnapshot], decisions=decisions):
    name: ClassVar[str] = "janus"
    # An AudioBridge room carries no video: nothing to suppress.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NONE
    join_poll_s: ClassVar[float] = 0.2
    join_on_change: ClassVar[bool] = True  # Start and Register are each clicked once
    end_polls: ClassVar[int] = 1  # the demo's dialogs and page changes are never transient
    gone_polls: ClassVar[int] = 1
    alone_at_start: ClassVar[bool] = True

    _started = False
    _registered = False

    @classmethod
    def claims(cls, parts: SplitResult) -> bool:
        return parts.path.rstrip("/").endswith(DEMO_PAGE)

    @classmethod
    def display_name(cls, name: str) -> str:
        # The demo rejects anything but [A-Za-z0-9].
        cleaned = re.sub(r"[^A-Za-z0-9]", "", name)
        return cleaned[:64] or "VirtualParticipant"

    async def read_join(self) -> JanusSnapshot | None:
        snap: JanusSnapshot | None = await self.call("snapshot")
        return snap

    async def read_meeting(self) -> JanusSnapshot:
        snap: JanusSnapshot | None = await self.call("snapshot")
        return snap or NO_ROOM

    # -- join -----------------------------------------------------------------------------
    async def open(self, url: str) -> None:
        await self.page.add_init_script(SETTINGS_SHIM)
        await self.page.goto(url, wait_until="domcontentloaded")

    def join_state(self, snap: JanusSnapshot) -> JoinState:
        return decisions.join_state(snap, registered=self._registered)

    async def prejoin_step(self, snap: JanusSnapshot) -> float | None:
        page = self.page
        if snap["username"] and not self._registered:
            await page.locator("#username").fill(self.me)
            await page.locator("#register").click()
            self._registered = True
        elif snap["start"] == "Start" and not self._started:
            await page.locator("#start").click()  # creates the Janus session
            self._started = True
        return None

    async def settle_in(self) -> None:
        # Joined muted: the demo publishes unmuted; the VP unmutes only while it speaks.
        await self.set_microphone(False)

    # -- microphone -----------------------------------------------------------------------
    async def set_microphone(self, on: bool) -> bool:
        """The demo's ``#toggleaudio``, which sends AudioBridge ``configure muted`` (page.js
        ``microphone``). It shows once the room's audio is set up: at admission, normally."""
        done = await self.call("microphone", on)
        if done == "hidden":
            try:
                await self.page.locator("#toggleaudio").wait_for(state="visible", timeout=5_000)
            except PlaywrightError:
                return False
            done = await self.call("microphone", on)
        return done in ("clicked", "as-wanted")

    # -- leave ----------------------------------------------------------------------------
    async def leave(self) -> None:
        # "Stop" destroys the Janus session, which leaves the room.
        stop = self.page.locator("#start")
        if await stop.is_visible() and (await stop.inner_text()).strip() == "Stop":
            await stop.click()
