"""Microsoft Teams, joined as an anonymous guest from the web ("light meetings").

Written for the real web client (../shared/facts/web-clients.md §2, lma.md §2 Teams):

URLs
    Invites come as enterprise ``/l/meetup-join/19%3ameeting_…%40thread.v2/0?context=…`` links,
    ``/meet/<id>?p=<passcode>`` short links (teams.microsoft.com and teams.live.com), launcher
    links (``/dl/launcher/launcher.html?url=/_#/…``) and ``/_#/…`` / ``/v2/#/…`` web-client forms.
    :meth:`TeamsDriver.web_client_url` rewrites all of them to the launcher-skipping web client
    ``https://<host>/v2/?meetingjoin=true#/<meeting>?…&anon=true`` (MB, BAAS, LMA); light-meetings
    links already are the web client and open as given. The passcode stays in the fragment: the
    browser needs it, and the registry's public URL drops fragments.

Join
    The page goes through an anonymous redirect chain (SSO probe, launcher, light-meetings) with an
    empty DOM for seconds; then a permission gate, then the pre-join form under a hydration shroud.
    One ``page.evaluate`` per 250 ms reads everything and the driver acts on the first thing that
    applies: errors (fail fast) → the "Continue without audio or video" modal (it can appear
    after Join, with the Join button still behind it) → cookie banner → "Continue on this browser"
    → passcode form → lobby (before any in-meeting check) → admitted → pre-join (mic and camera
    off, name typed with real key events and read back, Join clicked through the DOM because the
    shroud intercepts pointer events).

Meeting
    One ``page.evaluate`` per second: speaker from ``[data-tid="voice-level-stream-outline"]
    .vdi-frame-occlusion`` → closest ``[data-stream-type][data-tid]`` (its data-tid is the name),
    participants from the stage tiles / roster and the People badge, chat from the (virtualised)
    chat pane with a seen-set, and the end: end/removed screens confirmed on two consecutive polls
    with the calling controls gone; toasts (``[role=alert]``) are never evidence, and the controls
    missing count only after :data:`CONTROLS_GONE_POLLS` polls in a row.

Chat
    The composer is CKEditor 5, whose model ignores ``execCommand('insertText')``: text goes in
    with a synthetic ``paste`` ClipboardEvent (LMA), else ``keyboard.insert_text``; sent with the
    send button (or Enter), then confirmed in the chat list, retried once.

Audio
    Teams sends one server-side mix on a stream whose id contains ``mainAudio`` plus redundant
    per-participant tracks; :attr:`TeamsDriver.capture_track_filter_js` keeps only the mix.
"""

# ruff: noqa: E501 - the page scripts below keep their selectors on one line each

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import structlog
from playwright.async_api import Error as PlaywrightError

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

JOIN_POLL = 0.25
# Join clicked, Join button disabled this many polls with no lobby text: a lobby all the same (MB)
LOBBY_DISABLED_POLLS = 20
CONTROLS_GONE_POLLS = 8  # in-meeting controls missing this many polls in a row: the call is over
END_CONFIRM_POLLS = 2  # an end screen must be seen on this many consecutive polls
PARTICIPANTS_CONFIRM_POLLS = 2
CHAT_REOPEN_AFTER_POLLS = 3
CHAT_REOPEN_EVERY_S = 10.0
KEEPALIVE_EVERY_S = 240.0  # Teams stops delivering chat to an idle page (ATT)
CHAT_CONFIRM_S = 4.0
MAX_SEEN_CHAT = 5000

# -- URLs ---------------------------------------------------------------------------------------
_MEET_PATH = re.compile(r"^/meet/([A-Za-z0-9]+)/?$")
_MEETUP_PATH = re.compile(r"^/l/meetup-join/[^/?#]+/[^/?#]+/?$", re.I)
_LAUNCHER_PATH = re.compile(r"^/dl/launcher/launcher\.html$", re.I)
_WEBCLIENT_PATH = re.compile(r"^/(?:v2/?|_)?$", re.I)


def _with_anon(target: str) -> str:
    """``target`` ("/meet/<id>?p=…") with ``anon=true`` in its query (other values kept raw)."""
    path, sep, query = target.partition("?")
    if re.search(r"(?:^|&)anon=", query):
        query = re.sub(r"(^|&)anon=[^&]*", r"\1anon=true", query)
    else:
        query = f"{query}&anon=true" if query else "anon=true"
    return f"{path}?{query}"


