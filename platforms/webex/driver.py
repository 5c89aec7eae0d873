"""Webex Meetings, joined as a guest from the browser.

The flow follows shared/facts/web-clients-meet-webex.md (Webex), from LMA, AS, MCR and EY:

* The meeting page (``/meet/<name>`` or ``/<site>/j.php?MTID=…``, opened as given): the cookie
  banner (Reject / Accept), then "Join from this browser", found by its text (the old
  ``#broadcom-center-right`` is a layout container now; clicking it does nothing), or the
  interstitial's ``#fallBkJoinByBrowser``.
* The web client runs in ``#unified-webclient-iframe`` (classic) or ``iframe[name=thinIframe]``
  (enterprise), cross-origin to the page: every step below runs in that frame through
  Playwright's frame handle, and the capture script runs there too (``capture_all_frames``).
  Newer j.php builds run the client in the main frame (``preloader.html?…runInOwnPage=true``):
  then the steps run there.
* Password page: ``input[aria-label="Meeting password"]`` → Next (``mdc-button[type=submit]``);
  "Incorrect password" → wrong-passcode; a CAPTCHA image → captcha. The password is the URL's
  ``pwd``/``password`` when it has one, else ``--passcode``.
* Name and email (a placeholder address at example.com, never a real one: real addresses may
  redirect to SSO), microphone and camera off (``mdc-button[data-test=microphone-button|
  camera-button]``), then ``mdc-button[data-test=join-button]``.
* Lobby texts → WAITING_ROOM; admitted by the in-meeting markers (grid layout, participants /
  chat toggles, share, raise hand); "Meeting not found" / "Invalid meeting" → meeting-not-found;
  a locked meeting or a denial → denied.
* In the meeting: chat toggle, the Quill composer ``.ql-editor``, the ``style-chat-*`` list with
  "from <sender>" labels (the VP's own skipped), the active speaker from
  ``.active-speaker-halo``, "Participants (N)" from the participants panel, end texts, alone.

* Enterprise sites (``thinIframe``) run the enterprise client, whose own controls each step
  tries next to the classic ones: the banner's ``#cookie-banner-text … button:nth-child(1)``,
  ``input[type=password]`` → ``#password_validate_btn``, the guest form
  ``input[aria-labelledby=nameLabel|emailLabel]`` → ``#guest_next-btn``, then the interstitial's
  ``#audioControlButton``, ``button[data-doi*=STOP_VIDEO]:not([disabled])`` (never START_VIDEO)
  and ``#interstitial_join_btn``; in the meeting the ``data-doi`` chat toggle, the
  ``#chat-panel`` textarea and the ``.videoitem-in-speaking-3a-w-`` speaker tile (L-wx, AS).
  Where the facts say nothing of it (lobby, participants, chat list, leave, end) the classic
  behaviour stands.

Not covered (see README): the meeting-number form at signin.webex.com, the native "Open
Webex?" chooser (headless Chromium shows none), enterprise SSO for guests.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar, cast

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Locator

from platforms.base import JoinState, PolledDriver
from platforms.toolkit import (
    click_first_visible,
    first_visible,
    platform_said,
    read_snapshot,
    send_chat_confirmed,
    toggle_microphone,
    type_into,
)
from platforms.webex import decisions
from platforms.webex.decisions import WebexClient, WebexSnapshot, WebexTop
from platforms.webex.urls import HOST_RULES, password_of
from platforms.webex.urls import web_client_url as webex_web_client_url
from vp.incoming_video import IncomingVideo
from vp.urls import HostRule

# A placeholder address (RFC 2606): a real one "might redirect to SSO" (LMA).
GUEST_EMAIL = "guest@example.com"
CLIENT_FRAME = '#unified-webclient-iframe, iframe[name="thinIframe"]'
COOKIE_BUTTONS = (
    '.cookie-banner-body mdc-button:text-is("Reject")',
    '#cookieMgmtbanner button:text-is("Accept")',
    '#cookieMgmtbanner mdc-button:text-is("Accept")',
    ".cookie-manage-close-handler",
    "#cookie-banner-text button:nth-child(1)",  # enterprise sites: Reject (L-wx)
)
JOIN_FROM_BROWSER = "text=/^\\s*join from (this|your) browser\\s*$/i"
PASSWORD_INPUT = 'input[aria-label="Meeting password"], input[type="password"]'
PASSWORD_NEXT = 'mdc-button[type="submit"], #password_validate_btn'
NAME_INPUT = (
    'input[data-test="Name (required)"], input[autocomplete="name"],'
    ' input[aria-labelledby="nameLabel"]'
)
EMAIL_INPUT = 'input[data-test="Email (required)"], input[aria-labelledby="emailLabel"]'
MIC_BUTTON = 'mdc-button[data-test="microphone-button"], #audioControlButton'
# Enterprise: only ever STOP_VIDEO; START_VIDEO without a camera is the step to avoid (L-wx).
CAMERA_BUTTON = (
    'mdc-button[data-test="camera-button"], button[data-doi*="STOP_VIDEO"]:not([disabled])'
)
ENTERPRISE_MIC = "#audioControlButton"
GUEST_NEXT = "#guest_next-btn"  # the enterprise guest form's Next (L-wx)
JOIN_BUTTON = (
    'mdc-button[data-test="join-button"], #join-button, #interstitial_join_btn,'
    ' button[title="Join meeting"]'
)
CHAT_TOGGLE = (
    '[data-test="in-meeting-chat-toggle-button"],'
    ' button[data-doi="CHAT:OPEN_CHAT_PANEL:MENU_CONTROL_BAR"]'
)
CHAT_EDITOR = (
    '.ql-editor[contenteditable="true"], #chat-panel > div > textarea,'
    ' textarea[placeholder="Type your message here"]'
)
ROSTER_TOGGLE = '[data-test="participants-toggle-button"]'
LEAVE_BUTTON = '[data-test="leave-button"]'
LEAVE_CONFIRM = '[role="dialog"] mdc-button:text-is("Leave meeting")'


class WebexDriver(PolledDriver[WebexSnapshot, WebexSnapshot], decisions=decisions):
    name: ClassVar[str] = "webex"
    host_rules: ClassVar[tuple[HostRule, ...]] = HOST_RULES
    supports_chat: ClassVar[bool] = True
    # The facts name no Webex setting for incoming video (only Stop video for the VP's own):
    # receive-only video transceivers are negotiated inactive, in the client's frame too.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NEGOTIATE_INACTIVE
    capture_all_frames: ClassVar[bool] = True  # the client (and its audio) is in a frame
    end_polls: ClassVar[int] = 2
    gone_polls: ClassVar[int] = 3

    _frame: Frame | None = None
    _url: str = ""
    _browser_join_at: float | None = None
    _form_sent_at: float | None = None
    _passcode_sent = False
    _client_in_page = False
    _panels_at: float = 0.0
    _mic_wanted = False  # True only while the VP speaks (housekeeping keeps it muted otherwise)

    def lobby_words(self, snap: WebexSnapshot) -> str:
        """The lobby's words are in the client frame's text (and the top page's)."""
        return platform_said(decisions.TEXTS["lobby"], decisions.page_text(snap))

    @classmethod
    def web_client_url(cls, url: str) -> str:
        return webex_web_client_url(url)

    @classmethod
    def display_name(cls, name: str) -> str:
        return " ".join(name.split())[:64] or "Virtual Participant"

    @property
    def password(self) -> str | None:
        return password_of(self._url) or self.settings.passcode

    # -- the client frame ------------------------------------------------------------------
    @property
    def ui(self) -> Frame:
        """The client's frame (valid once :meth:`client_frame` found it)."""
        return self._frame if self._frame is not None else self.page.main_frame

    async def client_frame(self) -> Frame | None:
        """The web client's (cross-origin) frame, found by its element in the page."""
        if self._frame is not None and not self._frame.is_detached():
            return self._frame
        self._frame = None
        try:
            handle = await self.page.query_selector(CLIENT_FRAME)
            frame = await handle.content_frame() if handle is not None else None
        except PlaywrightError:
            if self.page.is_closed():
                raise
            return None
        if frame is not None and frame.url not in ("", "about:blank"):
            self._frame = frame
        return self._frame

    async def snapshot(self) -> WebexSnapshot | None:
        top = cast("WebexTop | None", await read_snapshot(self.page, self.script.fn("top")))
        if top is None:
            return None
        client: WebexClient | None = None
        frame = await self.client_frame() if top["clientFrame"] else None
        if frame is not None:
            client = cast(
                "WebexClient | None", await read_snapshot(frame, self.script.fn("client"))
            )
        elif not top["clientFrame"]:
            # Newer j.php builds run the client in the main frame (runInOwnPage=true).
            here = cast(
                "WebexClient | None", await read_snapshot(self.page, self.script.fn("client"))
            )
            if here is not None and (self._client_in_page or _is_client(here)):
                self._client_in_page = True  # its end screens are the client's too
                client = here
        return {"top": top, "client": client}

    async def read_join(self) -> WebexSnapshot | None:
        return await self.snapshot()

    read_meeting = read_join

    async def _visible(self, where: Frame, selector: str) -> Locator | None:
        return await first_visible(where, selector, self.page)

    async def _click(self, where: Frame, selector: str, timeout: float = 2.0) -> bool:
        return await click_first_visible(where, selector, self.page, timeout)

    # -- join -------------------------------------------------------------------------------
    async def open(self, url: str) -> None:
        self._url = url
        await self.page.goto(url, wait_until="domcontentloaded")

    def join_state(self, snap: WebexSnapshot) -> JoinState:
        return decisions.join_state(
            snap, passcode_sent=self._passcode_sent, has_passcode=bool(self.password)
        )

    async def prejoin_step(self, snap: WebexSnapshot) -> float | None:
        top, client = snap["top"], snap["client"]
        main = self.page.main_frame
        if top["cookie"]:
            for selector in COOKIE_BUTTONS:
                if await self._click(main, selector, 1.0):
                    break
        now = time.monotonic()
        if client is None:
            due = self._browser_join_at is None or now - self._browser_join_at > 5
            if not top["clientFrame"] and due and await self._join_from_browser():
                self._browser_join_at = time.monotonic()
            return None
        frame = self.ui
        ack = decisions.ack_button(client)
        if ack is not None:
            await self._click(frame, f'[role="dialog"] mdc-button:text-is("{ack}")', 1.0)
            await self._click(frame, f'[role="dialog"] button:text-is("{ack}")', 1.0)
            return None
        if client["password"]:
            passcode = self.password
            if passcode and not client["passwordError"]:
                field_ = await self._visible(frame, PASSWORD_INPUT)
                if field_ is not None:
                    await type_into(self.page, field_, passcode, delay_ms=10)
                    self._passcode_sent = True
                    if not await self._click(frame, PASSWORD_NEXT, 1.5):
                        await field_.press("Enter")
                    return 0.5
            return None
        if client["nameInput"] and (self._form_sent_at is None or now - self._form_sent_at > 5):
            await self._fill_form(frame, client)
            self._form_sent_at = time.monotonic()
        elif not client["nameInput"] and client["joinEnabled"]:
            # The enterprise interstitial after the guest form: audio and video off, Join.
            await self._mute(frame, client)
            await self._click(frame, JOIN_BUTTON, 2.0)
            return 0.5
        return None

    async def _join_from_browser(self) -> bool:
        main = self.page.main_frame
        return await self._click(main, JOIN_FROM_BROWSER, 2.0) or await self._click(
            main, "#fallBkJoinByBrowser", 2.0
        )

    async def _fill_form(self, frame: Frame, client: WebexClient) -> None:
        """Name, placeholder email (real key events: the form enables Join on them), mic and
        camera off, then Join."""
        name_field = await self._visible(frame, NAME_INPUT)
        if name_field is not None:
            await type_into(self.page, name_field, self.me, delay_ms=10)
        if client["emailInput"]:
            email_field = await self._visible(frame, EMAIL_INPUT)
            if email_field is not None:
                await type_into(self.page, email_field, GUEST_EMAIL, delay_ms=5)
        if not client["joinButton"] and await self._visible(frame, GUEST_NEXT) is not None:
            # Enterprise: the guest form's Next; the interstitial then has the controls.
            await self._click(frame, GUEST_NEXT + ":not([disabled])", 2.0)
            return
        await self._mute(frame, client)
        for _ in range(10):
            snap = await read_snapshot(frame, self.script.fn("client"))
            if snap is not None and snap["joinEnabled"]:
                break
            await asyncio.sleep(0.2)
        await self._click(frame, JOIN_BUTTON, 2.0)

    async def _mute(self, frame: Frame, client: WebexClient) -> bool:
        acted = False
        if decisions.mic_on(client) and not self._mic_wanted:
            acted |= await self._click(frame, MIC_BUTTON, 1.0)
        if decisions.camera_on(client):
            acted |= await self._click(frame, CAMERA_BUTTON, 1.0)
        return acted

    async def settle_in(self) -> None:
        """After admission: microphone and camera off, participants and chat panels open."""
        for _ in range(8):
            snap = await self.read_meeting()
            if snap is None or snap["client"] is None:
                await asyncio.sleep(self.join_poll_s)
                continue
            if not await self._tidy(snap["client"], force=True):
                break
            await asyncio.sleep(self.join_poll_s)

    async def _tidy(self, client: WebexClient, force: bool = False) -> bool:
        frame = self.ui
        acted = await self._mute(frame, client)
        now = time.monotonic()
        if force or now - self._panels_at > 5:
            self._panels_at = now
            if not client["rosterOpen"]:
                acted |= await self._click(frame, ROSTER_TOGGLE, 1.0)
            if not client["chatOpen"]:
                acted |= await self._click(frame, CHAT_TOGGLE, 1.0)
        return acted

    async def housekeeping(self, snap: WebexSnapshot) -> None:
        if snap["client"] is not None:
            await self._tidy(snap["client"])

    # -- microphone -------------------------------------------------------------------------
    async def set_microphone(self, on: bool) -> bool:
        """The client's ``mdc-button[data-test="microphone-button"]`` ("Unmute" while muted,
        "Mute" while not; AS, L-wx), in whichever frame runs the client."""
        self._mic_wanted = on
        await self.client_frame()  # re-found if it was replaced; else the main frame
        # The enterprise client's own control is #audioControlButton (L-wx).
        enterprise = await self.ui.locator(ENTERPRISE_MIC).count() > 0
        return await toggle_microphone(
            self.ui,
            on,
            unmute_label="Unmute",
            mute_label="Mute",
            element=ENTERPRISE_MIC if enterprise else "mdc-button",
        )

    def voice_frame(self) -> Frame | None:
        """The client's frame calls ``getUserMedia``: the VP's voice is played there."""
        return self._frame if self._frame is not None and not self._frame.is_detached() else None

    # -- leave / chat -----------------------------------------------------------------------
    async def leave(self) -> None:
        await self.client_frame()  # re-found if it was replaced; else the main frame
        frame = self.ui
        if not await self._click(frame, LEAVE_BUTTON, 2.0):
            return
        await self._click(frame, LEAVE_CONFIRM, 2.0)
        await self.wait_until_left(12)

    async def send_chat(self, text: str) -> None:
        body = await self.chat_body(text)
        if not body:
            return
        frame = self.ui

        async def prepare() -> None:
            if await self._visible(frame, CHAT_EDITOR) is None:
                await self._click(frame, CHAT_TOGGLE, 2.0)
                await frame.locator(CHAT_EDITOR).first.wait_for(state="visible", timeout=3000)

        async def write(_attempt: int) -> bool:
            editor = frame.locator(CHAT_EDITOR).first
            # A rich editor: the text goes in as one input event, then Enter sends.
            if not await type_into(self.page, editor, body, paste=True):
                return False
            await self.page.keyboard.press("Enter")
            return True

        await send_chat_confirmed(
            "Webex", write, lambda: self.own_chat_keys(body), prepare=prepare, confirm_s=3.0
        )


def _is_client(snap: WebexClient) -> bool:
    """Whether the main frame shows the web client itself (any of its pages)."""
    return any(snap[key] for key in ("password", "captcha", "nameInput", "lobby", "inMeeting"))
