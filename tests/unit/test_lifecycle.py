"""The lifecycle state machine (contract 2) without any I/O."""

import pytest

from vp.lifecycle import (
    COMPLETED_REASONS,
    FAILED_REASONS,
    Lifecycle,
    Reason,
    Status,
    TransitionError,
    check_transition,
)


def make() -> Lifecycle:
    return Lifecycle("vp1", clock=lambda: "2026-01-01T00:00:00.000Z")


def test_happy_path_records_history():
    life = make()
    for status in (Status.INITIALIZING, Status.JOINING, Status.WAITING_ROOM, Status.JOINED):
        life.advance(status)
    life.advance(Status.LEAVING, Reason.HOST_ENDED)
    final = life.advance(Status.COMPLETED, Reason.HOST_ENDED)
    assert [e.status for e in life.history][-1] is Status.COMPLETED
    assert final.to_dict() == {
        "ts": "2026-01-01T00:00:00.000Z",
        "vp_id": "vp1",
        "status": "COMPLETED",
        "reason": "host-ended",
        "detail": None,
    }
    assert life.terminal


def test_completed_requires_joined():
    life = make()
    life.advance(Status.INITIALIZING)
    life.advance(Status.JOINING)
    with pytest.raises(TransitionError, match="never reached JOINED"):
        life.advance(Status.COMPLETED, Reason.STOPPED)


def test_finish_before_join_becomes_cancelled_and_failure_stays_failed():
    life = make()
    life.advance(Status.INITIALIZING)
    assert life.finish(Reason.STOPPED).status is Status.CANCELLED
    life2 = make()
    life2.advance(Status.INITIALIZING)
    event = life2.finish(Reason.INVALID_URL, "bad host")
    assert (event.status, event.reason, event.detail) == (
        Status.FAILED,
        Reason.INVALID_URL,
        "bad host",
    )


@pytest.mark.parametrize("reason", sorted(FAILED_REASONS))
def test_completed_rejects_failure_reasons(reason):
    with pytest.raises(TransitionError):
        check_transition(Status.JOINED, Status.COMPLETED, reason, joined=True)


@pytest.mark.parametrize("reason", sorted(COMPLETED_REASONS))
def test_failed_rejects_completion_reasons(reason):
    with pytest.raises(TransitionError):
        check_transition(Status.JOINED, Status.FAILED, reason, joined=True)


def test_terminal_is_final():
    life = make()
    life.advance(Status.INITIALIZING)
    life.advance(Status.FAILED, Reason.INTERNAL_ERROR)
    for status in Status:
        assert not life.can(status, Reason.INTERNAL_ERROR)


def test_illegal_jumps():
    with pytest.raises(TransitionError):
        check_transition(None, Status.JOINED, None, joined=False)
    with pytest.raises(TransitionError):
        check_transition(Status.INITIALIZING, Status.JOINED, None, joined=False)
    with pytest.raises(TransitionError):
        check_transition(Status.JOINING, Status.JOINED, Reason.HOST_ENDED, joined=False)
    with pytest.raises(TransitionError):
        check_transition(Status.JOINED, Status.JOINING, None, joined=True)


def test_failed_reachable_from_every_live_status():
    for status in Status:
        if status.terminal:
            continue
        check_transition(status, Status.FAILED, Reason.BROWSER_CRASHED, joined=True)
        check_transition(status, Status.CANCELLED, None, joined=True)


def test_every_contract_reason_is_known():
    assert {r.value for r in COMPLETED_REASONS} == {
        "host-ended",
        "removed",
        "alone",
        "end-command",
        "max-duration",
        "stopped",
    }
    assert {r.value for r in FAILED_REASONS} == {
        "invalid-url",
        "meeting-not-found",
        "wrong-passcode",
        "waiting-room-timeout",
        "denied",
        "login-required",
        "captcha",
        "blocked",
        "browser-crashed",
        "transcriber-unavailable",
        "launch-failed",
        "internal-error",
    }