def _meeting_target(url: str) -> str | None:
    """The meeting part of a Teams URL ("/meet/<id>?…" or "/l/meetup-join/…?…"), or None."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if _MEET_PATH.match(path) or _MEETUP_PATH.match(path):
        return path + (f"?{parts.query}" if parts.query else "")
    if _LAUNCHER_PATH.match(path):
        inner = dict(parse_qsl(parts.query, keep_blank_values=True)).get("url", "")
        if "#" not in inner and parts.fragment:
            inner = f"{inner}#{parts.fragment}"  # url=/_#/… left unescaped in the link
        inner = re.sub(r"^/?_?#?", "", inner)
        return _target_from_fragment(inner)
    if _WEBCLIENT_PATH.match(path) and parts.fragment:
        return _target_from_fragment(parts.fragment)
    return None


def _target_from_fragment(fragment: str) -> str | None:
    fragment = "/" + fragment.lstrip("/")
    path = fragment.partition("?")[0]
    if _MEET_PATH.match(path) or _MEETUP_PATH.match(path):
        return fragment
    return None


def web_client_url(url: str) -> str:
    """Rewrite a Teams invite to the web client that skips the launcher (pure)."""
    url = url.strip()
    parts = urlsplit(url)
    target = _meeting_target(url)
    if target is None:
        return url  # light-meetings links and unknown forms open as given
    return urlunsplit(("https", parts.netloc, "/v2/", "meetingjoin=true", _with_anon(target)))


def with_passcode(url: str, passcode: str | None) -> str:
    """``url`` with ``p=<passcode>`` added to a ``/meet/<id>`` target that lacks one (pure)."""
    if not passcode:
        return url
    parts = urlsplit(url)

    def add(query: str) -> str | None:
        if any(k == "p" for k, _ in parse_qsl(query, keep_blank_values=True)):
            return None
        p = f"p={quote(passcode, safe='')}"
        return f"{p}&{query}" if query else p

    if _MEET_PATH.match(parts.path or ""):
        query = add(parts.query)
        return url if query is None else urlunsplit(parts._replace(query=query))
    if parts.fragment:
        fpath, _, fquery = ("/" + parts.fragment.lstrip("/")).partition("?")
        if _MEET_PATH.match(fpath):
            query = add(fquery)
            if query is None:
                return url
            return urlunsplit(parts._replace(fragment=f"{fpath}?{query}"))
    return url


# Guest names containing "notetaker" are filtered by some tenants (ATT swaps in look-alikes).
_LOOKALIKES = str.maketrans({"o": "\u043e", "e": "\u0435", "a": "\u0430"})
_FILTERED_WORD = re.compile(r"notetaker", re.I)


def teams_display_name(name: str) -> str:
    cleaned = " ".join(name.split())[:100] or "Virtual Participant"
    return _FILTERED_WORD.sub(lambda m: m.group(0).translate(_LOOKALIKES), cleaned)


# -- page texts (match both ' and ’) --------------------------------------------------------------
_AP = "['\u2019]"
LOBBY_RE = re.compile(
    r"someone will let you in|waiting for someone to let you in|someone in the meeting should"
    rf" let you in|you{_AP}re in the lobby|waiting to be admitted|your request to join has been"
    rf" sent|we{_AP}ll let people know you{_AP}re waiting",
    re.I,
)
DENIED_RE = re.compile(
    r"denied access to the meeting|request to join was declined|you were denied|"
    r"(?:you|your request) (?:was|were|has been) (?:declined|rejected)",
    re.I,
)
LOBBY_TIMEOUT_RE = re.compile(r"no one responded to your request", re.I)
WRONG_PASSCODE_RE = re.compile(
    r"matching this id and passcode|(?:passcode|password) (?:is |was )?(?:incorrect|wrong|invalid)"
    r"|(?:incorrect|wrong|invalid) (?:meeting )?(?:passcode|password)",
    re.I,
)
NOT_FOUND_RE = re.compile(
    rf"meeting url is incorrect|we can{_AP}t find this meeting|this meeting (?:link )?(?:is invalid"
    rf"|has expired|doesn{_AP}t exist|no longer exists)|meeting (?:isn{_AP}t|is not) available"
    r"|invalid meeting (?:link|url)",
    re.I,
)
LOGIN_RE = re.compile(
    r"to join, sign in|we need to verify your info before you can join|you need to sign in",
    re.I,
)
CAPTCHA_RE = re.compile(rf"verify you{_AP}re a real person|enter the characters you see", re.I)
REMOVED_RE = re.compile(
    rf"you{_AP}ve been removed|removed from (?:the|this) meeting|someone removed you", re.I
)
ENDED_RE = re.compile(
    r"the meeting (?:has )?ended|the call (?:has )?ended|you (?:have )?left the meeting"
    r"|meeting has been ended",
    re.I,
)
END_URL_RE = re.compile(r"postmeeting|meetingended|calling/end", re.I)
LOGIN_HOSTS = re.compile(
    r"^(?:login\.microsoftonline\.(?:com|us)|login\.live\.com|login\.microsoft\.com)$", re.I
)


def join_error(state: dict[str, Any]) -> JoinError | None:
    """The failure a join-state snapshot shows, if any (pure)."""
    text = str(state.get("text") or "")
    retry = str(state.get("retryTitle") or "")
    host = str(state.get("host") or "")
    if state.get("captcha") or CAPTCHA_RE.search(text):
        return JoinError("Teams asks to verify a real person (captcha)", reason=Reason.CAPTCHA)
    if LOGIN_HOSTS.match(host) or state.get("loginField") or LOGIN_RE.search(text):
        return JoinError("the meeting requires signing in", reason=Reason.LOGIN_REQUIRED)
    if LOBBY_TIMEOUT_RE.search(retry) or LOBBY_TIMEOUT_RE.search(text):
        return JoinError(
            "no one admitted the VP from the lobby", reason=Reason.WAITING_ROOM_TIMEOUT
        )
    if DENIED_RE.search(retry) or DENIED_RE.search(text):
        return JoinError("the VP was denied access from the lobby", reason=Reason.DENIED)
    if WRONG_PASSCODE_RE.search(text):
        return JoinError("the meeting passcode is wrong", reason=Reason.WRONG_PASSCODE)
    if NOT_FOUND_RE.search(text):
        return JoinError("the meeting link is invalid", reason=Reason.MEETING_NOT_FOUND)
    if state.get("e2ee"):
        return JoinError(
            "the meeting cannot be joined from the web", reason=Reason.MEETING_NOT_FOUND
        )
    return None


def end_signal(state: dict[str, Any]) -> tuple[Reason, str] | None:
    """A strong "the meeting is over for us" signal in one in-meeting snapshot (pure).

    Only end/removed SCREENS count, and only once the calling controls are gone; toasts and
    other transient alerts never do. The caller confirms it over consecutive polls.
    """
    url = str(state.get("url") or "")
    if url == "about:blank" or END_URL_RE.search(urlsplit(url).path + "#" + urlsplit(url).fragment):
        return Reason.HOST_ENDED, "the page left the meeting"
    if state.get("controls"):
        return None
    retry = str(state.get("retryTitle") or "")
    if retry and REMOVED_RE.search(retry):
        return Reason.REMOVED, "removed from the meeting"
    if retry and ENDED_RE.search(retry):
        return Reason.HOST_ENDED, "the meeting has ended"
    if state.get("endScreen"):
        title = str(state.get("endTitle") or "")
        if REMOVED_RE.search(title):
            return Reason.REMOVED, "removed from the meeting"
        return Reason.HOST_ENDED, "the meeting has ended"
    if state.get("e2ee"):
        return Reason.HOST_ENDED, "the call ended"
    return None


# -- page scripts ---------------------------------------------------------------------------------
_COMMON_JS = r"""
const vis = (e) => {
  if (!e) return false;
  const r = e.getClientRects();
  if (!r.length) return false;
  const s = getComputedStyle(e);
  return s.visibility !== 'hidden' && s.display !== 'none';
};
const q = (sel, root) => (root || document).querySelector(sel);
const qa = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const firstVis = (sels) => {
  for (const s of sels) for (const e of qa(s)) if (vis(e)) return e;
  return null;
};
const label = (e) => ((e.getAttribute('aria-label') || '') + ' ' + (e.innerText || e.value || '')).trim();
const buttons = () => qa('button, [role="button"], a[role="link"], input[type="submit"]').filter(vis);
const inMeetingSels = ['#hangup-button', '[data-inp="hangup-button"]', 'button[data-tid="hangup-main-btn"]',
  'button[aria-label="Leave (Ctrl+Shift+H)"]', '#callingButtons-showMoreBtn', '[data-tid="calling-toolbar"]'];
