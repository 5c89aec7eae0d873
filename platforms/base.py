"""The platform driver ABC: what every meeting platform must do for a VP.

A driver owns the meeting page of one VP. It joins (reporting the waiting room through its
events), then watches the meeting — speakers, participants, chat, the end — until the meeting
is over for the VP, and leaves through the UI's own flow. It never touches audio: the capture
script does that for every platform alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import SplitResult

from vp.errors import VpError
from vp.lifecycle import Reason
from vp.urls import HostRule

if TYPE_CHECKING:  # the control plane resolves URLs without a browser (e.g. in Lambda)
    from playwright.async_api import Page


# -- events a driver reports (small, frequent: dataclasses) ------------------------------
@dataclass(frozen=True, slots=True)
class WaitingRoom:
    """The VP is held in a waiting room or lobby."""


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
