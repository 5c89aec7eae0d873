"""The platform driver ABC: what every meeting platform must do for a VP.

A driver owns the meeting page of one VP. It joins (reporting the waiting room through its
events), then watches the meeting — speakers, participants, chat, the end — until the meeting
is over for the VP, and leaves through the UI's own flow. It never touches audio: the capture
script does that for every platform alike.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast
from urllib.parse import SplitResult

import structlog

from platforms.toolkit import (
    AloneTimer,
    ChatLine,
    Debounce,
    PageScript,
    SeenChat,
    page_change,
    platform_said,
    read_snapshot,
)
from vp.errors import JoinError, VpError
from vp.incoming_video import IncomingVideo
from vp.lifecycle import Reason
from vp.urls import HostRule

if TYPE_CHECKING:  # the control plane resolves URLs without a browser (e.g. in Lambda)
    from playwright.async_api import Frame, Page

log = structlog.get_logger(__name__)


# -- events a driver reports (small, frequent: dataclasses) ------------------------------
@dataclass(frozen=True, slots=True)
class WaitingRoom:
    """The VP is held in a waiting room or lobby; ``text``: what the lobby says, in the
    platform's own words ("" when unknown), for the WAITING_ROOM status detail."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class SpeakerChanged:
    name: str


@dataclass(frozen=True, slots=True)
class ParticipantsChanged:
    names: tuple[str, ...]  # other participants, the VP excluded


@dataclass(frozen=True, slots=True)
class ChatReceived:
    sender: str
    text: str


DriverEvent = WaitingRoom | SpeakerChanged | ParticipantsChanged | ChatReceived
EventSink = Callable[[DriverEvent], None]


@dataclass(frozen=True, slots=True)
class MeetingOver:
    """Why the meeting is over for the VP (a contract 2 completion reason)."""

    reason: Reason
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class DriverSettings:
    name: str
    passcode: str | None = None
    join_timeout: float = 300.0
    alone_timeout: float = 120.0
    poll_interval: float = 1.0


class ChatUnsupported(VpError):
    """The platform's web client has no meeting chat."""


class PlatformDriver(ABC):
    """One meeting platform. Subclasses are registered in :mod:`platforms.registry`."""

    name: ClassVar[str]
    # Hosts a VP may browse to for this platform without VP_ALLOWED_HOSTS.
    host_rules: ClassVar[tuple[HostRule, ...]] = ()
    # More hosts the platform's client may navigate to on its own during a join (e.g. a
    # sign-in wall the driver must see to report login-required); never a meeting URL's host.
    navigation_rules: ClassVar[tuple[HostRule, ...]] = ()
    supports_chat: ClassVar[bool] = False
    chat_limit: ClassVar[int] = 1000  # characters per chat message the client accepts
    # A JS function expression ``({id, label, streamIds, origin}) => boolean`` deciding which
    # remote tracks the capture script takes directly (None: all). Teams, e.g., sends one
    # mixed ``mainAudio`` track plus redundant ones that would double the audio.
    capture_track_filter_js: ClassVar[str | None] = None
    # Capture in iframes too: the client (and the audio it plays) runs in a frame, possibly
    # cross-origin (Webex's #unified-webclient-iframe). The capture script is an init script,
    # so it runs in every frame; frames report through the context-wide binding.
    capture_all_frames: ClassVar[bool] = False
    # How the VP avoids receiving and decoding the meeting's cameras and screen shares (it
    # records audio only): see vp/incoming_video.py. Each driver states its choice.
    incoming_video: ClassVar[IncomingVideo] = IncomingVideo.NEGOTIATE_INACTIVE

    def __init__(self, page: Page, settings: DriverSettings, emit: EventSink) -> None:
        self.page = page
        self.settings = settings
        self.emit = emit

    @classmethod
    def claims(cls, parts: SplitResult) -> bool:
        """Whether a URL looks like one of this platform's (used to infer the platform)."""
        host = (parts.hostname or "").lower()
        return any(rule.matches(host) for rule in cls.host_rules)

    @classmethod
    def web_client_url(cls, url: str) -> str:
        """Rewrite an invite link to the URL of the web client; identity by default."""
        return url

    @classmethod
    def display_name(cls, name: str) -> str:
        """The VP's name as this platform accepts it."""
        return name

    @abstractmethod
    async def join(self, url: str) -> None:
        """Join the meeting at ``url``; return once in the meeting.

        Emits :class:`WaitingRoom` while held. Raises JoinError (with its contract reason)
        when the meeting refuses the VP; the caller bounds the whole call by join_timeout.
        """

    @abstractmethod
    async def watch(self) -> MeetingOver:
        """Follow the meeting (emitting events) until it is over for the VP."""

    @abstractmethod
    async def leave(self) -> None:
        """Leave through the UI's own leave flow (best effort; the caller bounds it)."""

    async def send_chat(self, text: str) -> None:
        """Post ``text`` in the meeting chat."""
        raise ChatUnsupported(f"{self.name} has no meeting chat")

    async def set_microphone(self, on: bool) -> bool:
        """Unmute (``on``) or mute the VP through the client's own microphone control, just
        before and right after it speaks; False when the platform refuses to unmute (the host
        muted everyone, "ask to unmute"). A driver whose client has such a control overrides
        this. The default — no control to use — is still safe: the VP's outgoing track carries
        no samples while it is not speaking (vp/capture_js/30-voice.js)."""
        return True

    def voice_frame(self) -> Frame | None:
        """The frame whose ``getUserMedia`` the client calls for its microphone, where the
        VP's voice must be played (Webex's client runs in a cross-origin iframe, with its own
        copy of the capture script); None: the page's main frame."""
        return None


