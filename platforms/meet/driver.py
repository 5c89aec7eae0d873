"""Google Meet (``meet.google.com``), joined as an anonymous guest from the web.

Written for the real web client from ``shared/facts/web-clients-meet-webex.md`` (Google
Meet). URL rules: :mod:`platforms.meet.urls`; page reads: ``page.js``; decisions:
:mod:`platforms.meet.decisions`.

Join
    The page is opened with ``hl=en`` (the decisions match English texts). One snapshot per
    250 ms; the driver acts on the first thing that applies: a refusal (reCAPTCHA, sign-in wall,
    not found, "You can't join this video call" — retried once with a fresh load, never in a
    loop —, denied) → a dialog to answer ("Continue without microphone and camera", "Use
    without an account", "Got it", and the recording / "Gemini is taking notes" notice, whose
    right answer is its own "Join now": hiding or dismissing it gets guests ejected) → lobby
    texts ("Asking to be let in…", WAITING_ROOM) → admitted (a participant tile other than the
    effects tile, ``[data-self-name]`` or the captions button; never "Leave call", which the
    lobby renders too) → pre-join: microphone and camera off by their aria-label states, the
    name typed with real key events, then the join button by its text ("Ask to join", "Join
    now", "Join the call now", "Join anyway", "Ask to join anyway", "Join here too", "Switch
    here").

    Every click is a real mouse click at the element (page.js ``point`` finds it and checks
    that nothing covers it): Meet ignores synthetic clicks (Vexa), and the DOM is never
    changed (hiding Meet's notices gets guests ejected, attendee#604).

Meeting
    One snapshot per second: the speaker from the tile carrying a speaking indicator class, the
    participants from the tiles (and the People panel when open) and the avatar count, chat from
    the panel (messages exist only while it is open: "Chat with everyone" keeps it open), and
    the end texts ("Your host ended the meeting for everyone", "You've been removed from the
    meeting", …) once "Leave call" is gone, debounced over polls.

Chat
    "Chat with everyone" opens the panel; the ``textarea[aria-label="Send a message"]`` gets the
    value with an input event, then Enter (A-js); confirmed in the list (sender = the VP's name,
    V-chat), retried once. Messages are capped at 500 characters (J, BaaS).

Audio
    Meet plays the three loudest speakers on three ``<audio>`` elements directly under ``body``,
    fed by an anonymous rotating pool (speakers move between slots). The capture script takes
    each remote track once (by track id: the peer connection's track and the element's are the
    same track) and sums them, so a speaker moving slots is neither lost nor doubled. In the
    variant with no ``<audio>`` elements the same peer-connection tracks are captured (and a
    WebAudio graph playing them is heard through its tap, the tracks not taken twice): no
    track filter is needed.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import structlog
from playwright.async_api import Error as PlaywrightError

from platforms.base import JoinState, Phase, PolledDriver, Refused
from platforms.meet import decisions
from platforms.meet.decisions import MeetSnapshot
from platforms.meet.urls import HOST_RULES, NAVIGATION_RULES, with_english
from platforms.meet.urls import display_name as meet_display_name
from platforms.meet.urls import web_client_url as meet_web_client_url
from platforms.toolkit import poll_until, send_chat_confirmed, toggle_microphone, type_into
from vp.errors import VpError
from vp.incoming_video import IncomingVideo
from vp.lifecycle import Reason
from vp.urls import HostRule

log = structlog.get_logger(__name__)

CHAT_REOPEN_EVERY_S = 5.0
JOIN_CLICK_SETTLE_S = 3.0


class MeetDriver(PolledDriver[MeetSnapshot, MeetSnapshot], decisions=decisions):
    name: ClassVar[str] = "meet"
    host_rules: ClassVar[tuple[HostRule, ...]] = HOST_RULES
    navigation_rules: ClassVar[tuple[HostRule, ...]] = NAVIGATION_RULES
    supports_chat: ClassVar[bool] = True
    chat_limit: ClassVar[int] = 500
    # The facts name no Meet setting for incoming video (only the VP's own camera, Ctrl+E):
    # receive-only video transceivers are negotiated inactive.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NEGOTIATE_INACTIVE
    # Every remote track once (the three pool slots, or the no-<audio> variant's tracks).
    capture_track_filter_js: ClassVar[str | None] = None
    end_polls: ClassVar[int] = 2
    gone_polls: ClassVar[int] = 4
    people_polls: ClassVar[int] = 2
    # "You can't join this video call" is retried with a fresh load this many times.
    block_retries: ClassVar[int] = 1

    _target = ""
    _block_retries_used = 0
    _reload_due = False
    _join_clicks = 0
    _last_click = 0.0
    _last_chat_open = -CHAT_REOPEN_EVERY_S

    web_client_url = staticmethod(meet_web_client_url)
    display_name = staticmethod(meet_display_name)

    async def read_join(self) -> MeetSnapshot | None:
        snap: MeetSnapshot | None = await self.call("snapshot")
        return snap

    read_meeting = read_join

    async def click(self, what: str) -> str | None:
        """Click ``what`` (see page.js ``point``) with the real mouse: Meet ignores synthetic
        (isTrusted=false) clicks (Vexa). Returns the label clicked, None when nothing was."""
        point = await self.call("point", what)
        if not point:
            return None
        try:
            await self.page.mouse.click(point["x"], point["y"])
        except PlaywrightError:
            if self.page.is_closed():
                raise
            return None
        return str(point.get("label") or what)

    async def media_off(self) -> list[str]:
        """Microphone and camera off (each clicked only while its aria-label says it is on)."""
        return [what for what in ("microphone", "camera") if await self.click(what)]

    # -- join -----------------------------------------------------------------------------
    async def open(self, url: str) -> None:
        self._target = with_english(url)
        await self._goto()

    async def _goto(self) -> None:
        try:
            await self.page.goto(self._target, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            if self.page.is_closed() or "interrupted" not in str(exc).lower():
                raise

    def join_state(self, snap: MeetSnapshot) -> JoinState:
        if self._reload_due:
            return Phase.PREJOIN
        state = decisions.join_state(snap, was_in_lobby=self._in_lobby)
        if (
            isinstance(state, Refused)
            and state.reason is Reason.BLOCKED
            and self._block_retries_used < self.block_retries
        ):
            # Attendee and Meeting-BaaS retry this screen; once, never in a loop.
            self._block_retries_used += 1
            self._reload_due = True
            log.info("meet.blocked_retry", attempt=self._block_retries_used)
            return Phase.PREJOIN
        return state

    async def prejoin_step(self, snap: MeetSnapshot) -> float | None:
        if self._reload_due:
            self._reload_due = False
            self._join_clicks = 0
            await asyncio.sleep(1.0)
            await self._goto()
            return None
        if snap["dialog"] is not None:
            label = await self.click("dialog")
            if label is not None:
                log.info("meet.dialog_answered", button=label)
            return None
        if self._join_clicks and time.monotonic() - self._last_click < JOIN_CLICK_SETTLE_S:
            return None  # give the click time to land
        changed = bool(await self.media_off())
        name = snap["name"]
        if name is not None and name.get("value") != self.me:

            async def focus() -> bool:
                return bool(await self.call("focusName"))

            await type_into(self.page, focus, self.me)
            changed = True
        if not changed and snap["join"] and not snap["joinDisabled"]:
            clicked = await self.click("join")
            if clicked:
                self._join_clicks += 1
                self._last_click = time.monotonic()
                log.info("meet.join_clicked", button=clicked, attempt=self._join_clicks)
        return None

    async def settle_in(self) -> None:
        """After admission: answer a notice that follows admission, open the chat panel."""
        for _ in range(8):
            snap = await self.read_meeting()
            if snap is None:
                await asyncio.sleep(self.join_poll_s)
                continue
            if snap["dialog"] is not None:
                await self.click("dialog")
            elif snap["mic"] or snap["camera"]:
                await self.media_off()
            elif not snap["chatInput"]:
                await self._open_chat(wait=False)
            else:
                return
            await asyncio.sleep(self.join_poll_s)

    # -- watch ----------------------------------------------------------------------------
    async def housekeeping(self, snap: MeetSnapshot) -> None:
        """Answer notices (the recording / Gemini one with "Join now"), keep the chat panel
        open (messages exist in the DOM only then)."""
        if snap["dialog"] is not None:
            await self.click("dialog")
            return
        now = time.monotonic()
        if not snap["chatInput"] and now - self._last_chat_open >= CHAT_REOPEN_EVERY_S:
            await self._open_chat(wait=False)

    async def _open_chat(self, wait: bool = True) -> bool:
        self._last_chat_open = time.monotonic()
        if await self.call("chatOpen"):
            return True
        await self.click("chat")
        if not wait:
            return False

        async def chat_open() -> bool:
            return bool(await self.call("chatOpen"))

        return await poll_until(chat_open, 5.0)

    # -- microphone -----------------------------------------------------------------------
    async def set_microphone(self, on: bool) -> bool:
        """The call bar's ``button[aria-label="Turn on microphone"]`` (muted) / "Turn off
        microphone" (BaaS, A-ui), clicked with the real mouse (Meet ignores synthetic clicks).
        The pointer moves first: the toolbar auto-hides until it does (V-adm)."""
        try:
            await self.page.mouse.move(40, 40)
            await self.page.mouse.move(60, 80)
        except PlaywrightError:
            return False
        return await toggle_microphone(
            self.page, on, unmute_label="Turn on microphone", mute_label="Turn off microphone"
        )

    # -- leave / chat ---------------------------------------------------------------------
    async def leave(self) -> None:
        if not await self.click("leave"):
            try:  # the toolbar auto-hides until the pointer moves (V-adm)
                await self.page.mouse.move(40, 40)
                await self.page.mouse.move(60, 80)
            except PlaywrightError:
                return
            if not await self.click("leave"):
                return
        await self.wait_until_left(16, shown=lambda snap: snap["leaveCall"])

    async def send_chat(self, text: str) -> None:
        body = text.strip()[: self.chat_limit]
        if not body:
            return

        async def prepare() -> None:
            if not await self._open_chat():
                raise VpError("the Google Meet chat panel did not open")

        async def write(attempt: int) -> bool:
            if attempt == 0:
                return bool(await self.call("sendChat", body))

            async def focus() -> bool:
                return bool(await self.call("focusChat"))

            if not await type_into(self.page, focus, body, paste=True):
                return False
            await self.page.keyboard.press("Enter")
            return True

        await send_chat_confirmed(
            "Google Meet", write, lambda: self.own_chat_keys(body), prepare=prepare
        )
