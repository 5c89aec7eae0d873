"""Janus AudioBridge demo page (Debian ``janus-demos``: ``audiobridgetest.html?room=N``).

Our first platform, and the one real WebRTC server tests can run. The demo page: click
``#start`` (creates the Janus session), type an alphanumeric display name into ``#username``,
click ``#register``; once in the room ``#room`` shows, ``#participant`` holds our name and
``#list`` the others. Destroying the room pops a bootbox dialog "The room has been
destroyed". Decisions: :mod:`platforms.janus.decisions`; page reads: ``page.js``.
"""

from __future__ import annotations

import asyncio
import re
from typing import ClassVar
from urllib.parse import SplitResult

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from platforms.base import DriverSettings, EventSink, JoinState, MeetingOver, PolledDriver
from platforms.janus import decisions
from platforms.janus.decisions import NO_ROOM, JanusSnapshot
from vp.incoming_video import IncomingVideo

DEMO_PAGE = "audiobridgetest.html"
TOGGLE = "#toggleaudio"

log = structlog.get_logger(__name__)

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
    join_snapshot_is_meeting: ClassVar[bool] = True  # one "snapshot"; settle_in() only notes
    end_polls: ClassVar[int] = 1  # the demo's dialogs and page changes are never transient
    gone_polls: ClassVar[int] = 1
    alone_at_start: ClassVar[bool] = True

    _started = False
    _registered = False
    # Admitted before the room's audio was negotiated: the first mute is still to be done.
    _mute_pending = False

    def __init__(self, page: Page, settings: DriverSettings, emit: EventSink) -> None:
        super().__init__(page, settings, emit)
        self._mic_lock = asyncio.Lock()  # the first mute, then the voice's, in that order

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
        # Joined muted: the demo publishes unmuted and shows its toggle only once the room's
        # audio is negotiated, an SDP round trip after admission (0.5 s median, up to 1.4 s,
        # in a pool of 8 on 2 cores). Nothing is sent before then, so JOINED does not wait:
        # watch() mutes the moment the toggle shows, and set_microphone() mutes first when
        # the voice gets there before it — the room sees muted, then unmuted for speech.
        self._mute_pending = True

    async def watch(self) -> MeetingOver:
        muting = asyncio.create_task(self._mute_when_shown()) if self._mute_pending else None
        try:
            return await super().watch()
        finally:
            if muting is not None:
                muting.cancel()
                await asyncio.gather(muting, return_exceptions=True)

    async def _mute_when_shown(self) -> None:
        try:  # no time limit: watch() owns this task and cancels it when the call ends
            await self.page.locator(TOGGLE).wait_for(state="visible", timeout=0)
        except PlaywrightError:
            return  # the page went away; watch() reports that
        async with self._mic_lock:
            if self._mute_pending:
                self._mute_pending = False
                done = await self.call("microphone", False)
                log.debug("driver.muted", platform=self.name, done=done)

    # -- microphone -----------------------------------------------------------------------
    async def set_microphone(self, on: bool) -> bool:
        """The demo's ``#toggleaudio``, which sends AudioBridge ``configure muted`` (page.js
        ``microphone``). It shows once the room's audio is set up, shortly after admission;
        the first call waits for it (at most 5 s) and does the pending first mute."""
        async with self._mic_lock:
            if self._mute_pending:
                self._mute_pending = False
                if not await self._microphone(False):
                    return False
            return await self._microphone(on)

    async def _microphone(self, on: bool) -> bool:
        done = await self.call("microphone", on)
        if done == "hidden":
            try:
                await self.page.locator(TOGGLE).wait_for(state="visible", timeout=5_000)
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
