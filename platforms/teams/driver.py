"""Microsoft Teams, joined as an anonymous guest from the web ("light meetings").

Written for the real web client (../shared/facts/web-clients.md §2, lma.md §2 Teams). URL
rules are :mod:`platforms.teams.urls`, page reads ``page.js``, decisions
:mod:`platforms.teams.decisions`.

Join
    The page goes through an anonymous redirect chain (SSO probe, launcher, light-meetings) with an
    empty DOM for seconds; then a permission gate, then the pre-join form under a hydration shroud.
    One snapshot per 250 ms; the driver acts on the first thing that applies: errors (fail fast)
    → the "Continue without audio or video" modal (it can appear after Join, with the Join button
    still behind it) → cookie banner → "Continue on this browser" → passcode form → lobby (before
    any in-meeting check) → admitted → pre-join (mic and camera off, name typed with real key
    events and read back, Join clicked through the DOM because the shroud intercepts pointer
    events).

Meeting
    One snapshot per second: speaker from ``[data-tid="voice-level-stream-outline"]
    .vdi-frame-occlusion`` → closest ``[data-stream-type][data-tid]`` (its data-tid is the name),
    participants from the stage tiles / roster and the People badge, chat from the (virtualised)
    chat pane, and the end: end/removed screens confirmed on two consecutive polls with the
    calling controls gone; toasts (``[role=alert]``) are never evidence, and the controls missing
    count only after :attr:`TeamsDriver.gone_polls` polls in a row.

Chat
    The composer is CKEditor 5, whose model ignores ``execCommand('insertText')``: text goes in
    with a synthetic ``paste`` ClipboardEvent (LMA), else ``keyboard.insert_text``; sent with the
    send button (or Enter), then confirmed in the chat list, retried once.

Audio
    Teams sends one server-side mix on a stream whose id contains ``mainAudio`` plus redundant
    per-participant tracks; :attr:`TeamsDriver.capture_track_filter_js` keeps only the mix.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from platforms.base import DriverSettings, EventSink, JoinState, PolledDriver
from platforms.teams import decisions
from platforms.teams.decisions import TeamsJoinSnapshot, TeamsMeetingSnapshot, norm
from platforms.teams.urls import HOST_RULES, NAVIGATION_RULES, teams_display_name, with_passcode
from platforms.teams.urls import web_client_url as teams_web_client_url
from platforms.toolkit import poll_until, send_chat_confirmed, toggle_microphone, type_into
from vp.errors import JoinError, VpError
from vp.incoming_video import IncomingVideo
from vp.lifecycle import Reason
from vp.urls import HostRule

log = structlog.get_logger(__name__)

CHAT_REOPEN_AFTER_POLLS = 3
CHAT_REOPEN_EVERY_S = 10.0
KEEPALIVE_EVERY_S = 240.0  # Teams stops delivering chat to an idle page (ATT)
EDITORS = [
    '[data-tid="ckeditor"] [contenteditable="true"]',
    'div[role="textbox"][contenteditable="true"][aria-label*="message" i]',
    'div[contenteditable="true"][data-tid="ckeditor-replyBox"]',
    '.ck-editor__editable[contenteditable="true"]',
    '[contenteditable="true"][aria-label="Type a message"]',
    '[contenteditable="true"][placeholder="Type a message"]',
]


class TeamsDriver(PolledDriver[TeamsJoinSnapshot, TeamsMeetingSnapshot], decisions=decisions):
    name: ClassVar[str] = "teams"
    host_rules: ClassVar[tuple[HostRule, ...]] = HOST_RULES
    navigation_rules: ClassVar[tuple[HostRule, ...]] = NAVIGATION_RULES
    supports_chat: ClassVar[bool] = True
    # The facts name no Teams setting that turns incoming video off (only the VP's own camera
    # toggle): receive-only video transceivers are negotiated inactive.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NEGOTIATE_INACTIVE
    # Only the server-side mix: per-participant tracks also arrive and would double the audio.
    capture_track_filter_js: ClassVar[str | None] = (
        "({id, streamIds}) => (streamIds || []).some((s) => /mainaudio/i.test(s))"
        " || /^mainaudio/i.test(id || '')"
    )
    gone_polls: ClassVar[int] = 8  # calling controls missing this many polls: the call is over
    people_polls: ClassVar[int] = 2

    web_client_url = staticmethod(teams_web_client_url)
    display_name = staticmethod(teams_display_name)

    def __init__(self, page: Page, settings: DriverSettings, emit: EventSink) -> None:
        super().__init__(page, settings, emit)
        # pre-join progress
        self._target = ""
        self._restarted = False
        self._join_clicks = 0
        self._last_click = 0.0
        self._passcode_tries = 0
        self._disabled_polls = 0
        self._names_typed = 0
        # meeting housekeeping
        # The chat panel is opened on the first meeting poll (messages exist only while open).
        self._chat_closed_polls = CHAT_REOPEN_AFTER_POLLS - 1
        self._last_reopen = -CHAT_REOPEN_EVERY_S
        self._last_keepalive = time.monotonic()

    # -- join -----------------------------------------------------------------------------
    async def open(self, url: str) -> None:
        self._target = with_passcode(url, self.settings.passcode)
        await self._goto(self._target)

    async def _goto(self, url: str) -> None:
        try:
            await self.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            # Client-side redirects can interrupt the first navigation; the loop takes over.
            if self.page.is_closed() or "interrupted" not in str(exc).lower():
                raise

    def join_state(self, snap: TeamsJoinSnapshot) -> JoinState:
        join = snap["join"]
        held = bool(self._join_clicks and join and join["disabled"])
        self._disabled_polls = self._disabled_polls + 1 if held else 0
        return decisions.join_state(
            snap,
            was_in_lobby=self._in_lobby,
            disabled_polls=self._disabled_polls,
            restart=self._restart_due(snap),
        )

    def _restart_due(self, snap: TeamsJoinSnapshot) -> bool:
        return "lightexperience=false" in snap["url"].lower() and not self._restarted

    async def prejoin_step(self, s: TeamsJoinSnapshot) -> float | None:
        if self._restart_due(s):
            self._restarted = True  # the heavy client loaded: start over once (ATT PR #904)
            await self._goto(self._target)
            return 0.0
        obstacles = (
            ("avModal", s["avModal"]),
            ("cookie", s["cookie"]),
            ("continue", s["continueBtn"]),
        )
        for what, shown in obstacles:
            if shown:
                await self.call("click", what)
                return self.join_poll_s * 2 if what == "continue" else None
        if s["passcode"] and not s["name"]:
            if not self.settings.passcode:
                raise JoinError("the meeting needs a passcode", reason=Reason.WRONG_PASSCODE)
            if self._passcode_tries < 2:
                self._passcode_tries += 1
                await self._type_into("passcode", self.settings.passcode)
                await self.page.keyboard.press("Enter")
            return 1.0
        if s["name"] is None and not s["join"]:
            return None
        if self._join_clicks and time.monotonic() - self._last_click < 3.0:
            return None  # give the click time to land
        # Mic and camera off, the name typed; both read back on the next poll, since hydration
        # re-renders the form (and drops what was typed) at an unknown moment.
        changed = bool(await self.call("prejoinMedia"))
        if s["name"] is not None and s["name"]["value"] != self.me:
            self._names_typed += 1
            log.info("teams.name_typed", attempt=self._names_typed)
            await self._type_into("name", self.me)
            changed = True
        join = s["join"]
        if not changed and join and not join["disabled"] and await self.call("click", "join"):
            self._join_clicks += 1
            self._last_click = time.monotonic()
            log.info("teams.join_clicked", attempt=self._join_clicks)
        return None

    async def _type_into(self, kind: str, value: str) -> None:
        """Focus the field through the DOM (the hydration shroud intercepts pointer events),
        type with real key events, and read it back on the next poll."""

        async def focus() -> bool:
            return bool(await self.call("focus", kind))

        typed = await type_into(self.page, focus, value)
        if typed and kind == "name" and await self.call("readName") != value:
            log.info("teams.name_not_kept")

    async def settle_in(self) -> None:
        await self.call("micOff")  # best effort: the pre-join toggle should have done it

    async def set_microphone(self, on: bool) -> bool:
        """The meeting bar's ``#microphone-button`` ("Unmute mic" / "Mute mic")."""
        return await toggle_microphone(
            self.ui, on, unmute_label="Unmute mic", mute_label="Mute mic"
        )

    # -- watch ----------------------------------------------------------------------------
    async def read_meeting(self) -> TeamsMeetingSnapshot:
        snap: TeamsMeetingSnapshot | None = await self.call("meetingState")
        return snap if snap is not None else {"url": self.page.url, "controls": False}

    async def housekeeping(self, snap: TeamsMeetingSnapshot) -> None:
        """Keep the chat panel open (messages exist in the DOM only then) and the page awake."""
        now = time.monotonic()
        if snap.get("chatOpen"):
            self._chat_closed_polls = 0
        else:
            self._chat_closed_polls += 1
            if (
                self._chat_closed_polls >= CHAT_REOPEN_AFTER_POLLS
                and now - self._last_reopen >= CHAT_REOPEN_EVERY_S
            ):
                self._last_reopen = now
                await self._open_chat(wait=False)
        if now - self._last_keepalive >= KEEPALIVE_EVERY_S:
            self._last_keepalive = now
            await self._keepalive()

    async def _keepalive(self) -> None:
        try:
            await self.page.mouse.move(5, 5)
            await self.page.mouse.move(12, 9)
        except PlaywrightError:
            pass

    # -- leave ----------------------------------------------------------------------------
    async def leave(self) -> None:
        if not await self.call("hangup"):
            # The toolbar may be hidden until the pointer moves; else Teams' own shortcut.
            await self._keepalive()
            if not await self.call("hangup"):
                try:
                    await self.page.keyboard.press("Control+Shift+H")
                except PlaywrightError:
                    return

        async def gone() -> bool:
            return bool(await self.call("confirmLeave") == "gone")

        await poll_until(gone, 4.0)

    # -- chat -----------------------------------------------------------------------------
    async def _editor(self, action: str, text: str = "") -> object:
        return await self.call("editor", [EDITORS, action, text])

    async def _open_chat(self, wait: bool = True) -> bool:
        if await self._editor("read") is not None:
            return True
        await self.call("openChat")
        if not wait:
            return False

        async def editor_shown() -> bool:
            return await self._editor("read") is not None

        return await poll_until(editor_shown, 5.0)

    async def _editor_text(self) -> str:
        value = await self._editor("read")
        return "" if value is None else norm(str(value))

    async def _insert(self, text: str, paste_first: bool) -> bool:
        async def focus() -> bool:
            await self._editor("focus")
            return True  # type even when focus cannot be confirmed, as a person would

        await type_into(self.page, focus, "")  # clear
        if paste_first:
            # CKEditor's model ignores execCommand('insertText'); a paste event goes through
            # its clipboard pipeline (LMA).
            await self._editor("paste", text)
            await asyncio.sleep(0.1)
            if await self._editor_text() == norm(text):
                return True
        await type_into(self.page, focus, text, paste=True)
        await asyncio.sleep(0.1)
        return await self._editor_text() == norm(text)

    async def send_chat(self, text: str) -> None:
        if not text.strip():
            return

        async def prepare() -> None:
            if not await self._open_chat():
                raise VpError("the Teams chat composer did not open")

        async def write(attempt: int) -> bool:
            if not await self._insert(text, paste_first=attempt == 0):
                return False
            if not await self.call("send"):
                await self._editor("focus")
                await self.page.keyboard.press("Enter")
            return True

        own = lambda: self.own_chat_keys(text)  # noqa: E731
        await send_chat_confirmed("Teams", write, own, prepare=prepare, poll_s=0.25)
