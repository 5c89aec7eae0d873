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
from platforms.toolkit import ChatLine, platform_said, refusal_detail
from vp.errors import JoinError
from vp.lifecycle import Reason

T = "Teams"  # the platform's name in refusal details

# Join clicked, Join button disabled this many polls with no lobby text: a lobby all the same (MB)
LOBBY_DISABLED_POLLS = 20

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


def join_error(state: Mapping[str, Any]) -> JoinError | None:
    """The failure a join-state snapshot shows, if any (pure)."""
    text = str(state.get("text") or "")
    retry = str(state.get("retryTitle") or "")
    host = str(state.get("host") or "")
    if state.get("captcha") or CAPTCHA_RE.search(text):
        return JoinError("Teams asks to verify a real person (captcha)", reason=Reason.CAPTCHA)
    if LOGIN_HOSTS.match(host) or state.get("loginField") or LOGIN_RE.search(text):
        detail = refusal_detail(
            "the meeting requires signing in (anonymous join is disabled)",
            T,
            platform_said(LOGIN_RE, text),
            "ask the Teams admin to let anonymous users join meetings",
        )
        return JoinError(detail, reason=Reason.LOGIN_REQUIRED)
    if LOBBY_TIMEOUT_RE.search(retry) or LOBBY_TIMEOUT_RE.search(text):
        return JoinError(
            "no one admitted the VP from the lobby", reason=Reason.WAITING_ROOM_TIMEOUT
        )
    if DENIED_RE.search(retry) or DENIED_RE.search(text):
        said = platform_said(DENIED_RE, retry, text)
        detail = refusal_detail("the VP was denied access from the lobby", T, said)
        return JoinError(detail, reason=Reason.DENIED)
    if WRONG_PASSCODE_RE.search(text):
        said = platform_said(WRONG_PASSCODE_RE, text)
        detail = refusal_detail("the meeting passcode is wrong", T, said)
        return JoinError(detail, reason=Reason.WRONG_PASSCODE)
    if NOT_FOUND_RE.search(text):
        said = platform_said(NOT_FOUND_RE, text)
        detail = refusal_detail("the meeting link is invalid", T, said)
        return JoinError(detail, reason=Reason.MEETING_NOT_FOUND)
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
    if retry and REMOVED_RE.search(retry):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    if retry and ENDED_RE.search(retry):
        return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
    if state.get("endScreen"):
        title = str(state.get("endTitle") or "")
        if REMOVED_RE.search(title):
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
    lobby = bool(LOBBY_RE.search(s["text"])) or (
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
    if s is not None and REMOVED_RE.search(str(s.get("text") or "")):
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
