"""Amazon Chime web app (``app.chime.aws``), joined as an anonymous guest.

AWS ended the Amazon Chime service on 2026-02-20, so the flow below is historical; it follows
the facts gathered from LMA, AMS and CHX (``shared/facts/web-clients.md`` §3, ``lma.md`` §2):

* ``https://app.chime.aws/meetings/<10-digit id>`` sends guests on to ``/anonymousJoin``.
  Short forms ``https://chime.aws/<id>`` and ``app.chime.aws/meetings?pin=<id>`` are rewritten
  to that URL. There is no passcode in Chime links.
* AWS cookie banner ``button[data-id="awsccc-cb-btn-accept"]`` (may cover the page's bottom).
* Name ``#name``, typed with real key events, then ``button.Button--enabled`` "Join meeting
  now" (or Tab + Enter, as LMA does).
* Device setup: "Join muted" (``div[data-test-id="DeviceSetupJoinMutedCheckbox"] input``, a
  styled checkbox clicked through the DOM as CHX does), then
  ``button[data-test-id="DevicePreviewJoinBtn"]`` / ``button[data-testid="button"]
  [aria-label="Join"]`` (not "Join with video": the camera stays off).
* Anonymous guests wait in the Waiting Room (a dialog over the device preview) until admitted
  or denied. A moderated meeting waits for a moderator; with a passcode the VP enters it as the
  moderator passcode (the only passcode Chime has).
* Admitted: ``nav[data-testid="control-bar"]`` or the "Open chat panel" toggle.
* In the meeting: mic ``button#audio`` ("Unmute my microphone" while muted), chat toggle
  ``[aria-label^="Open chat panel"]`` (flips to "Close …"), ``textarea[placeholder="Message all
  attendees"]`` + Enter, chat list ``._2B9DdDvc2PdUbvEGXfOU20`` (sender
  ``h3[data-testid="chat-bubble-sender-name"]`` missing on grouped follow-ups, text
  ``.Linkify``, system sender "Amazon Chime"), attendees toggle ``[aria-label^="Open attendees
  panel"]`` with the "Present" section, active speaker ``.activeSpeakerCell
  ._3yg3rB2Xb_sfSzRXkm8QT-`` ("No one" when idle), leave ``button#endMeeting``.
* End: "Your meeting has ended", removal texts, the URL leaving the Chime host, or the meeting
  controls gone — each debounced over consecutive polls.
* Audio: the Chime SDK binds one mixed stream to one ``<audio>`` element; the capture script
  takes it as it is (no track filter).

URL rules: :mod:`platforms.chime.urls`; page reads: ``page.js``; decisions:
:mod:`platforms.chime.decisions`.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator

from platforms.base import JoinState, PolledDriver
from platforms.chime import decisions
from platforms.chime.decisions import ChimeSnapshot
from platforms.chime.urls import HOST_RULES
from platforms.chime.urls import web_client_url as chime_web_client_url
from platforms.toolkit import (
    click_first_visible,
    first_visible,
    send_chat_confirmed,
    toggle_microphone,
    type_into,
)
from vp.incoming_video import IncomingVideo
from vp.urls import HostRule

# -- selectors (real client first, fallbacks after) -----------------------------------------
COOKIE_ACCEPT = 'button[data-id="awsccc-cb-btn-accept"]'
NAME_INPUT = '#name, input[id="name"], input[name="name"]'
NAME_SUBMIT = 'button.Button--enabled:has-text("Join meeting now")'
JOIN_MUTED_INPUT = 'div[data-test-id="DeviceSetupJoinMutedCheckbox"] input'
DEVICE_JOIN = (
    'button[data-test-id="DevicePreviewJoinBtn"], button[data-testid="button"][aria-label="Join"]'
)
MODERATOR_PASSCODE_BUTTON = 'button:has-text("Enter moderator passcode")'
MODERATOR_PASSCODE_INPUT = (
    'input[type="password"], input[aria-label*="passcode" i], input[placeholder*="passcode" i]'
)
CONTROL_BAR = 'nav[data-testid="control-bar"]'
MIC_BUTTON = "button#audio"
VIDEO_BUTTON = "button#video"
CHAT_OPEN = 'button[aria-label^="Open chat panel"]'
CHAT_INPUT = 'textarea[placeholder="Message all attendees"], textarea[data-testid="textarea"]'
ROSTER_OPEN = 'button[aria-label^="Open attendees panel"]'
LEAVE_BUTTON = 'button#endMeeting, nav[data-testid="control-bar"] button[aria-label^="Leave" i]'
LEAVE_CONFIRM = (
    '[role="dialog"] button:text-is("Leave meeting"), [role="dialog"] button:text-is("Leave")'
)


class ChimeDriver(PolledDriver[ChimeSnapshot, ChimeSnapshot], decisions=decisions):
    name: ClassVar[str] = "chime"
    host_rules: ClassVar[tuple[HostRule, ...]] = HOST_RULES
    supports_chat: ClassVar[bool] = True
    # The facts name no Chime setting for incoming video: receive-only video transceivers are
    # negotiated inactive.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NEGOTIATE_INACTIVE
    capture_track_filter_js: ClassVar[str | None] = None  # one mixed stream, one element
    # Consecutive polls an end signal must hold: texts/URL 2, the controls merely gone 3.
    end_polls: ClassVar[int] = 2
    gone_polls: ClassVar[int] = 3

    _panel_tries: float = 0.0
    _name_sent_at: float | None = None
    _device_sent_at: float | None = None
    _passcode_sent = False
    _mic_wanted = False  # True while the VP speaks: housekeeping leaves the mic on

    @classmethod
    def web_client_url(cls, url: str) -> str:
        return chime_web_client_url(url)

    @classmethod
    def display_name(cls, name: str) -> str:
        cleaned = " ".join(name.split())
        return cleaned[:64] or "Virtual Participant"

    async def read_join(self) -> ChimeSnapshot | None:
        snap: ChimeSnapshot | None = await self.call("snapshot")
        return snap

    read_meeting = read_join

    async def _visible(self, selector: str) -> Locator | None:
        """The first visible match of ``selector`` (a comma list is tried in order)."""
        return await first_visible(self.page, selector, self.page)

    async def _click(self, selector: str, timeout: float = 2.0) -> bool:
        return await click_first_visible(self.page, selector, self.page, timeout)

    # -- join -----------------------------------------------------------------------------
    def join_state(self, snap: ChimeSnapshot) -> JoinState:
        return decisions.join_state(
            snap, passcode_sent=self._passcode_sent, has_passcode=bool(self.settings.passcode)
        )

    async def prejoin_step(self, snap: ChimeSnapshot) -> float | None:
        if snap["cookie"]:
            await self._click(COOKIE_ACCEPT, 1.0)
        passcode = self.settings.passcode
        if passcode and not self._passcode_sent and decisions.moderator_passcode_wanted(snap):
            self._passcode_sent = await self._enter_moderator_passcode(passcode)
            return None
        now = time.monotonic()
        if snap["name"] and (self._name_sent_at is None or now - self._name_sent_at > 5):
            await self._enter_name()
            self._name_sent_at = time.monotonic()
        elif (
            snap["deviceJoin"]
            and (self._device_sent_at is None or now - self._device_sent_at > 5)
            and await self._device_setup()
        ):
            self._device_sent_at = time.monotonic()
        return None

    async def _enter_name(self) -> None:
        """Type the name with real key events (the button enables on them), then submit."""
        field_ = await self._visible(NAME_INPUT)
        if field_ is None:
            return
        name = self.me
        await type_into(self.page, field_, name, delay_ms=15)
        if (await field_.input_value()).strip() != name:
            await field_.fill(name[:-1])
            await self.page.keyboard.type(name[-1:])
        if not await self._click(NAME_SUBMIT, 1.0):
            await field_.press("Tab")  # LMA: Tab to the button, then Enter
            await self.page.keyboard.press("Enter")

    async def _device_setup(self) -> bool:
        """Join muted, camera off, press Join; True when Join was pressed."""
        muted = self.page.locator(JOIN_MUTED_INPUT).first
        try:
            if await muted.count() and not await muted.is_checked():
                # A styled checkbox: its label covers the input, so click through the DOM.
                await muted.evaluate("(el) => el.click()")
                if not await muted.is_checked():
                    await self._click('label:has-text("Join muted")', 1.0)
        except PlaywrightError:
            if self.page.is_closed():
                raise
        return await self._click(DEVICE_JOIN, 1.5)

    async def _enter_moderator_passcode(self, passcode: str) -> bool:
        field_ = await self._visible(MODERATOR_PASSCODE_INPUT)
        if field_ is None:
            await self._click(MODERATOR_PASSCODE_BUTTON, 1.0)
            field_ = await self._visible(MODERATOR_PASSCODE_INPUT)
        if field_ is None:
            return False
        await type_into(self.page, field_, passcode, delay_ms=15)
        await field_.press("Enter")
        return True

    async def settle_in(self) -> None:
        """After admission: dismiss notices, mic and camera off, chat and roster open."""
        for _ in range(8):
            snap = await self.read_meeting()
            if snap is not None and not await self._tidy(snap, force=True):
                break
            await asyncio.sleep(self.join_poll_s)

    async def _tidy(self, snap: ChimeSnapshot, force: bool = False) -> bool:
        """Dismiss notices, keep mic/camera off and the panels open; True if it acted."""
        label = decisions.ack_button(snap)
        if label is not None and await self._click(
            f'[role="dialog"] button:text-is("{label}")', 1.0
        ):
            return True
        acted = False
        if decisions.mic_on(snap) and not self._mic_wanted:
            acted |= await self._click(MIC_BUTTON, 1.0)
        if decisions.camera_on(snap):
            acted |= await self._click(VIDEO_BUTTON, 1.0)
        now = time.monotonic()
        if force or now - self._panel_tries > 5:
            self._panel_tries = now
            if snap["chatToggle"] and not snap["chatOpen"]:
                acted |= await self._click(CHAT_OPEN, 1.0)
            if snap["rosterToggle"] and snap["present"] is None:
                acted |= await self._click(ROSTER_OPEN, 1.0)
        return acted

    async def set_microphone(self, on: bool) -> bool:
        """The control bar's ``button#audio`` ("Unmute my microphone" / "Mute my microphone")."""
        self._mic_wanted = on
        return await toggle_microphone(
            self.ui, on, unmute_label="Unmute my microphone", mute_label="Mute my microphone"
        )

    # -- watch ----------------------------------------------------------------------------
    async def housekeeping(self, snap: ChimeSnapshot) -> None:
        await self._tidy(snap)

    # -- leave / chat ---------------------------------------------------------------------
    async def leave(self) -> None:
        if not await self._click(LEAVE_BUTTON, 2.0):
            return
        await self._click(LEAVE_CONFIRM, 2.0)
        await self.wait_until_left(12)

    async def send_chat(self, text: str) -> None:
        body = await self.chat_body(text)
        if not body:
            return
        box = await self._visible(CHAT_INPUT)
        if box is None:
            await self._click(CHAT_OPEN, 2.0)
            box = self.page.locator(CHAT_INPUT).first
            await box.wait_for(state="visible", timeout=3000)
        composer = box

        async def write(_attempt: int) -> bool:
            # fill() fires input events, so the app's model (what Enter sends) gets the text.
            await composer.fill(text)
            await composer.press("Enter")
            return True

        await send_chat_confirmed(
            "Amazon Chime", write, lambda: self.own_chat_keys(body), confirm_s=3.0
        )