const nameSels = ['input[data-tid="prejoin-display-name-input"]', '#prejoin-display-name',
  'input[placeholder="Type your name"]'];
const findName = () => firstVis(nameSels) ||
  qa('input[placeholder*="name" i]').filter(vis).find((e) => !/passcode|meeting id/i.test(e.placeholder)) || null;
const findPasscode = () => qa('input').filter(vis).find((e) =>
  /passcode|password/i.test((e.placeholder || '') + ' ' + (e.getAttribute('aria-label') || '')) &&
  e.name !== 'loginfmt') || null;
const findJoin = () => {
  const e = q('[data-tid="prejoin-join-button"]');
  if (e) return e;
  return buttons().find((b) => /^(join now|join|ask to join)$/i.test((b.innerText || '').trim())) || null;
};
const findContinue = () => buttons().find((b) => {
  const a = (b.getAttribute('aria-label') || '').trim();
  const t = (b.innerText || '').trim();
  if (b.getAttribute('data-tid') === 'joinOnWeb') return true;
  if (/^(continue on this browser|join meeting from this browser|join on this browser|join on the web instead)$/i.test(a)) return true;
  return t.length < 60 && /^(continue on this browser|join on the web instead|continue in this browser)$/i.test(t);
}) || null;
const findAvContinue = () => buttons().find((b) => /^continue without audio or video$/i.test((b.innerText || '').trim())) || null;
const findCookieAccept = () => {
  const banner = firstVis(['#wcpConsentBannerCtrl', '[id*="cookie" i]', '[class*="cookie-banner" i]', '#onetrust-banner-sdk']);
  if (!banner) return null;
  return qa('button', banner).filter(vis).find((b) => /^(accept|accept all|allow all|ok)$/i.test((b.innerText || '').trim())) || null;
};
const retryTitle = () => {
  const e = q('#calling-retry-screen-title');
  return e && vis(e) ? (e.innerText || '').trim() : null;
};
"""

_JOIN_STATE_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const name = findName();
  const join = findJoin();
  const pass = findPasscode();
  const body = document.body;
  return {
    url: location.href,
    host: location.hostname,
    text: body ? (body.innerText || '').slice(0, 6000) : '',
    empty: !body || !(body.innerText || '').trim(),
    captcha: !!q('[data-tid="HIP-Captcha-Image"], iframe[src*="captcha" i], img[alt*="captcha" i]'),
    loginField: !!q('input[name="loginfmt"]'),
    retryTitle: retryTitle(),
    e2ee: !!q('[data-tid="calling-e2ee-end-screen"]'),
    avModal: !!findAvContinue(),
    cookie: !!findCookieAccept(),
    continueBtn: !!findContinue(),
    passcode: pass && pass !== name ? true : false,
    name: name ? { value: name.value } : null,
    join: join && vis(join) ? { disabled: !!join.disabled || join.getAttribute('aria-disabled') === 'true' } : null,
    inMeeting: !!firstVis(inMeetingSels),
  };
}"""
)

