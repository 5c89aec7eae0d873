"""Teams' decisions: pure functions over the light-meetings client's page snapshots.

The snapshots are what ``page.js`` returns (``joinState`` before admission, ``meetingState``
after); everything here is unit-tested from recorded snapshots (tests/unit/test_decisions.py).
Only end/removed SCREENS end a meeting, and only once the calling controls are gone; toasts
and other transient alerts never do (a mute toast caused false removals, VX #600).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, TypedDict
from urllib.parse import urlsplit

from platforms.base import JoinState, MeetingContext, MeetingOver, MeetingRules, Phase, Refused
from platforms.texts import load_texts
from platforms.toolkit import ChatLine, platform_said
from vp.errors import JoinError
from vp.lifecycle import Reason

# Join clicked, Join button disabled this many polls with no lobby text: a lobby all the same (MB)
LOBBY_DISABLED_POLLS = 20

TEXTS = load_texts(__file__)  # the page texts: texts.toml
END_URL_RE = re.compile(r"postmeeting|meetingended|calling/end", re.I)
LOGIN_HOSTS = re.compile(
    r"^(?:login\.microsoftonline\.(?:com|us)|login\.live\.com|login\.microsoft\.com)$", re.I
)


def join_error(state: Mapping[str, Any]) -> JoinError | None:
    """The failure a join-state snapshot shows, if any (pure)."""
    text = str(state.get("text") or "")
    retry = str(state.get("retryTitle") or "")
    host = str(state.get("host") or "")
    if state.get("captcha") or TEXTS["captcha"].search(text):
        return JoinError("Teams asks to verify a real person (captcha)", reason=Reason.CAPTCHA)
    if LOGIN_HOSTS.match(host) or state.get("loginField") or TEXTS["login"].search(text):
        return TEXTS.refusal("login", platform_said(TEXTS["login"], text)).error()
    if TEXTS["lobby_timeout"].search(retry) or TEXTS["lobby_timeout"].search(text):
        return JoinError(
            "no one admitted the VP from the lobby", reason=Reason.WAITING_ROOM_TIMEOUT
        )
    refused = TEXTS.refused("denied", retry, text) or TEXTS.refused("wrong_passcode", text)
    refused = refused or TEXTS.refused("not_found", text)
    if refused is not None:
        return refused.error()
    if state.get("e2ee"):
        return JoinError(
            "the meeting cannot be joined from the web", reason=Reason.MEETING_NOT_FOUND
        )
    return None


def end_signal(
    state: Mapping[str, Any] | None, _ctx: MeetingContext | None = None
) -> MeetingOver | None:
    """A strong "the meeting is over for us" signal in one in-meeting snapshot (pure).

    Only end/removed SCREENS count, and only once the calling controls are gone; toasts and
    other transient alerts never do. The caller confirms it over consecutive polls.
    """
    if state is None:
        return None
    url = str(state.get("url") or "")
    if url == "about:blank" or END_URL_RE.search(urlsplit(url).path + "#" + urlsplit(url).fragment):
        return MeetingOver(Reason.HOST_ENDED, "the page left the meeting")
    if state.get("controls"):
        return None
    retry = str(state.get("retryTitle") or "")
    if retry and TEXTS["removed"].search(retry):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    if retry and TEXTS["ended"].search(retry):
        return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
    if state.get("endScreen"):
        title = str(state.get("endTitle") or "")
        if TEXTS["removed"].search(title):
            return MeetingOver(Reason.REMOVED, "removed from the meeting")
        return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
    if state.get("e2ee"):
        return MeetingOver(Reason.HOST_ENDED, "the call ended")
    return None


class JoinButton(TypedDict):
    disabled: bool


class NameField(TypedDict):
    value: str


class TeamsJoinSnapshot(TypedDict):
    url: str
    host: str
    text: str
    empty: bool
    captcha: bool
    loginField: bool
    retryTitle: str | None
    e2ee: bool
    avModal: bool
    cookie: bool
    continueBtn: bool
    passcode: bool
    name: NameField | None
    join: JoinButton | None
    inMeeting: bool


class TeamsChatItem(TypedDict):
    key: str
    sender: str | None
    text: str
    mine: bool


class TeamsMeetingSnapshot(TypedDict, total=False):
    """total=False: while the page navigates the driver knows only the URL."""

    url: str
    controls: bool
    retryTitle: str | None
    endScreen: bool
    endTitle: str | None
    e2ee: bool
    text: str
    names: list[str]
    badge: int | None
    speakers: list[str]
    chat: list[TeamsChatItem]
    chatOpen: bool
    chatPressed: bool | None
    micOn: bool | None


def join_state(
    s: TeamsJoinSnapshot, *, was_in_lobby: bool, disabled_polls: int, restart: bool
) -> JoinState:
    """``disabled_polls``: polls in a row with the Join button disabled after a click;
    ``restart``: the heavy client loaded (``lightExperience=false``) and may be left once."""
    error = join_error(s)
    if error is not None:
        return Refused(error.reason, error.detail or "the meeting refused the VP")
    if restart or s["avModal"] or s["cookie"] or s["continueBtn"]:
        # The AV modal can come after Join, with the Join button behind it: not a lobby.
        return Phase.PREJOIN
    if s["passcode"] and not s["name"]:
        return Phase.PREJOIN
    join = s["join"]
    lobby = bool(TEXTS["lobby"].search(s["text"])) or (
        disabled_polls >= LOBBY_DISABLED_POLLS and not s["inMeeting"]
    )
    if lobby:  # checked before any sign of being in the meeting
        return Phase.LOBBY
    if was_in_lobby and join and not join["disabled"] and not s["inMeeting"]:
        # The Join button came back: the lobby connection failed (ATT).
        return Refused(Reason.DENIED, "the lobby dropped the VP")
    if s["inMeeting"] and not join:
        return Phase.ADMITTED
    return Phase.PREJOIN


def gone_signal(s: TeamsMeetingSnapshot | None) -> MeetingOver | None:
    """The calling controls missing (a flicker while reconnecting, or the end)."""
    if s is not None and s.get("controls"):
        return None
    if s is not None and TEXTS["removed"].search(str(s.get("text") or "")):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    return MeetingOver(Reason.HOST_ENDED, "the meeting controls are gone")


def is_self(name: str, own_names: Collection[str]) -> bool:
    """The VP itself: its name, or its name with a suffix such as " (Guest)"."""
    return any(
        name == own or (name.startswith(own + " (") and name.endswith(")")) for own in own_names
    )


def others(s: TeamsMeetingSnapshot, ctx: MeetingContext) -> tuple[str, ...]:
    return tuple(n for n in s.get("names") or () if not is_self(str(n), ctx.own_names))


def speaker(s: TeamsMeetingSnapshot, ctx: MeetingContext) -> str | None:
    for name in map(str, s.get("speakers") or ()):
        if not is_self(name, ctx.own_names) and name.lower() not in ("no one", "nobody"):
            return name
    return None


def alone(s: TeamsMeetingSnapshot, others: tuple[str, ...] | None) -> bool:
    """The People badge counts the VP."""
    badge = s.get("badge")
    return not (others or (isinstance(badge, int) and badge >= 2))


def chat_lines(s: TeamsMeetingSnapshot, ctx: MeetingContext) -> list[ChatLine]:
    lines = []
    for item in s.get("chat") or ():
        sender = item.get("sender")
        if not item.get("key"):
            continue
        mine = bool(item.get("mine") or (sender and is_self(str(sender), ctx.own_names)))
        lines.append(
            ChatLine(str(item["key"]), str(sender or "Unknown"), str(item.get("text") or ""), mine)
        )
    return lines


def norm(text: str) -> str:
    return " ".join(text.split())


def in_meeting(s: TeamsMeetingSnapshot) -> bool:
    return bool(s.get("controls"))


RULES: MeetingRules[TeamsMeetingSnapshot] = MeetingRules(
    end_signal, gone_signal, in_meeting, others, speaker, chat_lines, alone
)
