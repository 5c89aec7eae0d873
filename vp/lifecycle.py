"""The VP lifecycle (contract 2) as a pure state machine: no I/O, no clock of its own.

Every layer (the VP process, the control plane, the stores) validates transitions here, so
a status history can never say something the contract forbids, e.g. COMPLETED without JOINED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    SCHEDULED = "SCHEDULED"
    INITIALIZING = "INITIALIZING"
    JOINING = "JOINING"
    WAITING_ROOM = "WAITING_ROOM"
    JOINED = "JOINED"
    LEAVING = "LEAVING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


class Reason(StrEnum):
    # COMPLETED
    HOST_ENDED = "host-ended"
    REMOVED = "removed"
    ALONE = "alone"
    END_COMMAND = "end-command"
    MAX_DURATION = "max-duration"
    STOPPED = "stopped"
    # FAILED
    INVALID_URL = "invalid-url"
    MEETING_NOT_FOUND = "meeting-not-found"
    WRONG_PASSCODE = "wrong-passcode"
    WAITING_ROOM_TIMEOUT = "waiting-room-timeout"
    DENIED = "denied"
    LOGIN_REQUIRED = "login-required"
    CAPTCHA = "captcha"
    BLOCKED = "blocked"
    BROWSER_CRASHED = "browser-crashed"
    TRANSCRIBER_UNAVAILABLE = "transcriber-unavailable"
    LAUNCH_FAILED = "launch-failed"
    INTERNAL_ERROR = "internal-error"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

COMPLETED_REASONS = frozenset(
    {
        Reason.HOST_ENDED,
        Reason.REMOVED,
        Reason.ALONE,
        Reason.END_COMMAND,
        Reason.MAX_DURATION,
        Reason.STOPPED,
    }
)
FAILED_REASONS = frozenset(Reason) - COMPLETED_REASONS

# Allowed successor statuses. FAILED and CANCELLED are reachable from every live status
# (a crash or a cancel can happen at any moment); the table lists the rest.
_NEXT: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset({Status.INITIALIZING}),
    Status.INITIALIZING: frozenset({Status.JOINING}),
    Status.JOINING: frozenset({Status.WAITING_ROOM, Status.JOINED, Status.LEAVING}),
    Status.WAITING_ROOM: frozenset({Status.JOINING, Status.JOINED, Status.LEAVING}),
    Status.JOINED: frozenset({Status.LEAVING, Status.COMPLETED}),
    Status.LEAVING: frozenset({Status.COMPLETED}),
}


class TransitionError(ValueError):
    """Raised by :func:`check_transition` for a transition the contract forbids."""


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One status object of contract 2."""

    ts: str
    vp_id: str
    status: Status
    reason: Reason | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "vp_id": self.vp_id,
            "status": self.status.value,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
        }


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_transition(
    current: Status | None,
    new: Status,
    reason: Reason | None,
    *,
    joined: bool,
) -> None:
    """Raise :class:`TransitionError` unless ``current → new`` (with ``reason``) is allowed.

    ``joined`` says whether the VP has been JOINED at some point; COMPLETED needs it.
    """
    if new is Status.COMPLETED and not joined:
        raise TransitionError("a VP that never reached JOINED cannot end COMPLETED")
    if current is None:
        if new not in (Status.SCHEDULED, Status.INITIALIZING):
            raise TransitionError(f"a VP starts SCHEDULED or INITIALIZING, not {new}")
    elif current in TERMINAL:
        raise TransitionError(f"{current} is terminal; cannot become {new}")
    elif new not in (Status.FAILED, Status.CANCELLED) and new not in _NEXT[current]:
        raise TransitionError(f"{current} cannot become {new}")

    if new is Status.COMPLETED:
        if reason not in COMPLETED_REASONS:
            raise TransitionError(f"COMPLETED needs a completion reason, got {reason}")
    elif new is Status.FAILED:
        if reason not in FAILED_REASONS:
            raise TransitionError(f"FAILED needs a failure reason, got {reason}")
    elif new is Status.LEAVING:
        if reason is not None and reason not in COMPLETED_REASONS:
            raise TransitionError(f"LEAVING carries a completion reason, got {reason}")
    elif new is Status.CANCELLED:
        if reason is not None and reason is not Reason.STOPPED:
            raise TransitionError(f"CANCELLED carries no reason or 'stopped', got {reason}")
    elif reason is not None:
        raise TransitionError(f"{new} carries no reason, got {reason}")


@dataclass(slots=True)
class Lifecycle:
    """The status history of one VP, advanced only through allowed transitions."""

    vp_id: str
    clock: Callable[[], str] = utc_now_iso
    history: list[StatusEvent] = field(default_factory=list)
    joined: bool = False

    @property
    def status(self) -> Status | None:
        return self.history[-1].status if self.history else None

    @property
    def terminal(self) -> bool:
        status = self.status
        return status is not None and status.terminal

    def can(self, new: Status, reason: Reason | None = None) -> bool:
        try:
            check_transition(self.status, new, reason, joined=self.joined)
        except TransitionError:
            return False
        return True

    def advance(
        self, new: Status, reason: Reason | None = None, detail: str | None = None
    ) -> StatusEvent:
        """Record ``new`` and return its status object; raise TransitionError if forbidden."""
        check_transition(self.status, new, reason, joined=self.joined)
        event = StatusEvent(self.clock(), self.vp_id, new, reason, detail)
        self.history.append(event)
        if new is Status.JOINED:
            self.joined = True
        return event

    def finish(self, reason: Reason, detail: str | None = None) -> StatusEvent:
        """End the VP with the terminal status ``reason`` implies.

        A completion reason before JOINED becomes CANCELLED (stopped) — the contract forbids
        COMPLETED without JOINED; a failure reason always becomes FAILED.
        """
        if reason in FAILED_REASONS:
            return self.advance(Status.FAILED, reason, detail)
        if self.joined:
            return self.advance(Status.COMPLETED, reason, detail)
        return self.advance(Status.CANCELLED, None, detail or f"ended before joining ({reason})")
