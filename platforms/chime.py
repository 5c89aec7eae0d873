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
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from platforms.base import (
    ChatReceived,
    DriverSettings,
    EventSink,
    MeetingOver,
    ParticipantsChanged,
    PlatformDriver,
    SpeakerChanged,
    WaitingRoom,
)
from vp.errors import InvalidUrl, JoinError, VpError
from vp.lifecycle import Reason
from vp.urls import HostRule

WEB_CLIENT = "https://app.chime.aws/meetings/{meeting_id}"
SYSTEM_SENDER = "Amazon Chime"
_MEETING_ID = re.compile(r"\d{10}")

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

# -- page texts -----------------------------------------------------------------------------
_Q = "['’]"  # the live client uses typographic apostrophes; match both
NOT_FOUND = re.compile(
    rf"meeting not found|(isn{_Q}t|is not|not) a valid meeting id|meeting id (isn{_Q}t|is not)"
    rf" valid|invalid meeting id|couldn{_Q}t find (the|that|this|a) meeting|meeting"
    rf" (does not|doesn{_Q}t) exist|meeting (has )?expired",
    re.I,
)
LOGIN_REQUIRED = re.compile(
    r"sign in to join|only (open|available) to (registered|signed[- ]in)|(must|need to) sign in"
    r"|requires? (you to )?sign in",
    re.I,
)
CAPTCHA = re.compile(
    rf"confirm (that )?you are (a )?human|verify (that )?you{_Q}?(re| are) (a )?(human|real"
    rf" person|not a (ro)?bot)|type the characters you see|complete the security check",
    re.I,
)
DENIED = re.compile(
    rf"request to join (the meeting )?(was|has been) (denied|declined|rejected)|weren{_Q}t"
    rf" admitted|were not admitted|denied (you )?(access|entry)|you (were|have been) denied",
    re.I,
)
WRONG_PASSCODE = re.compile(
    r"(incorrect|invalid|wrong) (moderator )?passcode|passcode (is |was )?(incorrect|invalid"
    r"|wrong)",
    re.I,
)
WAITING = re.compile(
    r"waiting room|request to join (the meeting )?(has been|was) (received|sent)|as soon as"
    r" someone in the meeting admits you|waiting (to be admitted|for someone to admit)",
    re.I,
)
WAITING_FOR_MODERATOR = re.compile(
    rf"won{_Q}t start until (a|the) moderator|waiting for (a|the) moderator|hasn{_Q}t"
    rf" started",
    re.I,
)
ENDED = re.compile(
    r"your meeting has ended|the meeting has ended|meeting has been ended|host ended the meeting",
    re.I,
)
REMOVED = re.compile(
    rf"(you{_Q}ve|you have) been removed|removed you from (the|this) meeting|you were removed",
    re.I,
)
_NO_SPEAKER = frozenset({"", "no one", "nobody", "none", "-"})