# -- what a join snapshot says (platform decisions return these) ----------------------------
class Phase(StrEnum):
    PREJOIN = "prejoin"  # on the way in: the driver has something to click or type
    LOBBY = "lobby"  # held in a waiting room
    ADMITTED = "admitted"  # in the meeting


@dataclass(frozen=True, slots=True)
class Refused:
    """The meeting refused the VP (a contract 2 failure reason)."""

    reason: Reason
    detail: str

    def error(self) -> JoinError:
        return JoinError(self.detail, reason=self.reason)


JoinState = Phase | Refused

J = TypeVar("J")  # a platform's join snapshot (TypedDict)
M = TypeVar("M")  # a platform's meeting snapshot (TypedDict)


@dataclass(frozen=True, slots=True)
class MeetingContext:
    """What the meeting decisions know besides the snapshot."""

    me: str  # the VP's display name on this platform
    own_names: frozenset[str]  # every name the VP may be shown under
    meeting_url: str = ""  # the page's URL when the VP was admitted


def _no_chat(_snap: object, _ctx: MeetingContext) -> list[ChatLine]:
    return []


def _alone_when_no_others(_snap: object, others: tuple[str, ...] | None) -> bool | None:
    return None if others is None else not others


@dataclass(frozen=True, slots=True)
class MeetingRules(Generic[M]):
    """A platform's pure meeting decisions (its ``decisions`` module's ``RULES``)."""

    # A strong sign the meeting is over for the VP (debounced over the driver's end_polls).
    end_signal: Callable[[M | None, MeetingContext], MeetingOver | None]
    # The meeting UI missing (debounced over the longer gone_polls).
    gone_signal: Callable[[M | None], MeetingOver | None]
    # Whether the snapshot shows the meeting (people, speaker and chat are read then).
    in_meeting: Callable[[M], bool]
    # The other participants shown (None: the page does not say).
    others: Callable[[M, MeetingContext], tuple[str, ...] | None]
    # The active speaker shown, the VP and placeholders excluded.
    speaker: Callable[[M, MeetingContext], str | None]
    chat_lines: Callable[[M, MeetingContext], list[ChatLine]] = _no_chat
    # Alone (None: unknown), given the snapshot and others().
    alone: Callable[[M, tuple[str, ...] | None], bool | None] = _alone_when_no_others


