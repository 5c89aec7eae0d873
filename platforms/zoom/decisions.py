"""Zoom's decisions: pure functions over the web client's page snapshots.

The snapshots are what ``page.js`` returns (``joinState`` before admission, ``meetingState``
after); everything here is unit-tested from recorded snapshots (tests/unit/test_decisions.py).
The waiting room is rendered inside ``.meeting-app``, so that element alone proves nothing;
admission is the footer's ``button[aria-label="Leave"]``, which never exists before. End
signals come from modal dialogs and the URL only (toasts and ``role=alert`` are never an end).
"""

from __future__ import annotations

import re
from typing import Literal, TypedDict
from urllib.parse import urlsplit

from platforms.base import JoinState, MeetingContext, MeetingOver, MeetingRules, Phase, Refused
from platforms.toolkit import ChatLine, missing_ui, platform_said, refusal_detail
from vp.lifecycle import Reason

Z = "Zoom"  # the platform's name in refusal details

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

# The patterns the page script itself applies (passed as its argument).
PAGE_PATTERNS = {
    "lobby": _LOBBY_RE,
    "passcode": _PASSCODE_RE,
    "ended": _ENDED_RE,
    "removed": _REMOVED_RE,
}
_NOT_A_NAME = re.compile(r"^(no one|n/a|)$", re.I)
_OWN_SENDERS = frozenset({"you", "me"})
_AUDIO_JOIN_LABEL = re.compile(r"join audio|^audio$", re.I)
_MIC_LIVE_LABEL = re.compile(r"^mute( my microphone)?$", re.I)
AUDIO_GRACE_S = 2.0  # let the client join computer audio by itself first
PASSCODE_VERDICT_S = 5.0  # a wrong-passcode message still showing this long after a retry


class PasscodeError(TypedDict):
    marked: bool  # shown before the VP's retry


class ZoomJoinSnapshot(TypedDict):
    url: str
    title: str
    text: str
    modalTexts: list[str]
    captchaEl: bool
    prompt: str
    consent: bool
    terms: bool
    permission: bool
    landing: bool
    hasName: bool
    nameValue: str | None
    hasPwd: bool
    pwdValue: str | None
    pwdError: PasscodeError | None
    join: bool
    joinDisabled: bool
    joinBusy: bool
    micOn: bool
    camOn: bool
    leave: bool
    lobby: bool


class ZoomChatRow(TypedDict):
    id: str
    sender: str
    text: str
    label: str


class ZoomMeetingSnapshot(TypedDict):
    url: str
    title: str
    inMeeting: bool
    client: bool
    speaker: str
    names: list[str]
    counter: int | None
    chat: list[ZoomChatRow]
    ended: str | None
    removed: str | None
    dismiss: bool
    audioLabel: str | None
    audioDialog: bool
    chatOpen: bool
    partsOpen: bool


# -- join ---------------------------------------------------------------------------------
def refusal(s: ZoomJoinSnapshot) -> Refused | None:
    """The refusal a join snapshot shows, if any."""
    text = s["text"]
    modal = "\n".join(s["modalTexts"])

    def has(pattern: str, where: str = text) -> bool:
        return re.search(pattern, where, re.I) is not None

    if s["captchaEl"] or has(_CAPTCHA_RE):
        return Refused(Reason.CAPTCHA, "Zoom showed a captcha / bot wall")
    if s["title"].strip() == "Error - Zoom" or has(_INVALID_RE):
        said = platform_said(_INVALID_RE, text)
        detail = refusal_detail("the meeting link is invalid", Z, said)
        return Refused(Reason.MEETING_NOT_FOUND, detail)
    if has(_LOGIN_RE, s["prompt"] or text) or re.search(r"/signin|/oauth", s["url"]):
        said = platform_said(_LOGIN_RE, s["prompt"], text)
        detail = refusal_detail(
            "the meeting requires signing in", Z, said, "let guests join without signing in"
        )
        return Refused(Reason.LOGIN_REQUIRED, detail)
    if has(_REMOVED_RE, modal):
        said = platform_said(_REMOVED_RE, modal)
        return Refused(Reason.DENIED, refusal_detail("the host did not let the VP in", Z, said))
    if has(_ENDED_RE, modal) or "/postattendee" in s["url"]:
        said = platform_said(_ENDED_RE, modal)
        detail = refusal_detail("the meeting ended before the VP was admitted", Z, said)
        return Refused(Reason.MEETING_NOT_FOUND, detail)
    return None


