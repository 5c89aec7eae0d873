"""Webex's decisions: pure functions over the snapshot of the meeting page and its client frame.

The snapshot is what the driver reads with ``page.js`` (``top`` in the page, ``client`` in the
cross-origin client frame, None until that frame exists); everything here is unit-tested from
recorded snapshots (tests/unit/test_decisions.py). Texts: shared/facts/web-clients-meet-webex.md
(Webex › Lobby, denial, errors; End signals).
"""

from __future__ import annotations

import re
from typing import TypedDict

from platforms.base import JoinState, MeetingContext, MeetingOver, MeetingRules, Phase, Refused
from platforms.texts import load_texts
from platforms.toolkit import ChatLine, missing_ui, platform_said
from vp.lifecycle import Reason

TEXTS = load_texts(__file__)  # the page texts: texts.toml
_LABEL = re.compile(
    r"^from\s+(.*?)(?:\s+to\s+(everyone|.+?))?(?:\s+\d{1,2}:\d{2}(\s*[AP]M)?)?$", re.I
)


class WebexTop(TypedDict):
    url: str
    text: str
    cookie: bool
    joinFromBrowser: bool
    fallbackJoin: bool
    clientFrame: bool


class WebexClient(TypedDict):
    url: str
    text: str
    password: bool
    passwordError: bool
    captcha: bool
    nameInput: bool
    emailInput: bool
    joinButton: bool
    joinEnabled: bool
    lobby: bool
    inMeeting: bool
    mic: str | None
    camera: str | None
    speaker: str | None
    roster: list[str] | None  # the participants panel's names (the VP included), if open
    rosterOpen: bool
    count: int | None  # "Participants (N)", the VP included
    chat: list[tuple[str, str]] | None  # (label, text); None while the panel is closed
    chatOpen: bool
    dialogButtons: list[str]


class WebexSnapshot(TypedDict):
    top: WebexTop
    client: WebexClient | None


def page_text(s: WebexSnapshot) -> str:
    """The top page's and the client frame's text."""
    return _texts(s)


def _texts(s: WebexSnapshot) -> str:
    client = s["client"]
    return s["top"]["text"] + "\n" + (client["text"] if client else "")


# -- join ---------------------------------------------------------------------------------
def join_state(s: WebexSnapshot, *, passcode_sent: bool, has_passcode: bool) -> JoinState:
    """Refusals first (fast), then the lobby, then in the meeting; otherwise pre-join."""
    text = _texts(s)
    client = s["client"]
    if client is not None and client["captcha"]:
        return Refused(Reason.CAPTCHA, "a CAPTCHA on the password page")
    refused = TEXTS.refused("not_found", text) or TEXTS.refused("locked", text)
    refused = refused or TEXTS.refused("denied", text)
    if refused is not None:
        return refused
    if client is not None and client["password"]:
        wrong = TEXTS["incorrect_password"]
        if passcode_sent and (client["passwordError"] or wrong.search(text)):
            return TEXTS.refusal("incorrect_password", platform_said(wrong, text))
        if not has_passcode:
            return Refused(Reason.WRONG_PASSCODE, "the meeting needs a password and none was given")
        return Phase.PREJOIN
    if client is not None and (client["lobby"] or TEXTS["lobby"].search(client["text"])):
        return Phase.LOBBY
    if client is not None and client["inMeeting"]:
        return Phase.ADMITTED
    return Phase.PREJOIN


# -- the meeting --------------------------------------------------------------------------
def sender_of(label: str) -> str:
    """``from Alice to everyone  10:02 AM`` → ``Alice`` (a label without "from" as is)."""
    label = " ".join(label.split())
    m = _LABEL.match(label)
    return m.group(1).strip() if m else label


def end_signal(s: WebexSnapshot | None, ctx: MeetingContext) -> MeetingOver | None:
    if s is None:
        return None
    client = s["client"]
    text = client["text"] if client is not None else ""
    if TEXTS["removed"].search(text):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    if TEXTS["ended"].search(text):
        return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
    if client is not None and not client["inMeeting"] and TEXTS["left"].search(text):
        return MeetingOver(Reason.HOST_ENDED, "the meeting was disconnected")
    return None


def in_meeting(s: WebexSnapshot) -> bool:
    return s["client"] is not None and s["client"]["inMeeting"]


gone_signal = missing_ui(
    in_meeting, MeetingOver(Reason.HOST_ENDED, "the meeting controls went away")
)


def others(s: WebexSnapshot, ctx: MeetingContext) -> tuple[str, ...] | None:
    """The participants panel's names but the VP's; None while the panel is closed."""
    client = s["client"]
    if client is None or client["roster"] is None:
        return None
    names = list(client["roster"])
    if ctx.me in names:
        names.remove(ctx.me)
    return tuple(names)


def alone(s: WebexSnapshot, others: tuple[str, ...] | None) -> bool | None:
    if others is not None:
        return not others
    client = s["client"]
    count = client["count"] if client is not None else None
    return None if count is None else count <= 1


def speaker(s: WebexSnapshot, ctx: MeetingContext) -> str | None:
    client = s["client"]
    name = ((client["speaker"] if client else None) or "").strip()
    return None if not name or name in ctx.own_names else name


def chat_lines(s: WebexSnapshot, ctx: MeetingContext) -> list[ChatLine]:
    """No message ids: a line is its label and text (SeenChat counts copies); own lines are
    those labelled "from <the VP's name>"."""
    client = s["client"]
    lines = []
    for label, text in (client["chat"] if client else None) or ():
        sender = sender_of(label)
        if sender and text:
            mine = sender in ctx.own_names or sender.lower() in ("me", "you")
            lines.append(ChatLine(f"{label}\n{text}", sender, text, mine=mine))
    return lines


def ack_button(s: WebexClient) -> str | None:
    """The label of a dialog button that only answers a prompt ("No camera found" → OK, the
    device prompt → "Continue without microphone and camera"), if one is shown."""
    return next((b for b in s["dialogButtons"] if TEXTS["ack_buttons"].match(b)), None)


def mic_on(s: WebexClient) -> bool:
    """The button offers "Mute" (also "Mute microphone"…): the microphone is on."""
    return (s["mic"] or "").strip().lower().startswith("mute")


def camera_on(s: WebexClient) -> bool:
    """The button offers "Stop video" (AS; "Turn off camera" elsewhere): the camera is on."""
    return re.match(r"\s*(stop video|turn off)", s["camera"] or "", re.I) is not None


RULES: MeetingRules[WebexSnapshot] = MeetingRules(
    end_signal, gone_signal, in_meeting, others, speaker, chat_lines, alone
)
