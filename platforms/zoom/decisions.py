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
from platforms.texts import load_texts
from platforms.toolkit import ChatLine, missing_ui, platform_said
from vp.lifecycle import Reason

TEXTS = load_texts(__file__)  # the page texts: texts.toml
# The patterns the page script itself applies (passed as its argument).
PAGE_PATTERNS = {name: TEXTS[name].pattern for name in ("lobby", "passcode", "ended", "removed")}
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

    if s["captchaEl"] or TEXTS["captcha"].search(text):
        return Refused(Reason.CAPTCHA, "Zoom showed a captcha / bot wall")
    if s["title"].strip() == "Error - Zoom" or TEXTS["invalid"].search(text):
        return TEXTS.refusal("invalid", platform_said(TEXTS["invalid"], text))
    if TEXTS["login"].search(s["prompt"] or text) or re.search(r"/signin|/oauth", s["url"]):
        return TEXTS.refusal("login", platform_said(TEXTS["login"], s["prompt"], text))
    refused = TEXTS.refused("removed", modal)
    if refused is None and "/postattendee" in s["url"]:
        return TEXTS.refusal("ended", platform_said(TEXTS["ended"], modal))
    return refused or TEXTS.refused("ended", modal)


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