_CLICK_JS = (
    "(what) => {"
    + _COMMON_JS
    + r"""
  const pick = {
    avModal: findAvContinue, cookie: findCookieAccept, continue: findContinue, join: findJoin,
  }[what];
  const e = pick && pick();
  if (!e || e.disabled) return false;
  e.click();
  return true;
}"""
)

# Turn mic and camera off (switches read before clicking), the speaker on. Returns what it did.
_PREJOIN_MEDIA_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const done = [];
  for (const tid of ['toggle-mute', 'toggle-video']) {
    const e = q(`[data-tid="${tid}"]`);
    if (!e) continue;
    const ac = e.getAttribute('aria-checked');
    const on = ac !== null ? ac === 'true' : (e.checked === true || e.getAttribute('aria-pressed') === 'true');
    if (on) { e.click(); done.push(tid); }
  }
  if (!done.length) {
    for (const b of buttons()) {
      const a = (b.getAttribute('aria-label') || '').trim();
      if (/^(mute mic|mute microphone|turn camera off|turn off video|turn off camera)$/i.test(a)) { b.click(); done.push(a); }
    }
  }
  for (const b of buttons()) {
    const a = (b.getAttribute('aria-label') || '').trim();
    if (/^turn speaker on$/i.test(a) || /^speaker is off$/i.test((b.innerText || '').trim())) { b.click(); done.push('speaker'); }
  }
  return done;
}"""
)

_FOCUS_JS = (
    "(kind) => {"
    + _COMMON_JS
    + r"""
  const e = kind === 'passcode' ? findPasscode() : findName();
  if (!e) return false;
  e.focus();
  if (typeof e.select === 'function') e.select();
  return document.activeElement === e;
}"""
)

_READ_NAME_JS = "() => {" + _COMMON_JS + " const e = findName(); return e ? e.value : null; }"

_STATE_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const body = document.body;
  const controls = !!firstVis(inMeetingSels);
  // stage tiles: the data-tid of [data-stream-type] is the display name
  const names = [];
  const add = (n) => { n = (n || '').trim(); if (n && !names.includes(n)) names.push(n); };
  for (const e of qa('[data-stream-type][data-tid]')) {
    if (e.getAttribute('data-stream-type') !== 'ScreenSharing') add(e.getAttribute('data-tid'));
  }
  for (const e of qa('[data-tid="stage-layout"] [data-tid="participant-info-nametag"]')) add(e.innerText);
  for (const e of qa('[data-cid="roster-participant"][aria-label]')) add(e.getAttribute('aria-label').split(',')[0]);
  for (const e of qa('[data-tid^="participantsInCall-"] span[title]')) add(e.getAttribute('title'));
  const badgeEl = firstVis(['span[data-tid="toolbar-item-badge"]']);
  const badgeNum = badgeEl ? parseInt((badgeEl.innerText || '').replace(/[^0-9]/g, ''), 10) : NaN;
  // active speaker(s)
  const speakers = [];
  for (const o of qa('[data-tid="voice-level-stream-outline"].vdi-frame-occlusion')) {
    let t = o.closest('[data-stream-type][data-tid]');
    if (t && t.getAttribute('data-stream-type') === 'ScreenSharing') {
      const tileRoot = t.closest('[role="menuitem"]') || t.parentElement;
      t = (tileRoot && q('[data-stream-type="Video"][data-tid]', tileRoot)) || null;
    }
    let n = t ? t.getAttribute('data-tid') : null;
    if (!n) {
      const item = o.closest('[role="menuitem"]');
      const tag = item && q('[data-tid="participant-info-nametag"]', item);
      n = tag ? tag.innerText : null;
    }
    if (n && n.trim()) speakers.push(n.trim());
  }
  // chat (only in the DOM while the panel is open; virtualised: read what is there)
  const chat = [];
  let items = qa('[data-tid="chat-pane-item"]');
  if (!items.length) items = qa('[data-tid="chat-pane-message"]');
  let lastAuthor = null;
  for (const item of items) {
    const msg = item.matches('[data-tid="chat-pane-message"]') ? item : (q('[data-tid="chat-pane-message"]', item) || item);
    const bodyEl = q('[data-tid="messageBodyContent"], [id^="content-message-body-"], div[dir="auto"]', msg);
    if (!bodyEl) continue;
    const text = (bodyEl.innerText || '').trim();
    if (!text) continue;
    const a = q('[data-tid="message-author-name"]', msg);
    const mine = !!(msg.closest('.fui-ChatMyMessage') || q('.fui-ChatMyMessage', item) || msg.matches('.fui-ChatMyMessage'));
    let author = a ? (a.innerText || '').trim() : null;
    if (!author && !mine) author = lastAuthor; // grouped follow-ups carry no author
    if (author) lastAuthor = author;
    const t = q('time[datetime]', msg);
    const id = msg.getAttribute('data-mid') || (bodyEl.id || '') || item.id || '';
    chat.push({ key: id || `${author}|${t ? t.getAttribute('datetime') : ''}|${text}`, sender: author, text, mine });
  }
  const composer = firstVis(['[data-tid="ckeditor"] [contenteditable="true"]',
    'div[role="textbox"][contenteditable="true"][aria-label*="message" i]', '.ck-editor__editable[contenteditable="true"]']);
  const chatBtn = q('#chat-button') || q('[data-tid="chat-button"]');
  const endScreen = q('button[data-tid="anon-meeting-end-screen-rejoin-button"]');
  let endTitle = null;
  if (endScreen) {
    const root = endScreen.closest('[role="main"]') || endScreen.parentElement;
    endTitle = root ? (root.innerText || '').slice(0, 300) : null;
  }
  return {
    url: location.href,
    controls,
    retryTitle: retryTitle(),
    endScreen: !!endScreen,
    endTitle,
    e2ee: !!q('[data-tid="calling-e2ee-end-screen"]'),
    text: controls || !body ? '' : (body.innerText || '').slice(0, 3000),
    names,
    badge: Number.isFinite(badgeNum) ? badgeNum : null,
    speakers,
    chat,
    chatOpen: !!composer || !!q('[data-tid="chat-pane-list"]'),
    chatPressed: chatBtn ? chatBtn.getAttribute('aria-pressed') === 'true' : null,
    micOn: (() => { const m = q('#microphone-button'); return m ? /^mute\b/i.test(m.getAttribute('aria-label') || '') : null; })(),
  };
}"""
)