def join_state(s: ZoomJoinSnapshot) -> JoinState:
    refused = refusal(s)
    if refused is not None:
        return refused
    if s["lobby"]:
        return Phase.LOBBY
    return Phase.ADMITTED if s["leave"] else Phase.PREJOIN


def passcode_rejected(s: ZoomJoinSnapshot, since_submit: float) -> Refused | None:
    """After the VP's own passcode: a NEW rejection, or the old one outliving the retry."""
    error = s["pwdError"]
    if error is not None and (not error["marked"] or since_submit > PASSCODE_VERDICT_S):
        return Refused(Reason.WRONG_PASSCODE, "Zoom rejected the meeting passcode")
    return None


# -- the meeting --------------------------------------------------------------------------
def _is_own(name: str, me: str) -> bool:
    return name.casefold() in _OWN_SENDERS or name.casefold() == me.casefold()


def end_signal(s: ZoomMeetingSnapshot | None, ctx: MeetingContext) -> MeetingOver | None:
    if s is None:
        return None  # navigating: decide on the next polls
    meeting_host = urlsplit(ctx.meeting_url).netloc
    if s["removed"]:
        return MeetingOver(Reason.REMOVED, "Zoom: you have been removed")
    if s["ended"]:
        return MeetingOver(Reason.HOST_ENDED, "Zoom: the meeting has been ended by the host")
    parts = urlsplit(s["url"])
    if (
        parts.netloc != meeting_host
        or not parts.path.startswith("/wc/")
        or parts.path.startswith("/wc/leave")
        or s["title"].strip() == "Error - Zoom"
    ):
        return MeetingOver(Reason.HOST_ENDED, "Zoom: the page left the meeting")
    return None


def in_meeting(s: ZoomMeetingSnapshot) -> bool:
    return s["inMeeting"]  # while a reconnect unmounts the client, keep what we knew


# A reconnect unmounts the client for a while; for long, the meeting is gone.
gone_signal = missing_ui(in_meeting, MeetingOver(Reason.REMOVED, "Zoom: the meeting UI is gone"))


def others(s: ZoomMeetingSnapshot, ctx: MeetingContext) -> tuple[str, ...]:
    mine = ctx.me.casefold()
    return tuple(
        sorted({n for n in s["names"] if n.casefold() != mine and not _NOT_A_NAME.match(n)})
    )


def speaker(s: ZoomMeetingSnapshot, ctx: MeetingContext) -> str | None:
    name = s["speaker"]
    if not name or _NOT_A_NAME.match(name) or name.casefold() == ctx.me.casefold():
        return None
    return name


def chat_lines(s: ZoomMeetingSnapshot, ctx: MeetingContext) -> list[ChatLine]:
    return [
        ChatLine(
            key=row["id"] or f"{row['sender']}|{row['label']}|{row['text']}",
            sender=row["sender"],
            text=row["text"],
            mine=_is_own(row["sender"], ctx.me),
        )
        for row in s["chat"]
    ]


def alone(s: ZoomMeetingSnapshot, others: tuple[str, ...] | None) -> bool:
    """The participants counter counts the VP; without it, the names shown."""
    counter = s["counter"]
    if isinstance(counter, int):
        return max(counter - 1, 0) == 0
    return not others


RULES: MeetingRules[ZoomMeetingSnapshot] = MeetingRules(
    end_signal, gone_signal, in_meeting, others, speaker, chat_lines, alone
)


HousekeepingAction = Literal[
    "dismiss", "audio_dialog", "join_audio", "stay_muted", "open_chat", "open_participants"
]


def housekeeping(s: ZoomMeetingSnapshot, since_admitted: float) -> HousekeepingAction | None:
    """The one click a meeting poll needs: popups, computer audio, chat and roster panes."""
    label = s["audioLabel"]
    if s["dismiss"]:
        return "dismiss"
    if s["audioDialog"]:
        return "audio_dialog"
    if label and _AUDIO_JOIN_LABEL.search(label) and since_admitted >= AUDIO_GRACE_S:
        return "join_audio"
    if label and _MIC_LIVE_LABEL.match(label):
        return "stay_muted"
    if not s["chatOpen"]:
        return "open_chat"
    if not s["partsOpen"]:
        return "open_participants"
    return None