class PolledDriver(PlatformDriver, Generic[J, M]):
    """A driver that reads one snapshot of the page per poll and decides with pure functions.

    The loops live here, once: :meth:`join` reads join snapshots until the platform's
    :meth:`join_state` says admitted (reporting the lobby, raising a refusal, otherwise letting
    :meth:`prejoin_step` act), and :meth:`watch` reads meeting snapshots, debounces the end
    (:attr:`rules` ``end_signal`` over :attr:`end_polls`, ``gone_signal`` over
    :attr:`gone_polls`), reports participants, the speaker and new chat lines, and leaves when
    alone. A platform supplies its page script, its pure decisions (:attr:`rules` and
    :meth:`join_state`) and its own steps (:meth:`prejoin_step`, :meth:`housekeeping`).
    """

    script: ClassVar[PageScript]
    rules: ClassVar[MeetingRules[Any]]
    join_poll_s: ClassVar[float] = 0.25
    lobby_poll_s: ClassVar[float] = 0.25
    # Read the next join snapshot as soon as the page changes (at most join_poll_s later)
    # rather than a fixed poll later: only for a driver whose pre-join steps each act once
    # (a toggle clicked again before the client showed the first click would undo it).
    join_on_change: ClassVar[bool] = False
    # The join snapshot that says admitted serves as the first meeting snapshot: only for a
    # driver whose join and meeting reads are the same page read and whose settle_in()
    # changes nothing on the page (one evaluate less between admission and JOINED).
    join_snapshot_is_meeting: ClassVar[bool] = False
    end_polls: ClassVar[int] = 2  # an end screen / URL must hold this many polls
    gone_polls: ClassVar[int] = 3  # the meeting UI missing this many polls in a row
    people_polls: ClassVar[int] = 1  # a new roster must hold this many polls
    alone_at_start: ClassVar[bool] = False
    # The lobby's own words in the join snapshot's text (quoted in the WAITING_ROOM detail).
    lobby_said: ClassVar[str | re.Pattern[str] | None] = None

    def __init_subclass__(cls, /, decisions: ModuleType | None = None, **kwargs: Any) -> None:
        """``class ZoomDriver(PolledDriver[...], decisions=zoom.decisions)``: the platform's
        pure ``RULES``, its ``page.js`` (next to the decisions module) and the lobby text of
        its ``texts.toml`` — what every driver would otherwise declare the same way."""
        super().__init_subclass__(**kwargs)
        if decisions is None:
            return
        cls.rules = decisions.RULES
        cls.script = PageScript(str(decisions.__file__))
        texts = getattr(decisions, "TEXTS", None)
        if texts is not None and "lobby" in texts.patterns:
            cls.lobby_said = texts["lobby"]

    def __init__(self, page: Page, settings: DriverSettings, emit: EventSink) -> None:
        super().__init__(page, settings, emit)
        self.me = self.display_name(settings.name)
        self.context = MeetingContext(self.me, frozenset({self.me, settings.name.strip()}))
        self.seen_chat = SeenChat()
        self._in_lobby = False
        self._names: tuple[str, ...] | None = None
        self._speaker: str | None = None
        self._people = Debounce[tuple[str, ...]](self.people_polls)

    # -- page access ---------------------------------------------------------------------
    @property
    def ui(self) -> Page | Frame:
        """Where the client's DOM lives (a frame on some platforms)."""
        return self.page

    async def call(self, name: str, arg: Any = None) -> Any:
        """Call ``name`` of the page script; None while the page navigates."""
        return await read_snapshot(self.ui, self.script.fn(name), arg)

    async def read_join(self) -> J | None:
        return cast("J | None", await self.call("joinState"))

    async def read_meeting(self) -> M | None:
        return cast("M | None", await self.call("meetingState"))

    # -- join ----------------------------------------------------------------------------
    async def open(self, url: str) -> None:
        await self.page.goto(url, wait_until="domcontentloaded")

    @abstractmethod
    def join_state(self, snap: J) -> JoinState:
        """Where the join stands (the platform's pure decision, with the driver's context)."""

    def lobby_words(self, snap: J) -> str:
        """What the lobby says ("" when unknown): the line of the snapshot's ``text``
        matching :attr:`lobby_said`."""
        text = snap.get("text") if isinstance(snap, dict) else None
        if self.lobby_said is None or not isinstance(text, str):
            return ""
        return platform_said(self.lobby_said, text)

    @abstractmethod
    async def prejoin_step(self, snap: J) -> float | None:
        """One pre-join action; returns how long to wait before the next poll (None: a poll)."""

    async def settle_in(self) -> None:
        """After admission, before JOINED: dismiss notices, mute, open panels."""

    async def join(self, url: str) -> None:
        await self.open(url)
        while True:
            snap = await self.read_join()
            if snap is None:  # navigating: redirects, landing pages
                await asyncio.sleep(self.join_poll_s)
                continue
            state = self.join_state(snap)
            if isinstance(state, Refused):
                raise state.error()
            if state is Phase.LOBBY:
                if not self._in_lobby:
                    self._in_lobby = True
                    log.info("driver.waiting_room", platform=self.name)
                    self.emit(WaitingRoom(self.lobby_words(snap)))
                await asyncio.sleep(self.lobby_poll_s)
                continue
            self._in_lobby = False
            if state is Phase.ADMITTED:
                break
            wait = await self.prejoin_step(snap)
            if wait is not None:
                await asyncio.sleep(wait)
            elif self.join_on_change:
                await page_change(self.ui, self.join_poll_s)
            else:
                await asyncio.sleep(self.join_poll_s)
        log.info("driver.admitted", platform=self.name)
        self.context = replace(self.context, meeting_url=self.page.url)
        await self.settle_in()
        # Who is here before JOINED, so the call starts with the right speaker. Chat is left
        # to watch(): the clients show only what was said since the VP joined.
        meeting = cast("M", snap) if self.join_snapshot_is_meeting else await self.read_meeting()
        if meeting is not None and self.rules.in_meeting(meeting):
            self.note_people(self.rules.others(meeting, self.context), force=True)
            self.note_speaker(meeting)

    # -- leave and chat helpers ----------------------------------------------------------
    async def wait_until_left(self, polls: int, shown: Callable[[M], bool] | None = None) -> None:
        """After the leave clicks: poll until the page no longer shows the meeting (``shown``,
        default :attr:`rules` ``in_meeting``), at most ``polls`` polls."""
        in_meeting = shown or self.rules.in_meeting
        for _ in range(polls):
            snap = await self.read_meeting()
            if snap is not None and not in_meeting(snap):
                return
            await asyncio.sleep(self.join_poll_s)

    async def chat_body(self, text: str) -> str:
        """``text`` as it is posted ("" when there is nothing to post). Raises when the page
        does not show the meeting: its chat is gone."""
        body = text.strip()
        if not body:
            return ""
        snap = await self.read_meeting()
        if snap is None or not self.rules.in_meeting(snap):
            raise VpError("not in the meeting: the chat is gone")
        return body

    # -- watch ---------------------------------------------------------------------------
    async def housekeeping(self, snap: M) -> None:
        """Keep the meeting usable (popups, audio, panels): at most a few clicks per poll."""

    def note_people(self, names: tuple[str, ...] | None, force: bool = False) -> None:
        if names is None:
            return
        held = names if force else self._people.see(names)
        if held is not None and held != self._names:
            self._names = held
            self.emit(ParticipantsChanged(held))

    def note_speaker(self, snap: M) -> None:
        speaker = self.rules.speaker(snap, self.context)
        if speaker and speaker != self._speaker:
            self._speaker = speaker
            self.emit(SpeakerChanged(speaker))

    def note_chat(self, snap: M) -> None:
        for line in self.seen_chat.new_lines(self.rules.chat_lines(snap, self.context)):
            if not line.mine:
                self.emit(ChatReceived(line.sender, line.text))

    async def own_chat_keys(self, text: str) -> list[str]:
        """Keys of the VP's own chat lines now showing ``text`` (confirms a send)."""
        snap = await self.read_meeting()
        lines = self.rules.chat_lines(snap, self.context) if snap is not None else []
        want = " ".join(text.split())
        return [x.key for x in lines if x.mine and " ".join(x.text.split()) == want]

    async def watch(self) -> MeetingOver:
        ends = Debounce[MeetingOver](self.end_polls)
        # Missing UI is one condition, whatever the page says about why on each poll.
        gone = Debounce[MeetingOver](self.gone_polls, key=lambda _over: "gone")
        alone = AloneTimer(self.settings.alone_timeout, alone_at_start=self.alone_at_start)
        rules = self.rules
        while True:
            snap = await self.read_meeting()
            signal = rules.end_signal(snap, self.context)
            over = ends.see(signal) or gone.see(rules.gone_signal(snap))
            if over is not None:
                return over
            if snap is not None and rules.in_meeting(snap):
                others = rules.others(snap, self.context)
                self.note_people(others)
                self.note_speaker(snap)
                self.note_chat(snap)
                if signal is None:  # an end notice is not dismissed
                    await self.housekeeping(snap)
                if alone.update(rules.alone(snap, others)):
                    return MeetingOver(Reason.ALONE, "no other participant")
            await asyncio.sleep(self.settings.poll_interval)
