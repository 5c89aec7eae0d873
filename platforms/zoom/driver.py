"""Zoom: the web client, as a guest (shared/facts/web-clients.md §1).

Invites are rewritten to the "React" web client (:mod:`platforms.zoom.urls`); the classic
client (``/wc/join/<id>``, which Zoom sometimes redirects guests to) and the ``/j/`` landing
page ("Join from your browser") are handled too. Page reads are ``page.js``; decisions are
:mod:`platforms.zoom.decisions`.

Join: OneTrust banner, the classic terms dialog, the camera+mic permission portal (click
**Allow**: without it Zoom never joins computer audio), name typed with REAL key events (the
Join button stays ``disabled`` for synthetic setters), passcode from the settings when the URL
has none, mic and camera off, DOM ``click()`` on Join (the form overlay can intercept pointer
events). Failure pages are refusals at once; the waiting room emits :class:`WaitingRoom`.

Watch: one poll a second; end signals (end/removed modals, leaving the meeting URL) must hold
on two consecutive polls, and a missing Leave button (reconnects unmount the client) ends the
meeting only after :attr:`ZoomDriver.gone_polls` polls. Computer audio is joined from the
footer when the client did not join it by itself: the modern client plays remote audio
(through WebAudio) only after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import ClassVar
from urllib.parse import SplitResult

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page

from platforms.base import DriverSettings, EventSink, JoinState, PolledDriver
from platforms.toolkit import send_chat_confirmed, toggle_microphone, type_into
from platforms.zoom import decisions
from platforms.zoom.decisions import ZoomJoinSnapshot, ZoomMeetingSnapshot
from platforms.zoom.urls import HOST_RULES, REPLICA_PATH, web_client_url
from vp.errors import JoinError, VpError
from vp.incoming_video import IncomingVideo
from vp.lifecycle import Reason
from vp.urls import HostRule

log = structlog.get_logger(__name__)

SETTLE_S = 1.0  # the pre-join page must be quiet (no dialog) this long before we submit
RESUBMIT_AFTER_S = 6.0  # still on the pre-join page this long after Join: click it again (LMA)
NAME_FIELD = "#input-for-name, #inputname, input[placeholder='Your Name']"
PASSCODE_FIELD = "#input-for-pwd, #inputpasscode, input[type='password']"
JOIN_BUTTONS = ("button.preview-join-button", "#joinBtn", 'button[type="submit"].zm-btn')
EDITORS = (
    '.chat-rtf-box__editor-outer [contenteditable="true"]',
    ".tiptap.ProseMirror",
    'div[contenteditable="true"][aria-label*="message" i]',
    'div[aria-placeholder="Type message here ..."]',
)
OPEN_CHAT = ('button[aria-label="open the chat panel"]',)
# What each housekeeping decision clicks: (selectors, text pattern).
HOUSEKEEPING_CLICKS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "dismiss": (
        (".zm-modal button", ".ReactModal__Content button", ".relative-tooltip button"),
        r"^(got it|ok)$",
    ),
    "audio_dialog": (
        ("button.join-audio-by-voip__join-btn", "button"),
        r"^(join audio by computer|join with computer audio)$",
    ),
    "join_audio": (("button.join-audio-container__btn",), None),
    "stay_muted": (("button.join-audio-container__btn",), None),
    "open_chat": (OPEN_CHAT, None),
    "open_participants": (('button[aria-label^="open the participants list" i]',), None),
}


class ZoomDriver(PolledDriver[ZoomJoinSnapshot, ZoomMeetingSnapshot], decisions=decisions):
    name: ClassVar[str] = "zoom"
    host_rules: ClassVar[tuple[HostRule, ...]] = HOST_RULES
    supports_chat: ClassVar[bool] = True
    # The facts name no setting that stops incoming video on Zoom's web client (only the
    # camera's Start/Stop Video): receive-only video transceivers are negotiated inactive.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NEGOTIATE_INACTIVE
    gone_polls: ClassVar[int] = 15  # Leave button and client absent this long: meeting gone
    lobby_poll_s: ClassVar[float] = 0.5

    @classmethod
    def claims(cls, parts: SplitResult) -> bool:
        return super().claims(parts) or bool(REPLICA_PATH.match(parts.path or ""))

    @classmethod
    def web_client_url(cls, url: str) -> str:
        return web_client_url(url)

    @classmethod
    def display_name(cls, name: str) -> str:
        return name.strip()[:64] or "Meeting Assistant"

    def __init__(self, page: Page, settings: DriverSettings, emit: EventSink) -> None:
        super().__init__(page, settings, emit)
        self._admitted_at = 0.0
        self._chat_lock = asyncio.Lock()
        self._frame: Frame | None = None
        # pre-join progress
        self._prejoin_since: float | None = None
        self._submitted_at: float | None = None
        self._passcode_typed = False
        self._name_attempts = 0
        self._typed_at = 0.0

    @property
    def ui(self) -> Page | Frame:
        return self._frame or self.page.main_frame

    async def read_join(self) -> ZoomJoinSnapshot | None:
        # The PWA and classic variants can host the client in an iframe (MB, SA).
        try:
            handle = await self.page.query_selector(
                "iframe.pwa-webclient__iframe, iframe#webclient"
            )
            self._frame = await handle.content_frame() if handle else None
        except PlaywrightError:
            if self.page.is_closed():
                raise
            return None
        snap: ZoomJoinSnapshot | None = await self.call("joinState", decisions.PAGE_PATTERNS)
        return snap

    async def read_meeting(self) -> ZoomMeetingSnapshot | None:
        snap: ZoomMeetingSnapshot | None = await self.call("meetingState", decisions.PAGE_PATTERNS)
        return snap

    async def _click(self, selectors: tuple[str, ...], text: str | None = None) -> bool:
        return bool(await self.ui.evaluate(self.script.fn("click"), [list(selectors), text]))

    async def _wake_footer(self) -> None:
        # The footer auto-hides while the mouse is idle (JL).
        with contextlib.suppress(PlaywrightError):
            await self.page.mouse.move(400, 300)
            await self.page.mouse.move(420, 320)

    # -- join -----------------------------------------------------------------------------
    async def open(self, url: str) -> None:
        await self.page.goto(url, wait_until="domcontentloaded")  # `load` may never fire

    def join_state(self, snap: ZoomJoinSnapshot) -> JoinState:
        return decisions.join_state(snap)

    async def prejoin_step(self, s: ZoomJoinSnapshot) -> float | None:
        # Obstacles first, one action per poll.
        if s["consent"]:
            await self._click(("#onetrust-accept-btn-handler", "#onetrust-reject-all-handler"))
        elif s["terms"]:
            await self._click(("#wc_agree1", "#wc_agree2"))
        elif s["permission"]:
            # Allow: otherwise Zoom never joins computer audio and no audio arrives (VX).
            await self._click(
                (".ReactModal__Content button", '[role="dialog"] button'),
                r"^(allow|use microphone and camera|use microphone)$",
            )
            self._prejoin_since = None
        elif s["landing"] and not s["hasName"]:
            await self._click(("a",), r"join from your browser")
        elif s["hasName"] and s["join"]:
            return await self._prejoin_form(s)
        return None

    async def _prejoin_form(self, s: ZoomJoinSnapshot) -> float | None:
        now = time.monotonic()
        self._prejoin_since = self._prejoin_since or now
        if s["pwdError"] is not None and self._submitted_at is not None:
            await self._on_wrong_passcode(s, now - self._submitted_at)
            return 0.0
        if s["hasPwd"] and not s["pwdValue"]:
            await self._type_passcode()
            return 0.0
        if (s["nameValue"] or "") != self.me or (s["joinDisabled"] and now - self._typed_at > 1):
            # Wrong value, or typed but the client did not take it: type again (bounded).
            if self._name_attempts >= 5:
                raise JoinError("Zoom did not accept the VP's name", reason=Reason.DENIED)
            self._name_attempts += 1
            await type_into(self.page, self.ui.locator(NAME_FIELD).first, self.me)
            self._typed_at = time.monotonic()
            return 0.0
        if now - self._prejoin_since < SETTLE_S or s["joinBusy"]:
            pass
        elif s["micOn"]:
            if not await self._click(("#preview-audio-control-button",)):
                await self._click(("svg.SvgAudioMute",))
        elif s["camOn"]:
            if not await self._click(("#preview-video-control-button",)):
                await self._click(("svg.SvgVideoOn",))
        elif not s["joinDisabled"] and (
            self._submitted_at is None or now - self._submitted_at > RESUBMIT_AFTER_S
        ):
            await self._click(JOIN_BUTTONS)
            self._submitted_at = now
            log.info("zoom.join_clicked")
        return None

    async def _on_wrong_passcode(self, s: ZoomJoinSnapshot, since_submit: float) -> None:
        """Zoom rejected the passcode: retry once with the configured one (when the rejected
        one came from the URL), else fail. The message answered is marked, so only a NEW
        rejection (or the old one outliving the retry) is the verdict."""
        if not self._passcode_typed and self.settings.passcode:
            await self.call("markPasscodeError", decisions.PAGE_PATTERNS["passcode"])
            await self._type_passcode()
            await self._click(JOIN_BUTTONS[:2])
            self._submitted_at = time.monotonic()
            return
        refused = decisions.passcode_rejected(s, since_submit)
        if refused is not None:
            raise refused.error()
        await asyncio.sleep(self.join_poll_s)

    async def _type_passcode(self) -> None:
        passcode = self.settings.passcode
        if not passcode:
            raise JoinError(
                "the meeting needs a passcode and none was given", reason=Reason.WRONG_PASSCODE
            )
        await type_into(self.page, self.ui.locator(PASSCODE_FIELD).first, passcode)
        self._passcode_typed = True

    async def settle_in(self) -> None:
        self._admitted_at = time.monotonic()

    # -- watch ----------------------------------------------------------------------------
    async def housekeeping(self, snap: ZoomMeetingSnapshot) -> None:
        action = decisions.housekeeping(snap, time.monotonic() - self._admitted_at)
        if action is None:
            return
        try:
            if action in ("join_audio", "open_chat"):
                await self._wake_footer()
            await self._click(*HOUSEKEEPING_CLICKS[action])
        except PlaywrightError as exc:
            log.debug("zoom.housekeeping_failed", error=type(exc).__name__)

    # -- microphone -----------------------------------------------------------------------
    async def set_microphone(self, on: bool) -> bool:
        """The footer's audio button ("unmute my microphone" / "mute my microphone"; the
        replica, like Zoom, joins computer audio muted)."""
        await self._wake_footer()
        return await toggle_microphone(
            self.ui, on, unmute_label="unmute my microphone", mute_label="mute my microphone"
        )

    # -- leave ----------------------------------------------------------------------------
    async def leave(self) -> None:
        await self._wake_footer()
        if not await self._click(('button[aria-label="Leave"]', ".footer__leave-btn")):
            return
        confirm = self.ui.locator(
            "button.leave-meeting-options__btn--danger, "
            "button.leave-meeting-options__btn:has-text('Leave Meeting')"
        ).first
        await confirm.wait_for(state="attached", timeout=3000)
        # A DOM click: Enter would cancel the popover (VX).
        await confirm.evaluate("b => b.click()")
        with contextlib.suppress(PlaywrightError):
            await self.page.wait_for_function(self.script.fn("leaveGone"), timeout=2000)

    # -- chat -----------------------------------------------------------------------------
    async def send_chat(self, text: str) -> None:
        text = text.strip()
        if not text:
            return

        async def write(_attempt: int) -> bool:
            await self._insert(text)
            await self._submit()
            return True

        async with self._chat_lock:
            await send_chat_confirmed(
                "Zoom", write, lambda: self.own_chat_keys(text), prepare=self._open_chat
            )

    async def _editor_present(self) -> bool:
        return bool(await self.call("editorPresent", list(EDITORS)))

    async def _open_chat(self) -> None:
        if await self._editor_present():
            return
        await self._wake_footer()
        # The toggle's label flips: "open the chat panel" ↔ "close the chat panel".
        await self._click(OPEN_CHAT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if await self._editor_present():
                return
            await asyncio.sleep(0.1)
        raise VpError("the Zoom chat panel did not open")

    async def _insert(self, text: str) -> None:
        value = await self.ui.evaluate(self.script.fn("insertText"), [list(EDITORS), text])
        if value is not None and value.strip() == text:
            return
        # Fallback: real keyboard input into the focused editor.
        editor = self.ui.locator(", ".join(EDITORS)).first
        await type_into(self.page, editor, text, paste=True)

    async def _submit(self) -> None:
        editor = self.ui.locator(", ".join(EDITORS)).first
        await editor.focus()
        await self.page.keyboard.press("Enter")
        await asyncio.sleep(0.2)
        with contextlib.suppress(PlaywrightError):
            left = await editor.inner_text(timeout=1000)
            if left.strip():
                await self._click(('button[aria-label="send"]', "button.chat-rtf-box__send"))
