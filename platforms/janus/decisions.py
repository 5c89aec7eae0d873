"""Janus AudioBridge demo page: pure decisions over its page snapshot (``page.js``).

The demo shows errors in a bootbox dialog ("The room has been destroyed", "No such room"),
``#room`` once in the room, and ``#list`` with the other participants. It has no chat and no
active-speaker display: with one other participant in the room, everything the VP hears is
theirs.
"""

from __future__ import annotations

from typing import TypedDict

from platforms.base import JoinState, MeetingContext, MeetingOver, MeetingRules, Phase, Refused
from platforms.texts import load_texts
from vp.lifecycle import Reason

TEXTS = load_texts(__file__)  # the page texts: texts.toml


class JanusSnapshot(TypedDict):
    dialog: str | None
    names: list[str]  # the other participants
    inRoom: bool  # #room not display:none
    roomShown: bool  # #room visible
    start: str | None  # the label of the enabled, visible Start/Stop button
    username: bool  # the display-name field is visible and editable


# What a page being replaced (the demo reloads after the room is gone) looks like.
NO_ROOM = JanusSnapshot(
    dialog=None, names=[], inRoom=False, roomShown=False, start=None, username=False
)


def join_state(s: JanusSnapshot, *, registered: bool) -> JoinState:
    dialog = s["dialog"]
    if dialog:
        if TEXTS["room_missing"].search(dialog):
            return TEXTS.refusal("room_missing")
        if registered:
            return Refused(Reason.MEETING_NOT_FOUND, "the room could not be joined")
        return Refused(Reason.MEETING_NOT_FOUND, "the Janus session could not be created")
    return Phase.ADMITTED if s["roomShown"] else Phase.PREJOIN


def end_signal(s: JanusSnapshot | None, _ctx: MeetingContext | None = None) -> MeetingOver | None:
    s = s or NO_ROOM
    if s["dialog"] and TEXTS["room_destroyed"].search(s["dialog"]):
        return MeetingOver(Reason.HOST_ENDED, "the room has been destroyed")
    return None


def gone_signal(s: JanusSnapshot | None) -> MeetingOver | None:
    s = s or NO_ROOM
    if not s["inRoom"] and not s["dialog"]:
        return MeetingOver(Reason.REMOVED, "the page left the room")
    return None


def speaker(s: JanusSnapshot, _ctx: MeetingContext | None = None) -> str | None:
    """The demo shows no active speaker: the one other participant, if alone with the VP."""
    return s["names"][0] if len(s["names"]) == 1 else None


def others(s: JanusSnapshot, _ctx: MeetingContext | None = None) -> tuple[str, ...]:
    return tuple(s["names"])  # #list holds the others; the VP is in #participant


RULES: MeetingRules[JanusSnapshot] = MeetingRules(
    end_signal=end_signal,
    gone_signal=gone_signal,
    in_meeting=lambda _s: True,  # decided by the end and gone signals
    others=others,
    speaker=speaker,
)
