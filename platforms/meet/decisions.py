"""Google Meet's decisions: pure functions over the page snapshots ``page.js`` returns.

Replayed from recorded snapshots in tests/unit/test_decisions.py. The facts behind them are in
``shared/facts/web-clients-meet-webex.md`` (Google Meet). Two traps shape the order of checks:

* the lobby already renders "Leave call", the toolbar and an effects tile, so admission is a
  participant tile other than the effects tile, ``[data-self-name]`` or the captions button —
  never Leave call — and lobby texts are checked first (BaaS#198, V-adm);
* the "Sign in with your Google account" modal says "Instead of waiting to be let in…", which
  is not a lobby (BaaS#90): lobby texts are the exact ones Meet shows while asking.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TypedDict
from urllib.parse import urlsplit

from platforms.base import JoinState, MeetingContext, MeetingOver, MeetingRules, Phase, Refused
from platforms.texts import load_texts
from platforms.toolkit import ChatLine, platform_said
from vp.lifecycle import Reason

TEXTS = load_texts(__file__)  # the page texts: texts.toml
LOGIN_HOSTS = frozenset({"accounts.google.com"})
BLOCK_HOSTS = frozenset({"workspace.google.com"})


class MeetSnapshot(TypedDict):
    url: str
    host: str
    text: str
    name: dict[str, str] | None  # {value}
    join: str | None  # the join button's text
    joinDisabled: bool
    mic: bool | None  # on?
    camera: bool | None
    dialog: dict[str, str] | None  # {kind: notice|dialog, label}
    tiles: int  # participant tiles other than the effects tile
    selfName: str | None
    captions: bool
    leaveCall: bool
    captcha: bool
    signIn: bool
    names: list[str]  # tile names, the VP's own tile excluded
    roster: list[str]  # the People panel's rows (aria-label), when open
    count: int | None  # span[data-avatar-count]
    speaker: str | None  # the tile showing a speaking indicator
    chat: list[dict[str, str]]  # {key, sender, text}
    chatButton: dict[str, bool] | None
    chatInput: bool
    audioElements: int


def refusal(s: MeetSnapshot, *, was_in_lobby: bool = False) -> Refused | None:
    """The refusal a snapshot shows, if any (pure)."""
    text = s["text"]
    host = s["host"].lower()
    if s["captcha"]:
        return Refused(Reason.CAPTCHA, "Google Meet shows a reCAPTCHA challenge")
    if host in LOGIN_HOSTS or s["signIn"]:
        return Refused(Reason.LOGIN_REQUIRED, "the meeting requires a Google account")
    refused = TEXTS.refused("not_found", text)
    if refused is not None:
        return refused
    if host in BLOCK_HOSTS or TEXTS["blocked"].search(text):
        return Refused(
            Reason.BLOCKED,
            "Google Meet refused this guest (\u201cYou can't join this video call\u201d):"
            " bot detection or an organisation that blocks anonymous guests",
        )
    refused = TEXTS.refused("no_response", text) or TEXTS.refused("denied", text)
    if refused is None and was_in_lobby and TEXTS["denied_after_lobby"].search(text):
        refused = TEXTS.refusal("denied", platform_said(TEXTS["denied_after_lobby"], text))
    return refused


def admitted(s: MeetSnapshot) -> bool:
    """In the call: a participant tile (not the effects tile), [data-self-name] or the
    captions button — never "Leave call", which the lobby renders too."""
    return bool(s["tiles"] or s["selfName"] or s["captions"])


def join_state(s: MeetSnapshot, *, was_in_lobby: bool = False) -> JoinState:
    refused = refusal(s, was_in_lobby=was_in_lobby)
    if refused is not None:
        return refused
    if s["dialog"] is not None:
        return Phase.PREJOIN  # a dialog to answer first (before or right after admission)
    if TEXTS["lobby"].search(s["text"]):
        return Phase.LOBBY  # before any sign of being in the call
    if admitted(s) and not s["join"]:
        return Phase.ADMITTED
    return Phase.PREJOIN


def end_signal(s: MeetSnapshot | None, ctx: MeetingContext) -> MeetingOver | None:
    """The meeting is over for the VP: an end screen (the call controls gone) or the page
    taken off the meeting's host."""
    if s is None:
        return None
    admitted_host = urlsplit(ctx.meeting_url).hostname if ctx.meeting_url else None
    if admitted_host and s["host"] and s["host"] != admitted_host:
        return MeetingOver(Reason.HOST_ENDED, "the page left the meeting")
    if s["leaveCall"]:
        return None
    text = s["text"]
    if TEXTS["removed"].search(text):
        return MeetingOver(Reason.REMOVED, "removed from the meeting")
    if TEXTS["ended"].search(text):
        return MeetingOver(Reason.HOST_ENDED, "the meeting has ended")
    return None


def gone_signal(s: MeetSnapshot | None) -> MeetingOver | None:
    if s is not None and s["leaveCall"]:
        return None
    return MeetingOver(Reason.HOST_ENDED, "the meeting controls are gone")


def in_meeting(s: MeetSnapshot) -> bool:
    return bool(s["leaveCall"]) and admitted(s)


def is_self(name: str, own_names: Collection[str]) -> bool:
    """The VP: its name, "You", or its name with a marker such as " (You)"."""
    name = name.strip()
    if name.lower() in ("you", "(you)"):
        return True
    return any(name == own or name.startswith(own + " (") for own in own_names)


def others(s: MeetSnapshot, ctx: MeetingContext) -> tuple[str, ...]:
    names: list[str] = []
    for raw in [*s["names"], *s["roster"]]:
        name = raw.strip()
        if name and not is_self(name, ctx.own_names) and name not in names:
            names.append(name)
    return tuple(names)


def speaker(s: MeetSnapshot, ctx: MeetingContext) -> str | None:
    name = s["speaker"]
    return name if name and not is_self(name, ctx.own_names) else None


def alone(s: MeetSnapshot, others_: tuple[str, ...] | None) -> bool:
    """The avatar count includes the VP."""
    count = s["count"]
    return not (others_ or (isinstance(count, int) and count >= 2))


def chat_lines(s: MeetSnapshot, ctx: MeetingContext) -> list[ChatLine]:
    lines = []
    for item in s["chat"]:
        key, sender, text = item.get("key"), item.get("sender") or "", item.get("text") or ""
        if not key or not text:
            continue
        mine = is_self(sender, ctx.own_names)
        lines.append(ChatLine(str(key), sender or "Unknown", text, mine))
    return lines


RULES: MeetingRules[MeetSnapshot] = MeetingRules(
    end_signal, gone_signal, in_meeting, others, speaker, chat_lines, alone
)
