"""Amazon Chime's decisions: pure functions over the web app's page snapshot.

The snapshot is what ``page.js`` returns; everything here is unit-tested from recorded
snapshots (tests/unit/test_decisions.py). Anonymous guests wait in the Waiting Room (a dialog
over the device preview) until admitted or denied; a moderated meeting waits for a moderator.
End: "Your meeting has ended", removal texts, the URL leaving the Chime host, or the meeting
controls gone.
"""

from __future__ import annotations

import re
from typing import TypedDict
from urllib.parse import urlsplit

from platforms.base import JoinState, MeetingContext, MeetingOver, MeetingRules, Phase, Refused
from platforms.texts import load_texts
from platforms.toolkit import ChatLine, missing_ui
from vp.lifecycle import Reason

SYSTEM_SENDER = "Amazon Chime"

# -- page texts: texts.toml -----------------------------------------------------------------
TEXTS = load_texts(__file__)
_NO_SPEAKER = frozenset({"", "no one", "nobody", "none", "-"})
_SIGN_IN_PATH = re.compile(r"(^|/)(sign-?in|login|oauth)(/|$)", re.I)


class ChimeSnapshot(TypedDict):
    url: str
    text: str
    cookie: bool
    name: bool
    deviceJoin: bool
    passcodeInput: bool
    inMeeting: bool
    controlBar: bool
    captcha: bool
    dialogButtons: list[str]
    speaker: str | None
    present: list[str] | None  # the roster's "Present" section (the VP included), if open
    presentCount: int | None
    chat: list[tuple[str, str]] | None  # (sender, text); None while the panel is closed
    chatOpen: bool
    chatToggle: bool
    rosterToggle: bool
    mic: str | None
    video: str | None


# -- join ---------------------------------------------------------------------------------
def refusal(s: ChimeSnapshot, passcode_sent: bool) -> Refused | None:
    """The refusal a snapshot shows (fast, no waiting)."""
    text = s["text"]
    if s["captcha"] or TEXTS["captcha"].search(text):
        return TEXTS.refusal("captcha")
    if _SIGN_IN_PATH.search(urlsplit(s["url"]).path):
        return TEXTS.refusal("login_required")
    # Pages that let a guest go on (name, device setup, lobby) may still offer "Sign in".
    guest_path = s["name"] or s["deviceJoin"] or TEXTS["lobby"].search(text)
    refused = None if guest_path else TEXTS.refused("login_required", text)
    refused = refused or TEXTS.refused("denied", text)
    if passcode_sent:
        refused = refused or TEXTS.refused("wrong_passcode", text)
    return refused or TEXTS.refused("not_found", text)


def join_state(s: ChimeSnapshot, *, passcode_sent: bool, has_passcode: bool) -> JoinState:
    refused = refusal(s, passcode_sent)
    if refused is not None:
        return refused
    moderator_wait = bool(TEXTS["waiting_for_moderator"].search(s["text"]))
    if moderator_wait and has_passcode and not passcode_sent:
        return Phase.PREJOIN  # enter the moderator passcode
    # The waiting room is decided before any in-meeting check.
    if moderator_wait or TEXTS["lobby"].search(s["text"]):
        return Phase.LOBBY
    return Phase.ADMITTED if s["inMeeting"] else Phase.PREJOIN


def moderator_passcode_wanted(s: ChimeSnapshot) -> bool:
    return bool(TEXTS["waiting_for_moderator"].search(s["text"]))


# -- the meeting --------------------------------------------------------------------------
def is_me(sender: str, me: str) -> bool:
    return sender in (me, "You", "Me") or sender.startswith(f"{me} (")


def end_signal(s: ChimeSnapshot | None, ctx: MeetingContext) -> MeetingOver | None:
    if s is None:
        return None
    app_host = urlsplit(ctx.meeting_url).hostname
    if TEXTS["removed"].search(s["text"]):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    if TEXTS["ended"].search(s["text"]):
        return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
    url = s["url"]
    if url.startswith("about:blank") or (app_host and urlsplit(url).hostname != app_host):
        return MeetingOver(Reason.HOST_ENDED, "the page left the meeting")
    return None


def in_meeting(s: ChimeSnapshot) -> bool:
    return s["inMeeting"]


gone_signal = missing_ui(
    in_meeting, MeetingOver(Reason.HOST_ENDED, "the meeting controls went away")
)


def others(s: ChimeSnapshot, ctx: MeetingContext) -> tuple[str, ...] | None:
    """The roster's names but the VP's (the roster lists it too); None: roster closed."""
    present = s["present"]
    if present is None:
        return None
    names = list(present)
    if ctx.me in names:
        names.remove(ctx.me)
    return tuple(names)


def alone(s: ChimeSnapshot, others: tuple[str, ...] | None) -> bool | None:
    if others is None:
        # Names unknown; the "Present" count (the VP included) still tells "alone".
        return True if s["presentCount"] == 1 else None
    return not others


def speaker(s: ChimeSnapshot, ctx: MeetingContext) -> str | None:
    name = (s["speaker"] or "").strip()
    return None if name.lower() in _NO_SPEAKER or name == ctx.me else name


def chat_lines(s: ChimeSnapshot, ctx: MeetingContext) -> list[ChatLine]:
    """Chime shows no message ids: a line is its sender and text (SeenChat counts copies)."""
    return [
        ChatLine(f"{sender}\n{text}", sender, text, mine=is_me(sender, ctx.me))
        for sender, text in s["chat"] or ()
        if sender and text and sender != SYSTEM_SENDER
    ]


def ack_button(s: ChimeSnapshot) -> str | None:
    """The label of a dialog button that merely acknowledges a notice, if one is shown."""
    return next((label for label in s["dialogButtons"] if TEXTS["ack_buttons"].match(label)), None)


def mic_on(s: ChimeSnapshot) -> bool:
    return (s["mic"] or "").lower().startswith("mute")  # "Mute my microphone": it is on


def camera_on(s: ChimeSnapshot) -> bool:
    return re.match(r"(turn off|stop)", s["video"] or "", re.I) is not None


RULES: MeetingRules[ChimeSnapshot] = MeetingRules(
    end_signal, gone_signal, in_meeting, others, speaker, chat_lines, alone
)