_EDITOR_SELECTORS = (
    '[data-tid="ckeditor"] [contenteditable="true"]',
    'div[role="textbox"][contenteditable="true"][aria-label*="message" i]',
    'div[contenteditable="true"][data-tid="ckeditor-replyBox"]',
    '.ck-editor__editable[contenteditable="true"]',
    '[contenteditable="true"][aria-label="Type a message"]',
    '[contenteditable="true"][placeholder="Type a message"]',
)

_EDITOR_JS = (
    "([sels, action, text]) => {"
    + _COMMON_JS
    + r"""
  const ed = firstVis(sels);
  if (!ed) return null;
  if (action === 'focus') { ed.focus(); return document.activeElement === ed || ed.contains(document.activeElement); }
  if (action === 'read') return (ed.innerText || '').replace(/\u00a0/g, ' ').trim();
  if (action === 'paste') {
    ed.focus();
    const dt = new DataTransfer();
    dt.setData('text/plain', text);
    ed.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    return true;
  }
  return null;
}"""
)

_OPEN_CHAT_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const b = firstVis(['#chat-button', '[data-tid="chat-button"]', 'button[data-tid="toggle-chat"]',
    'button[aria-label*="meeting chat" i]', 'button[aria-label*="show conversation" i]']) ||
    buttons().find((e) => /^chat$/i.test((e.getAttribute('aria-label') || '').trim()));
  if (!b) return 'missing';
  if (b.getAttribute('aria-pressed') === 'true') return 'pressed';
  b.click();
  return 'clicked';
}"""
)

_SEND_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const b = firstVis(['button[data-tid="newMessageCommands-send"]', 'button[aria-label="Send"]']);
  if (!b || b.disabled) return false;
  b.click();
  return true;
}"""
)

