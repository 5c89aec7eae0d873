"""Models, the service layer, the rate limiter, the event hub and auth — no server."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from scheduler.auth import Authenticator, caller_from_claims
from scheduler.errors import NotFound, RateLimited, StaleTransition, Unauthorized
from scheduler.events import QUEUE_SIZE, EventHub
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from scheduler.ratelimit import RateLimiter
from scheduler.service import Caller, VpService
from scheduler.sqlite_store import SqliteStore
from tests.scheduler.fakes import RecordingLauncher
from vp import log as vplog
from vp.lifecycle import Status

ALICE, BOB, ADMIN = Caller("alice"), Caller("bob"), Caller("root", admin=True)


def errors(**body: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        LaunchRequest.model_validate(body)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


def test_launch_request_validation_names_fields() -> None:
    now = datetime.now(UTC)
    assert "join_at" in errors(meeting_url="https://zoom.us/j/1", join_at="2030-01-01T10:00:00")
    assert "join_at" in errors(
        meeting_url="https://zoom.us/j/1", join_at=(now - timedelta(minutes=5)).isoformat()
    )
    assert set(errors(meeting_url="https://zoom.us.evil.com/j/1", name="")) == {
        "meeting_url",
        "name",
    }
    assert set(errors(meeting_url="https://zoom.us/j/1", platform="skype")) == {"platform"}
    assert set(errors(meeting_url="https://zoom.us/j/1", platform="meet")) == {"meeting_url"}
    lookup = errors(meeting_url="https://meet.google.com/lookup/abcdefgh12")
    assert "lookup/ links cannot be joined directly" in lookup["meeting_url"]
    meet = LaunchRequest(meeting_url="https://meet.google.com/abc-defg-hij?authuser=0")
    assert meet.resolved_platform == "meet"
    # a join_at a few seconds in the past is within the grace; offsets are normalised to UTC
    ok = LaunchRequest.model_validate(
        {"meeting_url": "https://zoom.us/j/1", "join_at": (now - timedelta(seconds=5)).isoformat()}
    )
    assert ok.join_at is not None and ok.join_at.tzinfo is UTC
    day = (now + timedelta(days=30)).date().isoformat()
    berlin = LaunchRequest(
        meeting_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
        join_at=f"{day}T12:00:00+02:00",  # type: ignore[arg-type]
        passcode="abc123",  # type: ignore[arg-type]
    )
    assert berlin.resolved_platform == "teams"
    assert berlin.join_at == datetime.fromisoformat(f"{day}T10:00:00+00:00")
    assert "abc123" not in repr(berlin) and "abc123" not in berlin.model_dump_json()


def test_launch_request_takes_webex_links() -> None:
    """Webex links are inferred from *.webex.com (personal rooms and j.php); other hosts and
    non-meeting paths are refused on meeting_url."""
    room = LaunchRequest.model_validate({"meeting_url": "https://acme.webex.com/meet/jane.doe"})
    assert room.resolved_platform == "webex"
    jphp = "https://acme.webex.com/acme/j.php?MTID=m0f3c9b8a7e6d5c4b&pwd=s3cret"
    assert LaunchRequest.model_validate({"meeting_url": jphp}).resolved_platform == "webex"
    assert set(errors(meeting_url="https://acme.webex.com.evil.com/meet/jane")) == {"meeting_url"}
    assert set(errors(meeting_url="https://acme.webex.com/", platform="webex")) == {"meeting_url"}


def test_allowed_hosts_come_from_context_or_environment(monkeypatch) -> None:
    url = "http://127.0.0.1:8089/wc/1/join"
    assert "meeting_url" in errors(meeting_url=url, platform="zoom")
    ctx = {"allowed_hosts": frozenset({"127.0.0.1:8089"})}
    request = LaunchRequest.model_validate({"meeting_url": url, "platform": "zoom"}, context=ctx)
    assert request.resolved_platform == "zoom"
    monkeypatch.setenv("VP_ALLOWED_HOSTS", "127.0.0.1:8089")
    assert LaunchRequest(meeting_url=url, platform="zoom").platform == "zoom"


def test_record_is_redacted_and_fingerprint_is_keyed_over_the_whole_body() -> None:
    a = LaunchRequest(meeting_url="https://zoom.us/j/123?pwd=TopSecret", passcode="1")  # type: ignore[arg-type]
    b = LaunchRequest(meeting_url="https://zoom.us/j/123?pwd=TopSecret", passcode="2")  # type: ignore[arg-type]
    c = LaunchRequest(meeting_url="https://zoom.us/j/123?pwd=TopSecret", name="Other")
    record = VpRecord.new("v1", "alice", a)
    assert "TopSecret" not in record.model_dump_json()
    assert record.status is Status.SCHEDULED and [h.status for h in record.history] == [
        Status.SCHEDULED
    ]
    key = b"k" * 32
    again = LaunchRequest(meeting_url="https://zoom.us/j/123?pwd=TopSecret", passcode="1")  # type: ignore[arg-type]
    assert a.fingerprint(key) == again.fingerprint(key)
    # any different field differs, the passcode's value included (a corrected passcode is
    # a different request, not a retry)
    assert len({a.fingerprint(key), b.fingerprint(key), c.fingerprint(key)}) == 3
    # keyed: another key, another value; and no plain hash of the body or the URL
    assert a.fingerprint(b"o" * 32) != a.fingerprint(key)
    plain = {
        hashlib.sha256(text.encode()).hexdigest()
        for text in ("https://zoom.us/j/123?pwd=TopSecret", "1")
    }
    assert a.fingerprint(key) not in plain
    assert "TopSecret" not in repr(VpSecrets("https://zoom.us/j/123?pwd=TopSecret", "1"))


async def test_service_ownership_and_cancel(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    service = VpService(SqliteStore(tmp_path / "db"), launcher)
    await service.start()
    request = LaunchRequest(meeting_url="https://zoom.us/j/123")
    mine = (await service.launch(ALICE, request)).record
    theirs = (await service.launch(BOB, request)).record
    assert [r.vp_id for r in await service.list(ALICE)] == [mine.vp_id]
    assert {r.vp_id for r in await service.list(ADMIN)} == {mine.vp_id, theirs.vp_id}
    with pytest.raises(NotFound):
        await service.get(ALICE, theirs.vp_id)
    with pytest.raises(NotFound):
        await service.cancel(ALICE, theirs.vp_id)
    assert (await service.get(ADMIN, theirs.vp_id)).owner == "bob"
    cancelled = await service.cancel(ALICE, mine.vp_id)
    assert cancelled.status is Status.CANCELLED and launcher.cancelled == [mine.vp_id]
    # A cancelled VP can never be launched: the launcher's conditional move fails.
    with pytest.raises(StaleTransition):
        service.store.transition(mine.vp_id, Status.INITIALIZING, expected=Status.SCHEDULED)


async def test_every_create_and_cancel_is_audited_without_secrets(tmp_path: Path) -> None:
    out = io.StringIO()
    vplog.configure("INFO", stream=out)
    service = VpService(SqliteStore(tmp_path / "db"), RecordingLauncher())
    await service.start()
    request = LaunchRequest(
        meeting_url="https://zoom.us/j/123?pwd=AuDiTpWd&zak=AuDiTzAk",
        passcode="AuDiTpAsS",  # type: ignore[arg-type]
    )
    record = (await service.launch(ALICE, request)).record
    await service.cancel(ADMIN, record.vp_id)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    audits = [(x["action"], x["sub"], x["vp_id"]) for x in lines if x["event"] == "audit"]
    assert audits == [("create", "alice", record.vp_id), ("cancel", "root", record.vp_id)]
    for secret in ("AuDiTpWd", "AuDiTzAk", "AuDiTpAsS"):
        assert secret not in out.getvalue()


async def test_cancel_racing_a_launch_stops_the_running_vp(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    service = VpService(SqliteStore(tmp_path / "db"), launcher)
    await service.start()
    record = (await service.launch(ALICE, LaunchRequest(meeting_url="https://zoom.us/j/1"))).record
    stale = record  # the caller read SCHEDULED; the launcher moves it meanwhile
    service.store.transition(record.vp_id, Status.INITIALIZING, expected=Status.SCHEDULED)
    assert stale.status is Status.SCHEDULED
    result = await service.cancel(ALICE, record.vp_id)
    assert result.status is Status.INITIALIZING, "not CANCELLED under a running VP"
    assert launcher.cancelled == [record.vp_id], "the running VP is asked to stop"


def test_rate_limiter_sliding_window() -> None:
    now = [100.0]
    limiter = RateLimiter(2, 10, clock=lambda: now[0])
    limiter.acquire("a")
    limiter.acquire("a")
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("a")
    assert caught.value.retry_after == pytest.approx(10)
    limiter.acquire("b")
    now[0] += 10.01
    limiter.acquire("a")


async def test_event_hub_overflow_drops_and_asks_for_resync() -> None:
    hub = EventHub()
    record = VpRecord.new("v1", "alice", LaunchRequest(meeting_url="https://zoom.us/j/1"))
    with hub.subscribe(lambda r: r.owner == "alice") as sub, hub.subscribe(lambda r: False) as none:
        for _ in range(QUEUE_SIZE + 10):
            hub.publish(record)
        assert sub.queue.qsize() <= QUEUE_SIZE and sub.dropped > 0
        assert sub.take_lag() and not sub.take_lag()
        assert none.queue.empty()
        assert hub.subscribers == 2
    assert hub.subscribers == 0


def test_claims_and_tokens() -> None:
    assert caller_from_claims({"sub": "u", "cognito:groups": ["admin"]}) == Caller("u", True)
    assert caller_from_claims({"sub": "u", "cognito:groups": "[users admin]"}).admin
    assert not caller_from_claims({"sub": "u", "cognito:groups": "administrators"}).admin
    with pytest.raises(Unauthorized):
        caller_from_claims({"sub": ""})
    auth = Authenticator("s" * 32)
    stream = auth.issue_stream_token(Caller("u", admin=True))
    assert auth.caller_from_stream_token(stream) == Caller("u", True)
    with pytest.raises(Unauthorized):
        auth.caller_from_header(f"Bearer {stream}")
    bearer = jwt.encode({"sub": "u", "exp": 2_000_000_000}, "s" * 32)
    with pytest.raises(Unauthorized):
        auth.caller_from_stream_token(bearer)  # and a bearer token is no stream token
    with pytest.raises(ValueError):
        Authenticator("short")
    with pytest.raises(ValueError):
        Authenticator("sixteen-chars-xx")  # HS256 needs 32 bytes
    assert not caller_from_claims({"sub": "u", "cognito:groups": "[users,admin]"}).admin
    assert not caller_from_claims({"sub": "u", "cognito:groups": "users,admin"}).admin
    assert caller_from_claims({"sub": "u", "cognito:groups": " [admin] "}).admin
