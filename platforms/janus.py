"""Janus AudioBridge demo page (Debian ``janus-demos``: ``audiobridgetest.html?room=N``).

Our first platform, and the one real WebRTC server tests can run. The demo page: click
``#start`` (creates the Janus session), type an alphanumeric display name into ``#username``,
click ``#register``; once in the room ``#room`` shows, ``#participant`` holds our name and
``#list`` the others. Destroying the room pops a bootbox dialog "The room has been
destroyed". The page has no chat and no active-speaker display: the driver names the speaker
only when exactly one other participant is in the room.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import ClassVar
from urllib.parse import SplitResult

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator

from platforms.base import MeetingOver, ParticipantsChanged, PlatformDriver, SpeakerChanged
from vp.errors import JoinError
from vp.lifecycle import Reason

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

# One round trip reads everything the watch loop needs.
_STATE_JS = """
() => {
  const dialog = document.querySelector('.bootbox .bootbox-body');
  // Each <li> holds the display name as a text node beside icons (and maybe a slider).
  const names = Array.from(document.querySelectorAll('#list > li'))
    .map(li => Array.from(li.childNodes)
      .filter(n => n.nodeType === Node.TEXT_NODE)
      .map(n => n.textContent).join('').trim())
    .filter(Boolean);
  const room = document.querySelector('#room');
  return {
    dialog: dialog ? dialog.textContent.trim() : null,
    names,
    inRoom: !!room && getComputedStyle(room).display !== 'none',
  };
}
"""

_ROOM_MISSING = re.compile(r"does not exist|no such room", re.I)
_ROOM_DESTROYED = re.compile(r"room has been destroyed", re.I)


class JanusDriver(PlatformDriver):
    name: ClassVar[str] = "janus"

    @classmethod
    def claims(cls, parts: SplitResult) -> bool:
        return parts.path.rstrip("/").endswith(DEMO_PAGE)

    @classmethod
    def display_name(cls, name: str) -> str:
        # The demo rejects anything but [A-Za-z0-9].
        cleaned = re.sub(r"[^A-Za-z0-9]", "", name)
        return cleaned[:64] or "VirtualParticipant"

    async def join(self, url: str) -> None:
        page = self.page
        await page.add_init_script(SETTINGS_SHIM)
        await page.goto(url, wait_until="domcontentloaded")
        start = page.locator("#start")
        await start.wait_for(state="visible")
        await start.click()
        username = page.locator("#username")
        await self._wait_or_dialog(username, "the Janus session could not be created")
        await username.fill(self.display_name(self.settings.name))
        await page.locator("#register").click()
        await self._wait_or_dialog(page.locator("#room"), "the room could not be joined")
        # Report who is here before JOINED, so the call starts with the right speaker. The
        # list is filled from the "joined" event, which precedes the media (and #room).
        self._note_participants(tuple((await page.evaluate(_STATE_JS))["names"]))

    def _note_participants(self, names: tuple[str, ...]) -> None:
        if names == self._names:
            return
        self._names = names
        self.emit(ParticipantsChanged(names))
        # The demo shows no active speaker; with one other person in the room, everything
        # the VP hears is theirs.
        if len(names) == 1:
            self.emit(SpeakerChanged(names[0]))

    async def _wait_or_dialog(self, target: Locator, failure: str) -> None:
        """Wait for ``target`` to become visible, failing fast if the demo shows an error."""
        while True:
            state = await self.page.evaluate(_STATE_JS)
            dialog = state["dialog"]
            if dialog:
                if _ROOM_MISSING.search(dialog):
                    raise JoinError("the room does not exist", reason=Reason.MEETING_NOT_FOUND)
                raise JoinError(failure, reason=Reason.MEETING_NOT_FOUND)
            if await target.is_visible():
                return
            await asyncio.sleep(0.2)

    _names: tuple[str, ...] | None = None

    async def watch(self) -> MeetingOver:
        alone_since: float | None = time.monotonic()
        while True:
            try:
                state = await self.page.evaluate(_STATE_JS)
            except PlaywrightError:
                if self.page.is_closed():
                    raise
                # A navigation (the demo reloads after the room is gone) destroys the context.
                state = {"dialog": None, "names": [], "inRoom": False}
            dialog = state["dialog"]
            if dialog and _ROOM_DESTROYED.search(dialog):
                return MeetingOver(Reason.HOST_ENDED, "the room has been destroyed")
            if not state["inRoom"] and not dialog:
                return MeetingOver(Reason.REMOVED, "the page left the room")
            current = tuple(state["names"])
            self._note_participants(current)
            now = time.monotonic()
            if current:
                alone_since = None
            elif alone_since is None:
                alone_since = now
            elif now - alone_since >= self.settings.alone_timeout:
                return MeetingOver(Reason.ALONE, "no other participant")
            await asyncio.sleep(self.settings.poll_interval)

    async def leave(self) -> None:
        # "Stop" destroys the Janus session, which leaves the room.
        stop = self.page.locator("#start")
        if await stop.is_visible() and (await stop.inner_text()).strip() == "Stop":
            await stop.click()