_HANGUP_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const b = firstVis(['#hangup-button', '[data-inp="hangup-button"]', 'button[data-tid="hangup-main-btn"]',
    'button[aria-label^="Leave"]']);
  if (!b) return false;
  b.click();
  return true;
}"""
)

_CONFIRM_LEAVE_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  for (const d of qa('[role="dialog"], [role="alertdialog"]').filter(vis)) {
    const b = qa('button', d).filter(vis).find((e) => /^leave$/i.test((e.innerText || '').trim()));
    if (b) { b.click(); return 'confirmed'; }
  }
  return firstVis(inMeetingSels) ? 'in-meeting' : 'gone';
}"""
)

_MIC_OFF_JS = (
    "() => {"
    + _COMMON_JS
    + r"""
  const m = q('#microphone-button');
  if (m && /^mute\b/i.test(m.getAttribute('aria-label') || '')) { m.click(); return true; }
  return false;
}"""
)


def _norm(text: str) -> str:
    return " ".join(text.split())


class TeamsDriver(PlatformDriver):
    name: ClassVar[str] = "teams"
    host_rules: ClassVar[tuple[HostRule, ...]] = (
        HostRule("teams.microsoft.com"),
        HostRule("teams.live.com"),
        HostRule("teams.microsoft.us"),
        HostRule("*.teams.microsoft.us"),  # gov., dod.
        HostRule("teams.cloud.microsoft"),
    )
    # Anonymous join off a tenant that forbids it redirects to Microsoft's sign-in (VX #915):
    # the navigation guard lets that through so join_error() can report login-required.
    navigation_rules: ClassVar[tuple[HostRule, ...]] = (
        HostRule("login.microsoftonline.com"),
        HostRule("login.microsoftonline.us"),
        HostRule("login.live.com"),
        HostRule("login.microsoft.com"),
    )
    supports_chat: ClassVar[bool] = True
    # Only the server-side mix: per-participant tracks also arrive and would double the audio.
    capture_track_filter_js: ClassVar[str | None] = (
        "({id, streamIds}) => (streamIds || []).some((s) => /mainaudio/i.test(s))"
        " || /^mainaudio/i.test(id || '')"
    )

    @classmethod
    def web_client_url(cls, url: str) -> str:
        return web_client_url(url)

    @classmethod
    def display_name(cls, name: str) -> str:
        return teams_display_name(name)

    # -- helpers ------------------------------------------------------------------------------
    @property
    def _own(self) -> str:
        return self.display_name(self.settings.name)

    def _is_self(self, name: str) -> bool:
        for own in {self._own, self.settings.name.strip()}:
            if name == own or (name.startswith(own + " (") and name.endswith(")")):
                return True
        return False

    async def _eval(self, script: str, arg: Any = None) -> Any:
        """Evaluate, tolerating navigations (None while the document is being replaced)."""
        try:
            return await self.page.evaluate(script, arg)
        except PlaywrightError:
            if self.page.is_closed():
                raise
            return None

    # -- join ---------------------------------------------------------------------------------
    async def join(self, url: str) -> None:
        target = with_passcode(url, self.settings.passcode)
        await self._goto(target)
        in_lobby = False
        restarted = False
        join_clicks = 0
        last_click = 0.0
        passcode_tries = 0
        disabled_polls = 0
        names_typed = 0
        while True:
            state = await self._eval(_JOIN_STATE_JS)
            if not isinstance(state, dict):
                await asyncio.sleep(JOIN_POLL)
                continue
            error = join_error(state)
            if error is not None:
                raise error
            if "lightexperience=false" in str(state["url"]).lower() and not restarted:
                restarted = True  # the heavy client loaded: start over once (ATT PR #904)
                await self._goto(target)
                continue
            # A modal after Join, with the Join button still behind it: not a lobby.
            if state["avModal"]:
                await self._eval(_CLICK_JS, "avModal")
                await asyncio.sleep(JOIN_POLL)
                continue
            if state["cookie"]:
                await self._eval(_CLICK_JS, "cookie")
            if state["continueBtn"]:
                await self._eval(_CLICK_JS, "continue")
                await asyncio.sleep(JOIN_POLL * 2)
                continue
            if state["passcode"] and not state["name"]:
                if not self.settings.passcode:
                    raise JoinError("the meeting needs a passcode", reason=Reason.WRONG_PASSCODE)
                if passcode_tries < 2:
                    passcode_tries += 1
                    await self._type_into("passcode", self.settings.passcode)
                    await self.page.keyboard.press("Enter")
                await asyncio.sleep(1.0)
                continue
            # The lobby, checked before any sign of being in the meeting.
            join_btn = state["join"]
            disabled_polls = (
                disabled_polls + 1 if (join_clicks and join_btn and join_btn["disabled"]) else 0
            )
            lobby = bool(LOBBY_RE.search(state["text"])) or (
                disabled_polls >= LOBBY_DISABLED_POLLS and not state["inMeeting"]
            )
            if lobby:
                if not in_lobby:
                    in_lobby = True
                    log.info("teams.lobby")
                    self.emit(WaitingRoom())
                await asyncio.sleep(JOIN_POLL)
                continue
            if in_lobby and join_btn and not join_btn["disabled"] and not state["inMeeting"]:
                # The Join button came back: the lobby connection failed (ATT).
                raise JoinError("the lobby dropped the VP", reason=Reason.DENIED)
            in_lobby = False
            if state["inMeeting"] and not join_btn:
                break
            if state["name"] is not None or join_btn:
                if join_clicks and time.monotonic() - last_click < 3.0:
                    await asyncio.sleep(JOIN_POLL)  # give the click time to land
                    continue
                # Mic and camera off, the name typed; both read back on the next poll, since
                # hydration re-renders the form (and drops what was typed) at an unknown moment.
                changed = bool(await self._eval(_PREJOIN_MEDIA_JS))
                if state["name"] is not None and state["name"]["value"] != self._own:
                    names_typed += 1
                    log.info("teams.name_typed", attempt=names_typed)
                    await self._type_into("name", self._own)
                    changed = True
                if changed:
                    await asyncio.sleep(JOIN_POLL)
                    continue
                if join_btn and not join_btn["disabled"] and await self._eval(_CLICK_JS, "join"):
                    join_clicks += 1
                    last_click = time.monotonic()
                    log.info("teams.join_clicked", attempt=join_clicks)
            await asyncio.sleep(JOIN_POLL)
        await self._after_admission()

    async def _goto(self, url: str) -> None:
        try:
            await self.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            # Client-side redirects can interrupt the first navigation; the loop takes over.
            if self.page.is_closed() or "interrupted" not in str(exc).lower():
                raise

    async def _type_into(self, kind: str, value: str) -> None:
        """Focus the field through the DOM (the hydration shroud intercepts pointer events),
        type with real key events, and read it back on the next poll."""
        if not await self._eval(_FOCUS_JS, kind):
            return
        kb = self.page.keyboard
        await kb.press("Control+A")
        await kb.press("Backspace")
        await kb.type(value, delay=10)
        if kind == "name":
            typed = await self._eval(_READ_NAME_JS)
            if typed != value:
                log.info("teams.name_not_kept")

    async def _after_admission(self) -> None:
        await self._eval(_MIC_OFF_JS)  # best effort: the pre-join toggle should have done it
        state = await self._eval(_STATE_JS)
        if isinstance(state, dict):
            self._note_participants(self._others(state), force=True)
            self._note_speaker(state)

    # -- watch --------------------------------------------------------------------------------
    _last_names: tuple[str, ...] | None = None
    _pending_names: tuple[str, ...] | None = None
    _pending_count = 0
    _last_speaker: str | None = None

    def _others(self, state: dict[str, Any]) -> tuple[str, ...]:
        return tuple(n for n in state.get("names") or () if not self._is_self(str(n)))

    def _note_participants(self, names: tuple[str, ...], force: bool = False) -> None:
        if names == self._last_names:
            self._pending_names, self._pending_count = None, 0
            return
        if not force:
            if names != self._pending_names:
                self._pending_names, self._pending_count = names, 1
                return
            self._pending_count += 1
            if self._pending_count < PARTICIPANTS_CONFIRM_POLLS:
                return
        self._last_names = names
        self._pending_names, self._pending_count = None, 0
        self.emit(ParticipantsChanged(names))

    def _note_speaker(self, state: dict[str, Any]) -> None:
        for name in state.get("speakers") or ():
            name = str(name)
            if self._is_self(name) or name.lower() in ("no one", "nobody"):
                continue
            if name != self._last_speaker:
                self._last_speaker = name
                self.emit(SpeakerChanged(name))
            return

    async def watch(self) -> MeetingOver:
        seen: dict[str, None] = {}
        alone_since: float | None = None
        end_candidate: tuple[Reason, str] | None = None
        end_count = 0
        controls_gone = 0
        chat_closed_polls = 0
        last_reopen = 0.0
        last_keepalive = time.monotonic()
        await self._open_chat(wait=False)
        while True:
            state = await self._eval(_STATE_JS)
            now = time.monotonic()
            if not isinstance(state, dict):
                state = {"url": self.page.url, "controls": False}
            # -- the end, debounced
            signal = end_signal(state)
            if signal is not None and signal == end_candidate:
                end_count += 1
            else:
                end_candidate, end_count = signal, (1 if signal else 0)
            if end_candidate is not None and end_count >= END_CONFIRM_POLLS:
                return MeetingOver(*end_candidate)
            controls_gone = 0 if state.get("controls") else controls_gone + 1
            if controls_gone >= CONTROLS_GONE_POLLS:
                text = str(state.get("text") or "")
                if REMOVED_RE.search(text):
                    return MeetingOver(Reason.REMOVED, "removed from the meeting")
                return MeetingOver(Reason.HOST_ENDED, "the meeting controls are gone")
            if state.get("controls"):
                # -- people, speaker, chat (only while the meeting UI is there)
                others = self._others(state)
                self._note_participants(others)
                self._note_speaker(state)
                badge = state.get("badge")
                present = bool(others) or (isinstance(badge, int) and badge >= 2)
                if present:
                    alone_since = None
                elif alone_since is None:
                    alone_since = now
                elif now - alone_since >= self.settings.alone_timeout:
                    return MeetingOver(Reason.ALONE, "no other participant")
                self._read_chat(state.get("chat") or (), seen)
                if state.get("chatOpen"):
                    chat_closed_polls = 0
                else:
                    chat_closed_polls += 1
                    if (
                        chat_closed_polls >= CHAT_REOPEN_AFTER_POLLS
                        and now - last_reopen >= CHAT_REOPEN_EVERY_S
                    ):
                        last_reopen = now
                        await self._open_chat(wait=False)
                if now - last_keepalive >= KEEPALIVE_EVERY_S:
                    last_keepalive = now
                    await self._keepalive()
            await asyncio.sleep(self.settings.poll_interval)

    def _read_chat(self, items: Any, seen: dict[str, None]) -> None:
        for item in items:
            key = str(item.get("key") or "")
            if not key or key in seen:
                continue
            seen[key] = None
            if len(seen) > MAX_SEEN_CHAT:
                del seen[next(iter(seen))]
            sender = item.get("sender")
            if item.get("mine") or (sender and self._is_self(str(sender))):
                continue
            self.emit(ChatReceived(str(sender or "Unknown"), str(item.get("text") or "")))

    async def _keepalive(self) -> None:
        try:
            await self.page.mouse.move(5, 5)
            await self.page.mouse.move(12, 9)
        except PlaywrightError:
            pass

    # -- leave --------------------------------------------------------------------------------
    async def leave(self) -> None:
        if not await self._eval(_HANGUP_JS):
            # The toolbar may be hidden until the pointer moves; else Teams' own shortcut.
            await self._keepalive()
            if not await self._eval(_HANGUP_JS):
                try:
                    await self.page.keyboard.press("Control+Shift+H")
                except PlaywrightError:
                    return
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            result = await self._eval(_CONFIRM_LEAVE_JS)
            if result == "gone":
                return

    # -- chat ---------------------------------------------------------------------------------
    async def _open_chat(self, wait: bool = True) -> bool:
        if await self._eval(_EDITOR_JS, [list(_EDITOR_SELECTORS), "read", ""]) is not None:
            return True
        await self._eval(_OPEN_CHAT_JS)
        if not wait:
            return False
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if await self._eval(_EDITOR_JS, [list(_EDITOR_SELECTORS), "read", ""]) is not None:
                return True
        return False

    async def _my_keys(self, text: str) -> set[str]:
        state = await self._eval(_STATE_JS)
        if not isinstance(state, dict):
            return set()
        want = _norm(text)
        return {
            str(m.get("key"))
            for m in state.get("chat") or ()
            if _norm(str(m.get("text") or "")) == want
            and (m.get("mine") or (m.get("sender") and self._is_self(str(m.get("sender")))))
        }

    async def _editor_text(self) -> str | None:
        value = await self._eval(_EDITOR_JS, [list(_EDITOR_SELECTORS), "read", ""])
        return None if value is None else str(value)

    async def _clear_editor(self) -> None:
        await self._eval(_EDITOR_JS, [list(_EDITOR_SELECTORS), "focus", ""])
        await self.page.keyboard.press("Control+A")
        await self.page.keyboard.press("Backspace")

    async def _insert(self, text: str, paste_first: bool) -> bool:
        sels = list(_EDITOR_SELECTORS)
        await self._clear_editor()
        if paste_first:
            # CKEditor's model ignores execCommand('insertText'); a paste event goes through
            # its clipboard pipeline (LMA).
            await self._eval(_EDITOR_JS, [sels, "paste", text])
            await asyncio.sleep(0.1)
            if _norm(await self._editor_text() or "") == _norm(text):
                return True
            await self._clear_editor()
        await self._eval(_EDITOR_JS, [sels, "focus", ""])
        await self.page.keyboard.insert_text(text)
        await asyncio.sleep(0.1)
        return _norm(await self._editor_text() or "") == _norm(text)

    async def send_chat(self, text: str) -> None:
        if not text.strip():
            return
        for attempt in range(2):
            if not await self._open_chat():
                raise VpError("the Teams chat composer did not open")
            before = await self._my_keys(text)
            if not await self._insert(text, paste_first=attempt == 0):
                log.info("teams.chat_insert_mismatch", attempt=attempt)
                continue
            if not await self._eval(_SEND_JS):
                await self._eval(_EDITOR_JS, [list(_EDITOR_SELECTORS), "focus", ""])
                await self.page.keyboard.press("Enter")
            deadline = time.monotonic() + CHAT_CONFIRM_S
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                if await self._my_keys(text) - before:
                    return
            log.info("teams.chat_not_confirmed", attempt=attempt)
        raise VpError("the chat message did not appear in the Teams chat")