# One round trip reads everything join() and watch() need. Text is the visible page text
# outside the chat list, the roster and the chat box (people may type anything there), and
# — while the meeting controls are up — outside transient alerts/toasts.
_STATE_JS = r"""
() => {
  const q = (s) => document.querySelector(s);
  const visible = (el) => {
    if (!el || !el.isConnected) return false;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    const cs = getComputedStyle(el);
    return cs.visibility !== 'hidden' && cs.display !== 'none';
  };
  const anyVisible = (sel) => Array.from(document.querySelectorAll(sel)).some(visible);
  const controlBar = anyVisible('nav[data-testid="control-bar"]');
  const chatToggle = anyVisible('button[aria-label^="Open chat panel"],'
    + 'button[aria-label^="Close chat panel"]');
  const chatList = q('._2B9DdDvc2PdUbvEGXfOU20');
  const skip = ['._2B9DdDvc2PdUbvEGXfOU20', 'textarea', '._1IEUbelvxVpEblfF0Mula8',
    'script', 'style', 'noscript'];
  if (controlBar) skip.push('[role="alert"]', '[role="status"]', '.Toasts');
  const skipSel = skip.join(',');
  let text = '';
  if (document.body) {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Map();
    for (let n = walker.nextNode(); n && text.length < 6000; n = walker.nextNode()) {
      const el = n.parentElement;
      const t = n.data.trim();
      if (!t || !el || el.closest(skipSel)) continue;
      let ok = seen.get(el);
      if (ok === undefined) {
        ok = el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
        seen.set(el, ok);
      }
      if (ok) text += t + '\n';
    }
  }
  // Roster: names in the "Present" section (the VP is listed too).
  let present = null;
  for (const sec of document.querySelectorAll('._1IEUbelvxVpEblfF0Mula8')) {
    const head = sec.querySelector('button[data-testid="collapse-container"]');
    if (!head || !/^present/i.test(head.getAttribute('aria-label') || '')) continue;
    present = Array.from(sec.querySelectorAll('.ppi5x8cvVEQgbl_hLeiRW'))
      .map((e) => e.textContent.trim()).filter(Boolean);
  }
  let presentCount = null;
  const countBtn = q('button[data-testid="collapse-container"][aria-label^="Present"]');
  if (countBtn) {
    const m = (countBtn.textContent || '').match(/\d+/)
      || (countBtn.getAttribute('aria-label') || '').match(/\d+/);
    if (m) presentCount = parseInt(m[0], 10);
  }
  // Chat: senders are left out on grouped follow-ups; they inherit the previous one.
  let chat = null;
  if (chatList) {
    chat = [];
    let last = '';
    const items = chatList.querySelectorAll('.chatBubbleContainer');
    const rows = items.length ? items : chatList.children;
    for (const row of rows) {
      const s = row.querySelector('h3[data-testid="chat-bubble-sender-name"]');
      if (s) last = s.textContent.trim();
      const body = row.querySelector('.Linkify') || row.querySelector('.markdown p');
      if (body) chat.push([last, body.textContent.trim()]);
    }
  }
  const speakerEl = q('.activeSpeakerCell ._3yg3rB2Xb_sfSzRXkm8QT-');
  const nameEl = q('#name, input[id="name"], input[name="name"]');
  const dialogButtons = [];
  for (const d of document.querySelectorAll('[role="dialog"], [role="alertdialog"]')) {
    if (!visible(d)) continue;
    for (const b of d.querySelectorAll('button')) {
      if (visible(b)) dialogButtons.push((b.textContent || '').trim());
    }
  }
  // A captcha challenge (AWS WAF's page, a reCAPTCHA challenge frame) — not a mere badge.
  const captchaEl = anyVisible('#captcha-container, .amzn-captcha-modal,'
    + ' iframe[src*="captcha" i][title*="challenge" i]');
  return {
    url: location.href,
    text,
    cookie: anyVisible('button[data-id="awsccc-cb-btn-accept"]'),
    name: visible(nameEl),
    deviceJoin: anyVisible('button[data-test-id="DevicePreviewJoinBtn"],'
      + 'button[data-testid="button"][aria-label="Join"]'),
    passcodeInput: anyVisible('input[type="password"], input[aria-label*="passcode" i]'),
    inMeeting: controlBar || chatToggle,
    controlBar,
    captcha: captchaEl,
    dialogButtons,
    speaker: speakerEl ? speakerEl.textContent.trim() : null,
    present,
    presentCount,
    chat,
    chatOpen: !!chatList && anyVisible('textarea[placeholder="Message all attendees"],'
      + 'textarea[data-testid="textarea"]'),
    chatToggle: anyVisible('button[aria-label^="Open chat panel"]'),
    rosterToggle: anyVisible('button[aria-label^="Open attendees panel"]'),
    mic: (q('button#audio') || {getAttribute: () => null}).getAttribute('aria-label'),
    video: (q('button#video') || {getAttribute: () => null}).getAttribute('aria-label'),
  };
}
"""

# Texts of dialog buttons that only acknowledge a notice (recording, tips…).
_ACK_BUTTONS = re.compile(r"^(ok|okay|got it|dismiss|close|continue|i understand)$", re.I)


