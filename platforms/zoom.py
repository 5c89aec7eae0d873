"""Zoom: the web client, as a guest.

Invites (``https://[sub.]zoom.us/j/<id>?pwd=…`` and friends) are rewritten to the "React" web
client ``https://app.zoom.us/wc/<id>/join?pwd=…`` (VX); the classic client
(``/wc/join/<id>``, which Zoom sometimes redirects guests to) and the ``/j/`` landing page
("Join from your browser") are handled too. Selectors and texts come from
``shared/facts/web-clients.md`` §1, each with fallbacks; every DOM read is one
``evaluate`` returning everything at once.

Join: OneTrust banner, the classic terms dialog, the camera+mic permission portal (click
**Allow**: without it Zoom never joins computer audio), name typed with REAL key events (the
Join button stays ``disabled`` for synthetic setters), passcode from the settings when the URL
has none, mic and camera off, DOM ``click()`` on Join (the form overlay can intercept pointer
events). Failure pages raise :class:`JoinError` at once; the waiting room (rendered inside
``.meeting-app``, so that element alone proves nothing) emits :class:`WaitingRoom`; admission
is the footer's ``button[aria-label="Leave"]``, which never exists before.

Watch: one poll a second reads speaker, roster, chat rows and end signals; end signals
(end/removed modals, leaving the meeting URL) must hold on two consecutive polls, toasts and
``role=alert`` texts are never read as an end, and a missing Leave button (reconnects unmount the
client) ends the meeting only after :data:`UI_GONE_POLLS` polls. Computer audio is joined from the
footer when the client did not join it by itself: the modern client plays remote audio (through
WebAudio) only after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any, ClassVar
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit, urlunsplit

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Locator

from platforms.base import (
    ChatReceived,
    MeetingOver,
    ParticipantsChanged,
    PlatformDriver,
    SpeakerChanged,
    WaitingRoom,
)
from vp.errors import JoinError, VpError
from vp.lifecycle import Reason
from vp.urls import HostRule

log = structlog.get_logger(__name__)

WEB_CLIENT_HOST = "app.zoom.us"
JOIN_POLL_S = 0.25
SETTLE_S = 1.0  # the pre-join page must be quiet (no dialog) this long before we submit
RESUBMIT_AFTER_S = 6.0  # still on the pre-join page this long after Join: click it again (LMA)
PASSCODE_VERDICT_S = 5.0  # a wrong-passcode message still showing this long after a retry
UI_GONE_POLLS = 15  # Leave button and meeting client absent this many polls: the meeting is gone
END_CONFIRM_POLLS = 2
AUDIO_GRACE_S = 2.0  # let the client join computer audio by itself first
CHAT_CONFIRM_S = 4.0

# -- invite URLs ---------------------------------------------------------------------------------
_ID = r"(?P<id>\d[\d -]{7,14}\d)"
_INVITE_PATHS = (
    re.compile(rf"^/(?:j|w|s|wc/join)/{_ID}/?$"),  # invite, webinar, start link, classic client
    re.compile(rf"^/wc/{_ID}/(?:join|start|meeting|videomeeting)/?$"),  # React client paths
)
_PWD = re.compile(r"[A-Za-z0-9]+(?:\.\d+)?")


def _meeting_id(raw: str) -> str | None:
    digits = re.sub(r"[ -]", "", raw)
    return digits if re.fullmatch(r"\d{9,12}", digits) else None


def _rewrite(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    path = parts.path
    query = parse_qs(parts.query, keep_blank_values=True)
    meeting_id: str | None = None
    for pattern in _INVITE_PATHS:
        match = pattern.match(path)
        if match:
            meeting_id = _meeting_id(match.group("id"))
            break
    if meeting_id is None and path.rstrip("/") == "/join" and "confno" in query:
        meeting_id = _meeting_id(query["confno"][0])
    if meeting_id is None:
        return url  # /my/<vanity>, events.zoom.us/ejl/…: Zoom redirects; open as given
    keep: list[tuple[str, str]] = []
    pwd = (query.get("pwd") or [""])[0]
    pwd_match = _PWD.match(pwd)
    if pwd_match:
        keep.append(("pwd", pwd_match.group(0)))
    token = (query.get("tk") or [""])[0]
    if token:
        keep.append(("tk", token))
    if host == "zoomgov.com" or host.endswith(".zoomgov.com"):
        target_host = host  # government cloud: its own web client, never app.zoom.us
    else:
        target_host = WEB_CLIENT_HOST  # zoom.us, vanity subdomains and zoom.com (→ zoom.us)
    return urlunsplit(("https", target_host, f"/wc/{meeting_id}/join", urlencode(keep), ""))


# -- page reads ----------------------------------------------------------------------------------
_LOBBY_RE = (
    r"please wait, the meeting host will let you in soon|host has joined\. we[’']ve let them know"
    r"|waiting for the host to start (this|the) meeting|your host is currently in another meeting"
    r"|you are in the waiting room"
)
_CAPTCHA_RE = (
    r"detected you may be a bot|automated bots aren[’']t allowed|type the characters you see"
    r"|verify you are human|i[’']m not a robot"
)
_INVALID_RE = (
    r"meeting link is invalid|invalid meeting id|meeting (id )?does not exist"
    r"|this meeting id is not valid|meeting not found"
)
_LOGIN_RE = (
    r"sign in to join this meeting|requires authentication|only authenticated users"
    r"|authorized attendees only"
)
_PASSCODE_RE = r"passcode wrong|incorrect pass(code|word)|wrong passcode|invalid passcode"
_ENDED_RE = (
    r"meeting has been ended by (the )?host|meeting has ended"
    r"|the host (has )?ended (this|the) meeting|meeting is end now|this meeting has been ended"
)
_REMOVED_RE = (
    r"you have been removed|removed (you )?from (the|this) meeting|host (has )?removed you"
)

# Everything the join loop needs, in one round trip. Text inside open shadow roots is included:
# the React client's bot wall lives in one.
_JOIN_STATE_JS = """
(re) => {
  const R = (s) => new RegExp(s, 'i');
  const visible = (el) => !!el && el.getClientRects().length > 0 &&
    getComputedStyle(el).visibility !== 'hidden';
  const first = (sels, root) => {
    for (const s of sels) { const el = (root || document).querySelector(s); if (el) return el; }
    return null;
  };
  let text = document.body ? document.body.innerText : '';
  const frames = Array.from(document.querySelectorAll('iframe')).map((f) => f.src || '');
  const shadows = [];
  for (const el of document.querySelectorAll('*')) if (el.shadowRoot) shadows.push(el.shadowRoot);
  for (const sr of shadows) {
    text += '\\n' + sr.textContent;
    for (const f of sr.querySelectorAll('iframe')) frames.push(f.src || '');
  }
  const modalTexts = Array.from(document.querySelectorAll(
    '.zm-modal, .zm-modal-legacy, [role="dialog"], [role="alertdialog"], .ReactModal__Content'
  )).map((el) => el.innerText || '').filter(Boolean);
  const name = first(['#input-for-name', '#inputname', 'input[placeholder="Your Name"]']);
  const pwd = first(['#input-for-pwd', '#inputpasscode', 'input[type="password"]']);
  const join = first(['button.preview-join-button', '#joinBtn',
                      'button.zm-btn.preview-join-button', 'button[type="submit"].zm-btn']);
  let pwdError = null;
  for (const el of document.querySelectorAll(
      '.preview-meeting-info-field-error, .error-msg, [role="alert"], .zm-form-item__error')) {
    if (R(re.passcode).test(el.innerText || '')) {
      pwdError = {marked: el.dataset.vpSeen === '1'};
      break;
    }
  }
  const mic = document.querySelector('#preview-audio-control-button');
  const cam = document.querySelector('#preview-video-control-button');
  const dialogs = Array.from(document.querySelectorAll('.ReactModal__Content, [role="dialog"]'));
  const permission = dialogs.some((d) => Array.from(d.querySelectorAll('button')).some(
    (b) => /^(allow|use microphone( and camera)?)$/i.test((b.innerText || '').trim())));
  const landing = Array.from(document.querySelectorAll('a')).some(
    (a) => /join from your browser/i.test(a.innerText || ''));
  return {
    url: location.href,
    title: document.title,
    text: text.slice(0, 20000),
    modalTexts,
    captchaEl: frames.some((s) => /recaptcha/i.test(s)) ||
      !!document.querySelector('.component_smart_captcha, .CaptchaContainer'),
    prompt: (document.querySelector('#prompt') || {}).innerText || '',
    consent: visible(document.querySelector('#onetrust-accept-btn-handler')),
    terms: !!document.querySelector('#wc_agree1, #wc_agree2'),
    permission,
    landing,
    hasName: !!name,
    nameValue: name ? name.value : null,
    hasPwd: !!pwd && visible(pwd),
    pwdValue: pwd ? pwd.value : null,
    pwdError,
    join: !!join,
    joinDisabled: !!join && (join.disabled || join.classList.contains('disabled')),
    joinBusy: !!join && (join.classList.contains('loading') ||
                         /joining/i.test(join.innerText || '')),
    micOn: mic ? mic.getAttribute('aria-label') === 'Mute'
               : !!document.querySelector('svg.SvgAudioMute'),
    camOn: cam ? cam.getAttribute('aria-label') === 'Stop Video'
               : !!document.querySelector('svg.SvgVideoOn'),
    leave: !!document.querySelector('button[aria-label="Leave"]'),
    lobby: R(re.lobby).test(text),
  };
}
"""

# One poll of the meeting: speaker, roster, chat rows, end signals, housekeeping needs.
_MEETING_STATE_JS = """
(re) => {
  const R = (s) => new RegExp(s, 'i');
  const txt = (el) => (el ? (el.innerText || el.textContent || '').trim() : '');
  const first = (sels) => {
    for (const s of sels) { const el = document.querySelector(s); if (el) return el; }
    return null;
  };
  const leave = document.querySelector('button[aria-label="Leave"]');
  // Active speaker (speaker view, the thumbnail strip, single view, screen-share layouts).
  const speakerEl = first([
    '.speaker-active-container__video-frame .video-avatar__avatar-footer span',
    '.speaker-bar-container__video-frame--active .video-avatar__avatar-footer span',
    '.single-main-container__video-frame .video-avatar__avatar-footer span',
    '.single-suspension-container__video-frame .video-avatar__avatar-footer span',
  ]);
  // Roster: the participants pane when open, plus every video tile's name.
  const names = [];
  for (const li of document.querySelectorAll(
      'div[role="list"][aria-label^="participants" i] .participants-li, ' +
      '.participants-li[aria-label]')) {
    const label = li.getAttribute('aria-label') || '';
    const shown = txt(li.querySelector('.participants-item__display-name')) ||
      label.split(',')[0].replace(/\\s*\\((me|host|co-host|guest)\\)\\s*/gi, ' ').trim();
    const me = /\\(me\\)/i.test(label) ||
      /\\(me\\)/i.test(txt(li.querySelector('.participants-item__name-label')));
    if (shown && !me) names.push(shown);
  }
  for (const el of document.querySelectorAll('.video-avatar__avatar-footer span')) {
    const n = txt(el);
    if (n) names.push(n);
  }
  const counterEl = document.querySelector('.footer-button__number-counter');
  const counter = counterEl ? parseInt(txt(counterEl), 10) : NaN;
  // Chat rows (virtualised list: only some rows exist; ids are stable).
  const list = document.querySelector('div[role="application"][aria-label="Chat Message List"]');
  const chat = [];
  if (list) {
    let rows = Array.from(list.querySelectorAll('[role="row"]'));
    if (!rows.length) rows = Array.from(list.querySelectorAll('div[id^="chat-message-content"]'));
    let sender = null;
    for (const row of rows) {
      const content = row.querySelector('div[id^="chat-message-content"]') ||
        (row.id && row.id.startsWith('chat-message-content') ? row : null);
      const label = (content && content.getAttribute('aria-label')) ||
        row.getAttribute('aria-label') || '';
      const domSender = txt(row.querySelector('.chat-item__sender'));
      if (domSender) sender = domSender;
      let parsed = label.match(/^(.*?) to (.+?), (\\d{1,2}:\\d{2}(?:\\s?[AP]M)?), ([\\s\\S]*)$/i) ||
        label.match(/^(.*?) to (.+?): ([\\s\\S]*)$/i);
      const body = row.querySelector('.chat-rtf-box__display, .new-chat-message__text-box');
      const who = parsed ? parsed[1] : sender;
      const text = body ? txt(body) : (parsed ? parsed[parsed.length - 1] : '');
      if (!who || !text) continue;
      chat.push({id: (content && content.id) || row.id || '', sender: who.trim(), text, label});
    }
  }
  // End signals: only modal dialogs, never toasts or role=alert banners.
  const modals = Array.from(document.querySelectorAll(
    '.zm-modal, .zm-modal-legacy, [role="dialog"], [role="alertdialog"], .ReactModal__Content, ' +
    '[aria-label="Meeting is end now"]'));
  let ended = null, removed = null, dismiss = false;
  for (const m of modals) {
    const t = txt(m);
    const buttons = Array.from(m.querySelectorAll('button'));
    if (m.matches('[aria-label="Meeting is end now"]') || R(re.ended).test(t)) {
      ended = t.slice(0, 200);
    } else if (R(re.removed).test(t)) {
      removed = t.slice(0, 200);
    } else if (!m.matches('.join-dialog, .leave-meeting-options') &&
               buttons.some((b) => /^(got it|ok)$/i.test(txt(b)))) {
      dismiss = true;
    }
  }
  const audio = document.querySelector('button.join-audio-container__btn');
  const chatToggle = document.querySelector('button[aria-label$="the chat panel" i]');
  const partsToggle = document.querySelector('button[aria-label*="participants list" i]');
  return {
    url: location.href,
    title: document.title,
    inMeeting: !!leave,
    client: !!document.querySelector('.meeting-client, #wc-footer, .meeting-app'),
    speaker: txt(speakerEl),
    names,
    counter: Number.isFinite(counter) ? counter : null,
    chat,
    ended,
    removed,
    dismiss,
    audioLabel: audio ? (audio.getAttribute('aria-label') || txt(audio)) : null,
    audioDialog: !!document.querySelector('.join-audio-by-voip__join-btn') ||
      Array.from(document.querySelectorAll('button')).some(
        (b) => /^(join audio by computer|join with computer audio)$/i.test(txt(b))),
    chatOpen: chatToggle ? /^close/i.test(chatToggle.getAttribute('aria-label') || '') :
      !!document.querySelector('.chat-rtf-box__editor-outer [contenteditable="true"]'),
    partsOpen: partsToggle ? /^close/i.test(partsToggle.getAttribute('aria-label') || '') : true,
  };
}
"""

# Click the first element (in selector order) whose text matches, with DOM click(): overlays that
# intercept pointer events (the pre-join form, popups, the hidden footer) do not matter.
_CLICK_JS = """
([sels, textRe]) => {
  const re = textRe ? new RegExp(textRe, 'i') : null;
  for (const s of sels) {
    for (const el of document.querySelectorAll(s)) {
      if (re && !re.test((el.innerText || el.textContent || '').trim())) continue;
      if (el.disabled) continue;
      el.click();
      return true;
    }
  }
  return false;
}
"""

_MARK_PASSCODE_ERROR_JS = """
(re) => {
  for (const el of document.querySelectorAll(
      '.preview-meeting-info-field-error, .error-msg, [role="alert"], .zm-form-item__error')) {
    if (new RegExp(re, 'i').test(el.innerText || '')) el.dataset.vpSeen = '1';
  }
}
"""

_EDITOR_SELECTORS = (
    '.chat-rtf-box__editor-outer [contenteditable="true"]',
    ".tiptap.ProseMirror",
    'div[contenteditable="true"][aria-label*="message" i]',
    'div[aria-placeholder="Type message here ..."]',
)

# ProseMirror follows its contenteditable's DOM: execCommand('insertText') updates it (LMA).
_INSERT_TEXT_JS = """
([sels, text]) => {
  let ed = null;
  for (const s of sels) { ed = document.querySelector(s); if (ed) break; }
  if (!ed) {
    const p = document.querySelector('p[data-placeholder="Type message here ..."]');
    ed = p && p.closest('[contenteditable="true"]');
  }
  if (!ed) return null;
  ed.focus();
  const sel = window.getSelection();
  sel.selectAllChildren(ed);
  document.execCommand('delete', false);
  document.execCommand('insertText', false, text);
  return (ed.innerText || '').replace(/\\n+$/, '');
}
"""

_JS_RE = {
    "lobby": _LOBBY_RE,
    "passcode": _PASSCODE_RE,
    "ended": _ENDED_RE,
    "removed": _REMOVED_RE,
}
_NOT_A_NAME = re.compile(r"^(no one|n/a|)$", re.I)
_OWN_SENDERS = frozenset({"you", "me"})
_AUDIO_JOIN_LABEL = re.compile(r"join audio|^audio$", re.I)
_MIC_LIVE_LABEL = re.compile(r"^mute( my microphone)?$", re.I)


class ZoomDriver(PlatformDriver):
    name: ClassVar[str] = "zoom"
    host_rules: ClassVar[tuple[HostRule, ...]] = (
        HostRule("zoom.us"),
        HostRule("*.zoom.us"),
        HostRule("zoom.com"),
        HostRule("*.zoom.com"),
        HostRule("zoomgov.com"),
        HostRule("*.zoomgov.com"),
    )
    supports_chat: ClassVar[bool] = True

    _REPLICA_PATH = re.compile(r"^/(?:wc/(?:join/)?[A-Za-z0-9_-]+(?:/join)?|j/\d{9,12})/?$")

    @classmethod
    def claims(cls, parts: SplitResult) -> bool:
        host = (parts.hostname or "").lower()
        if any(rule.matches(host) for rule in cls.host_rules):
            return True
        # Zoom's own paths on an operator-allowed host (replicas): /wc/<id>/join, /wc/join/<id>.
        return bool(cls._REPLICA_PATH.match(parts.path or ""))

    @classmethod
    def web_client_url(cls, url: str) -> str:
        """Every invite form → ``https://app.zoom.us/wc/<id>/join?pwd=…`` (zoomgov keeps its
        host); forms that need Zoom's own redirects (``/my/<vanity>``, ``events.zoom.us``)
        open as given."""
        return _rewrite(url.strip())

    @classmethod
    def display_name(cls, name: str) -> str:
        return name.strip()[:64] or "Meeting Assistant"

    # -- state --------------------------------------------------------------------------------
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._me = self.display_name(self.settings.name)
        self._in_lobby = False
        self._names: tuple[str, ...] | None = None
        self._speaker: str | None = None
        self._seen_chat: set[str] = set()
        self._admitted_at = 0.0
        self._chat_lock = asyncio.Lock()
        self._frame: Frame | None = None
        self._meeting_host = ""

    def _ui(self) -> Frame:
        return self._frame or self.page.main_frame

    async def _find_ui_frame(self) -> None:
        """The PWA and classic variants can host the client in an iframe (MB, SA)."""
        handle = await self.page.query_selector("iframe.pwa-webclient__iframe, iframe#webclient")
        frame = await handle.content_frame() if handle else None
        self._frame = frame

    async def _click(self, selectors: tuple[str, ...] | list[str], text: str | None = None) -> bool:
        return bool(await self._ui().evaluate(_CLICK_JS, [list(selectors), text]))

    async def _wake_footer(self) -> None:
        # The footer auto-hides while the mouse is idle (JL).
        with contextlib.suppress(PlaywrightError):
            await self.page.mouse.move(400, 300)
            await self.page.mouse.move(420, 320)

    # -- join -----------------------------------------------------------------------------------
    async def join(self, url: str) -> None:
        page = self.page
        await page.goto(url, wait_until="domcontentloaded")  # Zoom's `load` may never fire
        prejoin_since: float | None = None
        submitted_at: float | None = None
        passcode_typed = False
        name_attempts = 0
        typed_at = 0.0
        while True:
            try:
                await self._find_ui_frame()
                s: dict[str, Any] = await self._ui().evaluate(_JOIN_STATE_JS, _JS_RE)
            except PlaywrightError:
                if page.is_closed():
                    raise
                await asyncio.sleep(JOIN_POLL_S)  # navigating (landing page, redirects)
                continue
            self._raise_on_failure(s)
            if s["leave"] and not s["lobby"]:
                break
            if s["lobby"]:
                if not self._in_lobby:
                    self._in_lobby = True
                    log.info("zoom.waiting_room")
                    self.emit(WaitingRoom())
                await asyncio.sleep(JOIN_POLL_S * 2)
                continue
            self._in_lobby = False
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
                prejoin_since = None
            elif s["landing"] and not s["hasName"]:
                await self._click(("a",), r"join from your browser")
            elif s["hasName"] and s["join"]:
                now = time.monotonic()
                prejoin_since = prejoin_since or now
                if s["pwdError"] is not None and submitted_at is not None:
                    if await self._on_wrong_passcode(s, passcode_typed, submitted_at):
                        passcode_typed = True
                        submitted_at = time.monotonic()
                    continue
                if s["hasPwd"] and not s["pwdValue"]:
                    await self._type_passcode()
                    passcode_typed = True
                    continue
                name_ok = (s["nameValue"] or "") == self._me
                if not name_ok or (s["joinDisabled"] and now - typed_at > 1.0):
                    # Wrong value, or typed but the client did not take it: type again (bounded).
                    if name_attempts >= 5:
                        raise JoinError("Zoom did not accept the VP's name", reason=Reason.DENIED)
                    name_attempts += 1
                    await self._type_name()
                    typed_at = time.monotonic()
                    continue
                if now - prejoin_since < SETTLE_S or s["joinBusy"]:
                    pass
                elif s["micOn"]:
                    if not await self._click(("#preview-audio-control-button",)):
                        await self._click(("svg.SvgAudioMute",))
                elif s["camOn"]:
                    if not await self._click(("#preview-video-control-button",)):
                        await self._click(("svg.SvgVideoOn",))
                elif not s["joinDisabled"] and (
                    submitted_at is None or now - submitted_at > RESUBMIT_AFTER_S
                ):
                    await self._click(
                        ("button.preview-join-button", "#joinBtn", 'button[type="submit"].zm-btn')
                    )
                    submitted_at = now
                    log.info("zoom.join_clicked")
            await asyncio.sleep(JOIN_POLL_S)
        self._in_lobby = False
        self._admitted_at = time.monotonic()
        self._meeting_host = urlsplit(page.url).netloc
        log.info("zoom.admitted")
        with contextlib.suppress(PlaywrightError):
            self._note(await self._ui().evaluate(_MEETING_STATE_JS, _JS_RE))

    def _raise_on_failure(self, s: dict[str, Any]) -> None:
        text: str = s["text"]
        modal = "\n".join(s["modalTexts"])

        def has(pattern: str, where: str = text) -> bool:
            return re.search(pattern, where, re.I) is not None

        if s["captchaEl"] or has(_CAPTCHA_RE):
            raise JoinError("Zoom showed a captcha / bot wall", reason=Reason.CAPTCHA)
        if s["title"].strip() == "Error - Zoom" or has(_INVALID_RE):
            raise JoinError(
                "Zoom says the meeting link is invalid", reason=Reason.MEETING_NOT_FOUND
            )
        if has(_LOGIN_RE, s["prompt"] or text) or re.search(r"/signin|/oauth", s["url"]):
            raise JoinError("the meeting requires signing in", reason=Reason.LOGIN_REQUIRED)
        if has(_REMOVED_RE, modal):
            raise JoinError("the host did not let the VP in", reason=Reason.DENIED)
        if has(_ENDED_RE, modal) or "/postattendee" in s["url"]:
            raise JoinError(
                "the meeting ended before the VP was admitted", reason=Reason.MEETING_NOT_FOUND
            )

    async def _on_wrong_passcode(
        self, s: dict[str, Any], passcode_typed: bool, submitted_at: float
    ) -> bool:
        """Zoom rejected the passcode: retry once with the configured one (when the rejected one
        came from the URL), else fail fast. True when a retry was submitted.

        The message we answered is marked, so only a NEW rejection (or the old one outliving
        the retry) is the verdict."""
        if not passcode_typed and self.settings.passcode:
            await self._ui().evaluate(_MARK_PASSCODE_ERROR_JS, _PASSCODE_RE)
            await self._type_passcode()
            await self._click(("button.preview-join-button", "#joinBtn"))
            return True
        if not s["pwdError"]["marked"] or time.monotonic() - submitted_at > PASSCODE_VERDICT_S:
            raise JoinError("Zoom rejected the meeting passcode", reason=Reason.WRONG_PASSCODE)
        await asyncio.sleep(JOIN_POLL_S)
        return False

    async def _type_passcode(self) -> None:
        passcode = self.settings.passcode
        if not passcode:
            raise JoinError(
                "the meeting needs a passcode and none was given", reason=Reason.WRONG_PASSCODE
            )
        field = self._ui().locator("#input-for-pwd, #inputpasscode, input[type='password']").first
        await self._type_into(field, passcode)

    async def _type_name(self) -> None:
        field = (
            self._ui().locator("#input-for-name, #inputname, input[placeholder='Your Name']").first
        )
        await self._type_into(field, self._me)

    async def _type_into(self, field: Locator, value: str) -> None:
        # Real key events: Zoom ignores synthetic setters (VX). focus() instead of click(): the
        # consent banner or the form overlay may sit on top of the field.
        await field.focus()
        keyboard = self.page.keyboard
        await keyboard.press("ControlOrMeta+A")
        await keyboard.press("Backspace")
        await keyboard.type(value, delay=10)

    # -- watch ----------------------------------------------------------------------------------
    def _note(self, s: dict[str, Any]) -> None:
        if not s.get("inMeeting"):
            return  # a reconnect unmounted the client: keep what we knew
        me = self._me.casefold()
        names = tuple(
            sorted({n for n in s["names"] if n.casefold() != me and not _NOT_A_NAME.match(n)})
        )
        if names != self._names:
            self._names = names
            self.emit(ParticipantsChanged(names))
        speaker = s["speaker"]
        if (
            speaker
            and not _NOT_A_NAME.match(speaker)
            and speaker.casefold() != me
            and speaker != self._speaker
        ):
            self._speaker = speaker
            self.emit(SpeakerChanged(speaker))
        for row in s["chat"]:
            key = row["id"] or f"{row['sender']}|{row['label']}|{row['text']}"
            if key in self._seen_chat:
                continue
            self._seen_chat.add(key)
            sender = row["sender"]
            if sender.casefold() in _OWN_SENDERS or sender.casefold() == me:
                continue
            self.emit(ChatReceived(sender, row["text"]))

    def _others(self, s: dict[str, Any]) -> int:
        counter = s.get("counter")
        if isinstance(counter, int):
            return max(counter - 1, 0)
        return len(self._names or ())

    def _end_signal(self, s: dict[str, Any] | None) -> tuple[Reason, str] | None:
        if s is None:
            return None
        if s["removed"]:
            return Reason.REMOVED, "Zoom: you have been removed"
        if s["ended"]:
            return Reason.HOST_ENDED, "Zoom: the meeting has been ended by the host"
        parts = urlsplit(s["url"])
        if (
            parts.netloc != self._meeting_host
            or not parts.path.startswith("/wc/")
            or parts.path.startswith("/wc/leave")
            or s["title"].strip() == "Error - Zoom"
        ):
            return Reason.HOST_ENDED, "Zoom: the page left the meeting"
        return None

    async def watch(self) -> MeetingOver:
        pending: tuple[Reason, str] | None = None
        streak = 0
        gone = 0
        alone_since: float | None = None
        while True:
            s: dict[str, Any] | None
            try:
                s = await self._ui().evaluate(_MEETING_STATE_JS, _JS_RE)
            except PlaywrightError:
                if self.page.is_closed():
                    raise
                s = None  # navigating: decide on the next polls
            signal = self._end_signal(s)
            if signal is not None and pending is not None and signal[0] is pending[0]:
                streak += 1
            else:
                streak = 1 if signal is not None else 0
            pending = signal
            if signal is not None and streak >= END_CONFIRM_POLLS:
                return MeetingOver(*signal)
            now = time.monotonic()
            if s is not None and s["inMeeting"]:
                gone = 0
                self._note(s)
                await self._housekeeping(s)
                if self._others(s) == 0:
                    alone_since = alone_since or now
                    if now - alone_since >= self.settings.alone_timeout:
                        return MeetingOver(Reason.ALONE, "no other participant")
                else:
                    alone_since = None
            elif signal is None:
                gone += 1
                if gone >= UI_GONE_POLLS:
                    return MeetingOver(Reason.REMOVED, "Zoom: the meeting UI is gone")
            await asyncio.sleep(self.settings.poll_interval)

    async def _housekeeping(self, s: dict[str, Any]) -> None:
        """Popups, computer audio, open chat and participants panes: one click per poll."""
        try:
            if s["dismiss"]:
                await self._click(
                    (".zm-modal button", ".ReactModal__Content button", ".relative-tooltip button"),
                    r"^(got it|ok)$",
                )
            elif s["audioDialog"]:
                await self._click(
                    ("button.join-audio-by-voip__join-btn", "button"),
                    r"^(join audio by computer|join with computer audio)$",
                )
            elif (
                s["audioLabel"]
                and _AUDIO_JOIN_LABEL.search(s["audioLabel"])
                and time.monotonic() - self._admitted_at >= AUDIO_GRACE_S
            ):
                await self._wake_footer()
                await self._click(("button.join-audio-container__btn",))
            elif s["audioLabel"] and _MIC_LIVE_LABEL.match(s["audioLabel"]):
                await self._click(("button.join-audio-container__btn",))  # stay muted
            elif not s["chatOpen"]:
                await self._wake_footer()
                await self._click(('button[aria-label="open the chat panel"]',))
            elif not s["partsOpen"]:
                await self._click(('button[aria-label^="open the participants list" i]',))
        except PlaywrightError as exc:
            log.debug("zoom.housekeeping_failed", error=type(exc).__name__)

    # -- leave ----------------------------------------------------------------------------------
    async def leave(self) -> None:
        await self._wake_footer()
        if not await self._click(('button[aria-label="Leave"]', ".footer__leave-btn")):
            return
        confirm = (
            self._ui()
            .locator(
                "button.leave-meeting-options__btn--danger, "
                "button.leave-meeting-options__btn:has-text('Leave Meeting')"
            )
            .first
        )
        await confirm.wait_for(state="attached", timeout=3000)
        # A DOM click: Enter would cancel the popover (VX).
        await confirm.evaluate("b => b.click()")
        with contextlib.suppress(PlaywrightError):
            await self.page.wait_for_function(
                "() => !document.querySelector('button[aria-label=\"Leave\"]')", timeout=2000
            )

    # -- chat -----------------------------------------------------------------------------------
    async def send_chat(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        async with self._chat_lock:
            for attempt in (1, 2):
                await self._open_chat()
                before = await self._own_messages(text)
                await self._insert(text)
                await self._submit()
                deadline = time.monotonic() + CHAT_CONFIRM_S
                while time.monotonic() < deadline:
                    if await self._own_messages(text) > before:
                        return
                    await asyncio.sleep(0.2)
                log.warning("zoom.chat_not_confirmed", attempt=attempt)
        raise VpError("the chat message did not appear in the Zoom chat")

    async def _own_messages(self, text: str) -> int:
        try:
            s = await self._ui().evaluate(_MEETING_STATE_JS, _JS_RE)
        except PlaywrightError:
            return 0
        me = self._me.casefold()
        return sum(
            1
            for row in s["chat"]
            if row["text"] == text
            and (row["sender"].casefold() in _OWN_SENDERS or row["sender"].casefold() == me)
        )

    async def _editor_present(self) -> bool:
        return bool(
            await self._ui().evaluate(
                "(sels) => sels.some((s) => document.querySelector(s))", list(_EDITOR_SELECTORS)
            )
        )

    async def _open_chat(self) -> None:
        if await self._editor_present():
            return
        await self._wake_footer()
        # The toggle's label flips: "open the chat panel" ↔ "close the chat panel".
        await self._click(('button[aria-label="open the chat panel"]',))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if await self._editor_present():
                return
            await asyncio.sleep(0.1)
        raise VpError("the Zoom chat panel did not open")

    async def _insert(self, text: str) -> None:
        value = await self._ui().evaluate(_INSERT_TEXT_JS, [list(_EDITOR_SELECTORS), text])
        if value is not None and value.strip() == text:
            return
        # Fallback: real keyboard input into the focused editor.
        editor = self._ui().locator(", ".join(_EDITOR_SELECTORS)).first
        await editor.focus()
        await self.page.keyboard.press("ControlOrMeta+A")
        await self.page.keyboard.press("Backspace")
        await self.page.keyboard.insert_text(text)

    async def _submit(self) -> None:
        editor = self._ui().locator(", ".join(_EDITOR_SELECTORS)).first
        await editor.focus()
        await self.page.keyboard.press("Enter")
        await asyncio.sleep(0.2)
        with contextlib.suppress(PlaywrightError):
            left = await editor.inner_text(timeout=1000)
            if left.strip():
                await self._click(('button[aria-label="send"]', "button.chat-rtf-box__send"))
