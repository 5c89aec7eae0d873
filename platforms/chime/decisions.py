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
from platforms.toolkit import ChatLine, missing_ui, platform_said, refusal_detail
from vp.lifecycle import Reason

C = "Amazon Chime"  # the platform's name in refusal details

SYSTEM_SENDER = "Amazon Chime"

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
# Texts of dialog buttons that only acknowledge a notice (recording, tips…).
_ACK_BUTTONS = re.compile(r"^(ok|okay|got it|dismiss|close|continue|i understand)$", re.I)
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
    if s["captcha"] or CAPTCHA.search(text):
        return Refused(Reason.CAPTCHA, "a captcha / bot check blocks the join")
    if _SIGN_IN_PATH.search(urlsplit(s["url"]).path):
        return Refused(Reason.LOGIN_REQUIRED, "the meeting requires signing in")
    # Pages that let a guest go on (name, device setup, lobby) may still offer "Sign in".
    guest_path = s["name"] or s["deviceJoin"] or WAITING.search(text)
    if LOGIN_REQUIRED.search(text) and not guest_path:
        said = platform_said(LOGIN_REQUIRED, text)
        detail = refusal_detail("the meeting requires signing in", C, said)
        return Refused(Reason.LOGIN_REQUIRED, detail)
    if DENIED.search(text):
        said = platform_said(DENIED, text)
        return Refused(Reason.DENIED, refusal_detail("the request to join was denied", C, said))
    if passcode_sent and WRONG_PASSCODE.search(text):
        said = platform_said(WRONG_PASSCODE, text)
        detail = refusal_detail("the moderator passcode was refused", C, said)
        return Refused(Reason.WRONG_PASSCODE, detail)
    if NOT_FOUND.search(text):
        said = platform_said(NOT_FOUND, text)
        detail = refusal_detail("the meeting was not found", C, said)
        return Refused(Reason.MEETING_NOT_FOUND, detail)
    return None


def join_state(s: ChimeSnapshot, *, passcode_sent: bool, has_passcode: bool) -> JoinState:
    refused = refusal(s, passcode_sent)
    if refused is not None:
        return refused
    moderator_wait = bool(WAITING_FOR_MODERATOR.search(s["text"]))
    if moderator_wait and has_passcode and not passcode_sent:
        return Phase.PREJOIN  # enter the moderator passcode
    # The waiting room is decided before any in-meeting check.
    if moderator_wait or WAITING.search(s["text"]):
        return Phase.LOBBY
    return Phase.ADMITTED if s["inMeeting"] else Phase.PREJOIN


def moderator_passcode_wanted(s: ChimeSnapshot) -> bool:
    return bool(WAITING_FOR_MODERATOR.search(s["text"]))


# -- the meeting --------------------------------------------------------------------------
def is_me(sender: str, me: str) -> bool:
    return sender in (me, "You", "Me") or sender.startswith(f"{me} (")


def end_signal(s: ChimeSnapshot | None, ctx: MeetingContext) -> MeetingOver | None:
    if s is None:
        return None
    app_host = urlsplit(ctx.meeting_url).hostname
    if REMOVED.search(s["text"]):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    if ENDED.search(s["text"]):
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
    return next((label for label in s["dialogButtons"] if _ACK_BUTTONS.match(label)), None)


def mic_on(s: ChimeSnapshot) -> bool:
    return (s["mic"] or "").lower().startswith("mute")  # "Mute my microphone": it is on


def camera_on(s: ChimeSnapshot) -> bool:
    return re.match(r"(turn off|stop)", s["video"] or "", re.I) is not None


RULES: MeetingRules[ChimeSnapshot] = MeetingRules(
    end_signal, gone_signal, in_meeting, others, speaker, chat_lines, alone
)