def meeting_id_of(url: str) -> str | None:
    """The 10-digit meeting id of a Chime invite link, or None."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    m = re.fullmatch(r"/meetings/(\d{10})", path) or re.fullmatch(r"/(\d{10})", path)
    if m:
        return m.group(1)
    if path in ("", "/meetings"):
        pins = parse_qs(parts.query).get("pin") or []
        if pins:
            pin = re.sub(r"[\s-]", "", pins[0])
            if _MEETING_ID.fullmatch(pin):
                return pin
    return None


@dataclass
class _Debounce:
    """Counts consecutive polls a signal has been seen on."""

    counts: dict[str, int] = field(default_factory=dict)

    def see(self, signals: set[str]) -> dict[str, int]:
        self.counts = {s: self.counts.get(s, 0) + 1 for s in signals}
        return self.counts


class ChimeDriver(PlatformDriver):
    name: ClassVar[str] = "chime"
    host_rules: ClassVar[tuple[HostRule, ...]] = (HostRule("chime.aws"), HostRule("*.chime.aws"))
    supports_chat: ClassVar[bool] = True
    capture_track_filter_js: ClassVar[str | None] = None  # one mixed stream, one element

    # Consecutive polls an end signal must hold: texts/URL 2, the controls merely gone 3.
    END_POLLS = 2
    GONE_POLLS = 3
    STEP = 0.25  # join-loop poll period (s)

    # -- URLs ------------------------------------------------------------------------------
    @classmethod
    def web_client_url(cls, url: str) -> str:
        meeting_id = meeting_id_of(url)
        if meeting_id is None:
            raise InvalidUrl(
                "not an Amazon Chime meeting link (expected app.chime.aws/meetings/<10-digit id>)"
            )
        return WEB_CLIENT.format(meeting_id=meeting_id)

    @classmethod
    def display_name(cls, name: str) -> str:
        cleaned = " ".join(name.split())
        return cleaned[:64] or "Virtual Participant"

    # -- state ------------------------------------------------------------------------------
    _app_host: str | None = None
    _names: tuple[str, ...] | None = None
    _speaker: str | None = None
    _chat_seen: Counter[tuple[str, str]]
    _panel_tries: float = 0.0

    def __init__(self, page: Page, settings: DriverSettings, emit: EventSink) -> None:
        super().__init__(page, settings, emit)
        self._chat_seen = Counter()

    @property
    def _me(self) -> str:
        return self.display_name(self.settings.name)

    def _is_me(self, sender: str) -> bool:
        me = self._me
        return sender in (me, "You", "Me") or sender.startswith(f"{me} (")

    async def _state(self) -> dict[str, Any] | None:
        """One snapshot of the page; None while a navigation replaces the document."""
        try:
            state: dict[str, Any] = await self.page.evaluate(_STATE_JS)
        except PlaywrightError:
            if self.page.is_closed():
                raise
            return None
        return state

    async def _visible(self, selector: str) -> Locator | None:
        """The first visible match of ``selector`` (a comma list is tried in order)."""
        for part in _split_selector(selector):
            loc = self.page.locator(part)
            try:
                count = await loc.count()
                for i in range(min(count, 5)):
                    item = loc.nth(i)
                    if await item.is_visible():
                        return item
            except PlaywrightError:
                if self.page.is_closed():
                    raise
        return None

    async def _click(self, selector: str, timeout: float = 2.0) -> bool:
        target = await self._visible(selector)
        if target is None:
            return False
        try:
            await target.click(timeout=timeout * 1000)
        except PlaywrightError:
            if self.page.is_closed():
                raise
            return False
        return True

    # -- join ---------------------------------------------------------------------------------
    async def join(self, url: str) -> None:
        page = self.page
        await page.goto(url, wait_until="domcontentloaded")
        name_sent_at: float | None = None
        device_sent_at: float | None = None
        passcode_sent = False
        waiting = False
        while True:
            state = await self._state()
            if state is None:
                await asyncio.sleep(self.STEP)
                continue
            text: str = state["text"]
            self._check_failures(state, text, passcode_sent)
            if state["cookie"]:
                await self._click(COOKIE_ACCEPT, 1.0)

            moderator_wait = bool(WAITING_FOR_MODERATOR.search(text))
            if moderator_wait and self.settings.passcode and not passcode_sent:
                passcode_sent = await self._enter_moderator_passcode(self.settings.passcode)
                await asyncio.sleep(self.STEP)
                continue
            # The waiting room is decided before any in-meeting check.
            held = bool(WAITING.search(text)) or moderator_wait
            if held and not waiting:
                self.emit(WaitingRoom())
            waiting = held
            if held:
                await asyncio.sleep(self.STEP)
                continue

            if state["inMeeting"]:
                break
            now = time.monotonic()
            if state["name"] and (name_sent_at is None or now - name_sent_at > 5):
                await self._enter_name()
                name_sent_at = time.monotonic()
            elif (
                state["deviceJoin"]
                and (device_sent_at is None or now - device_sent_at > 5)
                and await self._device_setup()
            ):
                device_sent_at = time.monotonic()
            await asyncio.sleep(self.STEP)
        self._app_host = urlsplit(page.url).hostname
        await self._settle_in()

    def _check_failures(self, state: dict[str, Any], text: str, passcode_sent: bool) -> None:
        """Raise the JoinError a refusal screen stands for (fast, no waiting)."""
        url = urlsplit(state["url"])
        if state["captcha"] or CAPTCHA.search(text):
            raise JoinError("a captcha / bot check blocks the join", reason=Reason.CAPTCHA)
        if re.search(r"(^|/)(sign-?in|login|oauth)(/|$)", url.path, re.I):
            raise JoinError("the meeting requires signing in", reason=Reason.LOGIN_REQUIRED)
        # Pages that let a guest go on (name, device setup, lobby) may still offer "Sign in".
        guest_path = state["name"] or state["deviceJoin"] or WAITING.search(text)
        if LOGIN_REQUIRED.search(text) and not guest_path:
            raise JoinError("the meeting requires signing in", reason=Reason.LOGIN_REQUIRED)
        if DENIED.search(text):
            raise JoinError("the request to join was denied", reason=Reason.DENIED)
        if passcode_sent and WRONG_PASSCODE.search(text):
            raise JoinError("the moderator passcode was refused", reason=Reason.WRONG_PASSCODE)
        if NOT_FOUND.search(text):
            raise JoinError("the meeting was not found", reason=Reason.MEETING_NOT_FOUND)

    async def _enter_name(self) -> None:
        """Type the name with real key events (the button enables on them), then submit."""
        page = self.page
        field_ = await self._visible(NAME_INPUT)
        if field_ is None:
            return
        name = self._me
        await field_.click(timeout=2000)
        await page.keyboard.press("ControlOrMeta+A")
        await page.keyboard.press("Backspace")
        await page.keyboard.type(name, delay=15)
        if (await field_.input_value()).strip() != name:
            await field_.fill(name[:-1])
            await page.keyboard.type(name[-1:])
        if not await self._click(NAME_SUBMIT, 1.0):
            await field_.press("Tab")  # LMA: Tab to the button, then Enter
            await page.keyboard.press("Enter")

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
        await field_.click(timeout=2000)
        await field_.fill("")
        await self.page.keyboard.type(passcode, delay=15)
        await field_.press("Enter")
        return True

    async def _settle_in(self) -> None:
        """After admission: dismiss notices, mic and camera off, chat and roster open."""
        for _ in range(8):
            state = await self._state()
            if state is None:
                await asyncio.sleep(self.STEP)
                continue
            if await self._housekeeping(state, force=True):
                await asyncio.sleep(self.STEP)
                continue
            break
        state = await self._state()
        if state is not None:
            # Who is here before JOINED, so the call starts with the right speaker. Chat is
            # left to watch(): the client only shows what was said since the VP joined.
            self._note_people(state)
            self._note_speaker(state)

    async def _housekeeping(self, state: dict[str, Any], force: bool = False) -> bool:
        """Dismiss notices, keep mic/camera off and the panels open; True if it acted."""
        acted = False
        for label in state["dialogButtons"]:
            if _ACK_BUTTONS.match(label):
                acted |= await self._click(f'[role="dialog"] button:text-is("{label}")', 1.0)
                break
        if acted:
            return True
        mic = state["mic"] or ""
        if mic.lower().startswith("mute"):  # "Mute my microphone": it is on
            acted |= await self._click(MIC_BUTTON, 1.0)
        video = state["video"] or ""
        if re.match(r"(turn off|stop)", video, re.I):
            acted |= await self._click(VIDEO_BUTTON, 1.0)
        now = time.monotonic()
        if force or now - self._panel_tries > 5:
            self._panel_tries = now
            if state["chatToggle"] and not state["chatOpen"]:
                acted |= await self._click(CHAT_OPEN, 1.0)
            if state["rosterToggle"] and state["present"] is None:
                acted |= await self._click(ROSTER_OPEN, 1.0)
        return acted

    # -- watch --------------------------------------------------------------------------------
    def _note_people(self, state: dict[str, Any]) -> tuple[str, ...] | None:
        present = state["present"]
        if present is None:
            # Names unknown; the "Present" count (the VP included) still tells "alone".
            return () if state["presentCount"] == 1 else None
        names = list(present)
        if self._me in names:
            names.remove(self._me)  # the roster lists the VP too
        current = tuple(names)
        if current != self._names:
            self._names = current
            self.emit(ParticipantsChanged(current))
        return current

    def _note_speaker(self, state: dict[str, Any]) -> None:
        speaker = (state["speaker"] or "").strip()
        if speaker.lower() in _NO_SPEAKER or speaker == self._me or speaker == self._speaker:
            return
        self._speaker = speaker
        self.emit(SpeakerChanged(speaker))

    def _note_chat(self, state: dict[str, Any]) -> None:
        """Emit lines not seen before. A seen multiset, not a position: a panel re-mount
        re-renders the same lines and a windowed list drops old ones from the top."""
        chat = state["chat"]
        if chat is None:
            return  # the panel is closed; housekeeping reopens it
        here: Counter[tuple[str, str]] = Counter()
        for sender, text in chat:
            key = (sender, text)
            here[key] += 1
            if here[key] <= self._chat_seen[key]:
                continue
            self._chat_seen[key] = here[key]
            if sender and text and not self._is_me(sender) and sender != SYSTEM_SENDER:
                self.emit(ChatReceived(sender, text))

    def _end_signals(self, state: dict[str, Any]) -> set[str]:
        signals: set[str] = set()
        text: str = state["text"]
        if REMOVED.search(text):
            signals.add("removed")
        elif ENDED.search(text):
            signals.add("ended")
        url = state["url"]
        host = urlsplit(url).hostname
        if url.startswith("about:blank") or (self._app_host and host != self._app_host):
            signals.add("navigated")
        if not state["inMeeting"]:
            signals.add("gone")
        return signals

    async def watch(self) -> MeetingOver:
        debounce = _Debounce()
        alone_since: float | None = None
        while True:
            state = await self._state()
            signals = {"gone"} if state is None else self._end_signals(state)
            counts = debounce.see(signals)
            if counts.get("removed", 0) >= self.END_POLLS:
                return MeetingOver(Reason.REMOVED, "removed from the meeting")
            if counts.get("ended", 0) >= self.END_POLLS:
                return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
            if counts.get("navigated", 0) >= self.END_POLLS:
                return MeetingOver(Reason.HOST_ENDED, "the page left the meeting")
            if counts.get("gone", 0) >= self.GONE_POLLS:
                return MeetingOver(Reason.HOST_ENDED, "the meeting controls went away")
            if state is not None and state["inMeeting"]:
                if not signals & {"ended", "removed"}:  # an end notice is not dismissed
                    await self._housekeeping(state)
                names = self._note_people(state)
                self._note_speaker(state)
                self._note_chat(state)
                now = time.monotonic()
                if names is None or names:
                    alone_since = None
                elif alone_since is None:
                    alone_since = now
                elif now - alone_since >= self.settings.alone_timeout:
                    return MeetingOver(Reason.ALONE, "no other participant")
            await asyncio.sleep(self.settings.poll_interval)

    # -- leave / chat -------------------------------------------------------------------------
    async def leave(self) -> None:
        if not await self._click(LEAVE_BUTTON, 2.0):
            return
        await self._click(LEAVE_CONFIRM, 2.0)
        for _ in range(12):
            state = await self._state()
            if state is not None and not state["inMeeting"]:
                return
            await asyncio.sleep(self.STEP)

    async def _own_count(self, text: str) -> int:
        state = await self._state()
        if state is None or state["chat"] is None:
            return 0
        return sum(1 for s, t in state["chat"] if self._is_me(s) and t == text)

    async def send_chat(self, text: str) -> None:
        body = text.strip()
        if not body:
            return
        state = await self._state()
        if state is None or not state["inMeeting"]:
            raise VpError("not in the meeting: the chat is gone")
        box = await self._visible(CHAT_INPUT)
        if box is None:
            await self._click(CHAT_OPEN, 2.0)
            box = self.page.locator(CHAT_INPUT).first
            await box.wait_for(state="visible", timeout=3000)
        for _ in range(2):
            before = await self._own_count(body)
            # fill() fires input events, so the app's model (what Enter sends) gets the text.
            await box.fill(text)
            await box.press("Enter")
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                if await self._own_count(body) > before:
                    return
                await asyncio.sleep(0.2)
        raise VpError("the chat message did not appear in the meeting chat")


def _split_selector(selector: str) -> list[str]:
    """Split a comma list of selectors at top level (not inside quotes or brackets)."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    for i, ch in enumerate(selector):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(selector[start:i].strip())
            start = i + 1
    parts.append(selector[start:].strip())
    return [p for p in parts if p]
