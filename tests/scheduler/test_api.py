"""The HTTP API against a real uvicorn server: auth, ownership, validation, body limits,
idempotency, rate limits, event streams. The launcher records instead of launching (a VP
subprocess adds nothing here; real launches are in test_api_launch.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from scheduler.ratelimit import RateLimiter
from scheduler.service import VpService
from scheduler.sqlite_store import SqliteStore
from tests.scheduler.conftest import SECRET, RunningServer, bearer
from tests.scheduler.fakes import RecordingLauncher

ZOOM = "https://zoom.us/j/123456789?pwd=UrLsEcReT"


@pytest.fixture
async def api(tmp_path: Path, serve: Any) -> AsyncIterator[tuple[RunningServer, RecordingLauncher]]:
    launcher = RecordingLauncher()
    service = VpService(SqliteStore(tmp_path / "vps.db"), launcher, rate_limiter=RateLimiter(5, 60))
    server = await serve(service, tmp_path / "out")
    yield server, launcher


def fields(response: httpx.Response) -> list[str]:
    return [f["field"] for f in response.json().get("fields", [])]


async def test_auth_is_required_and_verified(api: Any) -> None:
    server, launcher = api
    now = int(time.time())
    forged = jwt.encode(
        {"sub": "alice", "iat": now, "exp": now + 60}, "another-secret-of-32-characters-0123"
    )
    expired = jwt.encode({"sub": "alice", "iat": now - 900, "exp": now - 600}, SECRET)
    no_sub = jwt.encode({"iat": now, "exp": now + 60}, SECRET)
    no_exp = jwt.encode({"sub": "alice", "iat": now}, SECRET)
    unsigned = jwt.encode({"sub": "alice", "iat": now, "exp": now + 60}, None, algorithm="none")
    no_iat = jwt.encode({"sub": "alice", "exp": now + 60}, SECRET)
    century = jwt.encode({"sub": "alice", "iat": now, "exp": now + 100 * 365 * 86400}, SECRET)
    text_exp = jwt.encode({"sub": "alice", "iat": now, "exp": str(now + 60)}, SECRET)
    text_iat = jwt.encode({"sub": "alice", "iat": str(now), "exp": now + 60}, SECRET)
    listed_aud = jwt.encode(
        {"sub": "alice", "iat": now, "exp": now + 60, "aud": ["vp-stream", "x"]}, SECRET
    )
    any_aud = jwt.encode({"sub": "alice", "iat": now, "exp": now + 60, "aud": "api"}, SECRET)
    async with server.client(None) as anon:
        stream = await anon.post("/v1/stream-token", headers=bearer("alice"))
        stream_token = stream.json()["token"]
        cases: list[dict[str, str]] = [
            {},
            {"Authorization": "Basic YWxpY2U6cHc="},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer not-a-jwt"},
            {"Authorization": f"Bearer {forged}"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Bearer {no_sub}"},
            {"Authorization": f"Bearer {no_exp}"},
            {"Authorization": f"Bearer {unsigned}"},
            {"Authorization": f"Bearer {stream_token}"},  # stream tokens are not bearer tokens
            {"Authorization": f"Bearer {no_iat}"},
            {"Authorization": f"Bearer {century}"},  # at most 24 h between iat and exp
            {"Authorization": f"Bearer {text_exp}"},  # claims are numbers, not strings
            {"Authorization": f"Bearer {text_iat}"},
            {"Authorization": f"Bearer {listed_aud}"},  # a bearer token has no audience
            {"Authorization": f"Bearer {any_aud}"},
        ]
        for headers in cases:
            for method, path in [("GET", "/v1/vps"), ("GET", "/v1/vps/x"), ("DELETE", "/v1/vps/x")]:
                response = await anon.request(method, path, headers=headers)
                assert response.status_code == 401, (headers, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
            response = await anon.post("/v1/vps", json={"meeting_url": ZOOM}, headers=headers)
            assert response.status_code == 401, headers
        assert (await anon.get("/v1/events")).status_code == 401
        assert (await anon.get("/v1/events", params={"token": "x.y.z"})).status_code == 401
        # ... and only a token whose aud is exactly "vp-stream" is a stream token
        for bad in (
            listed_aud,
            jwt.encode({"sub": "alice", "iat": now, "exp": now + 60, "aud": "vp-stream"}, SECRET)[
                :-2
            ]
            + "xx",
        ):
            assert (await anon.get("/v1/events", params={"token": bad})).status_code == 401
        long_stream = jwt.encode(
            {"sub": "alice", "iat": now, "exp": now + 2 * 86400, "aud": "vp-stream"}, SECRET
        )
        response = await anon.get("/v1/events", params={"token": long_stream})
        assert response.status_code == 401
    assert launcher.submitted == []
    assert server.service.store.list() == []


async def test_owners_see_only_their_vps_and_admins_see_all(api: Any) -> None:
    server, launcher = api
    async with (
        server.client("alice") as alice,
        server.client("bob") as bob,
        server.client("root", admin=True) as admin,
    ):
        a = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
        b = (await bob.post("/v1/vps", json={"meeting_url": ZOOM, "name": "Bob's bot"})).json()
        assert a["owner"] == "alice" and a["platform"] == "zoom" and a["status"] == "SCHEDULED"
        assert "UrLsEcReT" not in json.dumps(a)
        assert [v["vp_id"] for v in (await alice.get("/v1/vps")).json()["vps"]] == [a["vp_id"]]
        assert (await alice.get(f"/v1/vps/{b['vp_id']}")).status_code == 404
        assert (await alice.delete(f"/v1/vps/{b['vp_id']}")).status_code == 404
        assert (await alice.get("/v1/vps/does-not-exist")).status_code == 404
        assert (await alice.get("/v1/vps/bad%20id%3Cx%3E")).status_code == 404
        listed = {v["vp_id"] for v in (await admin.get("/v1/vps")).json()["vps"]}
        assert listed == {a["vp_id"], b["vp_id"]}
        cancelled = await admin.delete(f"/v1/vps/{b['vp_id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
        again = await bob.delete(f"/v1/vps/{b['vp_id']}")  # idempotent
        assert again.status_code == 200 and again.json()["status"] == "CANCELLED"
        assert again.json()["history"][-1]["detail"] == "cancelled before launch"
    assert launcher.submitted == [a["vp_id"], b["vp_id"]]
    assert launcher.cancelled == [b["vp_id"]]
    # cognito:groups without "admin" is no admin; API Gateway's string form is understood
    now = int(time.time())
    groups_users = jwt.encode(
        {"sub": "carol", "iat": now, "exp": now + 60, "cognito:groups": ["users"]}, SECRET
    )
    groups_string = jwt.encode(
        {"sub": "dave", "iat": now, "exp": now + 60, "cognito:groups": "[users admin]"}, SECRET
    )
    groups_commas = jwt.encode(
        {"sub": "erin", "iat": now, "exp": now + 60, "cognito:groups": "[users,admin]"}, SECRET
    )
    async with server.client(None) as anon:
        carol = await anon.get("/v1/vps", headers={"Authorization": f"Bearer {groups_users}"})
        assert carol.json() == {"vps": []}
        dave = await anon.get("/v1/vps", headers={"Authorization": f"Bearer {groups_string}"})
        assert len(dave.json()["vps"]) == 2
        # whitespace separates groups: "users,admin" is one (odd) group name, not admin
        erin = await anon.get("/v1/vps", headers={"Authorization": f"Bearer {groups_commas}"})
        assert erin.json() == {"vps": []}


async def test_unlisted_url_parameters_never_come_back(api: Any) -> None:
    """A Zoom host start token (zak) or an access_token in the invite is a secret though no
    list names it: absent from POST, GET, the list and the console's event stream."""
    server, _ = api
    url = "https://zoom.us/j/123456789?pwd=UrLsEcReT&zak=ZaKhOsTtOkEn&access_token=AcCeSsToK"
    secrets = ("UrLsEcReT", "ZaKhOsTtOkEn", "AcCeSsToK")
    async with server.client("alice") as alice:
        token = await stream_token(alice)
        async with alice.stream("GET", "/v1/events", params={"token": token}) as events:
            reader = Sse(events)
            await reader.next()  # the snapshot
            created = await alice.post("/v1/vps", json={"meeting_url": url})
            assert created.status_code == 201
            _, pushed = await reader.next()
        vp_id = created.json()["vp_id"]
        texts = [
            created.text,
            json.dumps(pushed),
            (await alice.get(f"/v1/vps/{vp_id}")).text,
            (await alice.get("/v1/vps")).text,
        ]
    for text in texts:
        assert "zoom.us/j/123456789" in text
        for secret in secrets:
            assert secret not in text


async def test_invalid_requests_name_the_field_and_launch_nothing(api: Any) -> None:
    server, launcher = api
    soon = datetime.now(UTC) + timedelta(minutes=5)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "meeting_url"),
        ({"meeting_url": ""}, "meeting_url"),
        ({"meeting_url": "https://evil.example.com/j/1"}, "meeting_url"),
        ({"meeting_url": "https://zoom.us@169.254.169.254/j/1"}, "meeting_url"),
        ({"meeting_url": "file:///etc/passwd", "platform": "zoom"}, "meeting_url"),
        ({"meeting_url": "https://zoom.us/j/1" + "1" * 3000}, "meeting_url"),
        ({"meeting_url": ZOOM, "platform": "skype"}, "platform"),
        ({"meeting_url": ZOOM, "platform": "webex"}, "meeting_url"),  # not a Webex host
        ({"meeting_url": ZOOM, "platform": "teams"}, "meeting_url"),
        ({"meeting_url": ZOOM, "join_at": soon.replace(tzinfo=None).isoformat()}, "join_at"),
        ({"meeting_url": ZOOM, "join_at": "2020-01-01T00:00:00Z"}, "join_at"),
        ({"meeting_url": ZOOM, "join_at": "next tuesday"}, "join_at"),
        ({"meeting_url": ZOOM, "join_at": "2999-01-01T00:00:00+00:00"}, "join_at"),
        ({"meeting_url": ZOOM, "name": "x" * 65}, "name"),
        ({"meeting_url": ZOOM, "name": "bad\nname"}, "name"),
        ({"meeting_url": ZOOM, "passcode": "p" * 300}, "passcode"),
        ({"meeting_url": ZOOM, "passcode": 123456}, "passcode"),
        ({"meeting_url": ZOOM, "vp_id": "mine"}, "vp_id"),
        ({"meeting_url": ["https://zoom.us/j/1"]}, "meeting_url"),
    ]
    async with server.client() as client:
        for body, field in cases:
            body = {**body, "passcode": body.get("passcode", "Pa55-SeCrEt")}
            response = await client.post("/v1/vps", json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in fields(response), (body, response.json())
            assert "Pa55-SeCrEt" not in response.text, "the passcode is never echoed"
            assert "UrLsEcReT" not in response.text or field != "meeting_url"
        # Idempotency-Key is validated too.
        response = await client.post(
            "/v1/vps", json={"meeting_url": ZOOM}, headers={"Idempotency-Key": "k" * 200}
        )
        assert response.status_code == 422 and fields(response) == ["Idempotency-Key"]
    assert launcher.submitted == []
    assert server.service.store.list() == []


async def test_malformed_and_oversized_bodies_get_4xx(api: Any) -> None:
    server, launcher = api
    async with server.client() as client:
        post = client.post
        json_type = {"Content-Type": "application/json"}
        response = await post("/v1/vps", content=b'{"meeting_url": ', headers=json_type)
        assert response.status_code == 400 and fields(response) == ["body"]
        response = await post("/v1/vps", content=b"\xff\xfe{}", headers=json_type)
        assert response.status_code == 400
        response = await post("/v1/vps", content=b"[1, 2]", headers=json_type)
        assert response.status_code == 422 and fields(response) == ["body"]
        response = await post("/v1/vps", content=b"null", headers=json_type)
        assert response.status_code == 422
        response = await post("/v1/vps", content=b"[" * 5000 + b"]" * 5000, headers=json_type)
        assert response.status_code in (400, 422)
        response = await post("/v1/vps", content=b"meeting_url=x", headers={})
        assert response.status_code == 415
        big = json.dumps({"meeting_url": ZOOM, "name": "x" * 20_000}).encode()
        response = await post("/v1/vps", content=big, headers=json_type)
        assert response.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"meeting_url": "' + ZOOM.encode() + b'", "name": "'
            for _ in range(40):
                yield b"y" * 1024
            yield b'"}'

        response = await post("/v1/vps", content=chunks(), headers=json_type)
        assert response.status_code == 413
        assert (await client.put("/v1/vps", json={})).status_code == 405
        assert (await client.get("/v1/nothing")).status_code == 404
    assert launcher.submitted == []


async def test_idempotency_key_never_starts_two_vps(api: Any) -> None:
    server, launcher = api
    body = {"meeting_url": ZOOM, "name": "Retry", "passcode": "123456"}
    async with server.client("alice") as alice, server.client("bob") as bob:
        key = {"Idempotency-Key": "launch-7f3a"}
        first = await alice.post("/v1/vps", json=body, headers=key)
        again = await alice.post("/v1/vps", json=body, headers=key)
        assert first.status_code == again.status_code == 201
        assert first.json()["vp_id"] == again.json()["vp_id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers

        # Concurrent retries of one request (a flaky network): still one VP.
        burst = {"Idempotency-Key": "burst-1"}
        responses = await asyncio.gather(
            *(alice.post("/v1/vps", json=body, headers=burst) for _ in range(6))
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["vp_id"] for r in responses}) == 1

        # The same key for a different request is refused; for another owner it is theirs.
        other = await alice.post("/v1/vps", json={**body, "name": "Other"}, headers=key)
        assert other.status_code == 409 and fields(other) == ["Idempotency-Key"]
        # a corrected passcode is a different request too: never the old VP silently
        fixed = await alice.post("/v1/vps", json={**body, "passcode": "654321"}, headers=key)
        assert fixed.status_code == 409 and fields(fixed) == ["Idempotency-Key"]
        no_code = {k: v for k, v in body.items() if k != "passcode"}
        assert (await alice.post("/v1/vps", json=no_code, headers=key)).status_code == 409
        theirs = await bob.post("/v1/vps", json=body, headers=key)
        assert theirs.status_code == 201 and theirs.json()["vp_id"] != first.json()["vp_id"]
    assert len(launcher.submitted) == 3 == len(set(launcher.submitted))
    assert len(server.service.store.list()) == 3


async def test_launch_rate_limit_per_owner(api: Any) -> None:
    server, launcher = api  # 5 launches per minute per owner
    async with server.client("alice") as alice, server.client("bob") as bob:
        keyed = await alice.post(
            "/v1/vps", json={"meeting_url": ZOOM}, headers={"Idempotency-Key": "first"}
        )
        assert keyed.status_code == 201
        for _ in range(4):
            assert (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).status_code == 201
        limited = await alice.post("/v1/vps", json={"meeting_url": ZOOM})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"] == "rate-limited"
        # A replay is not a launch: it still gets its answer.
        replay = await alice.post(
            "/v1/vps", json={"meeting_url": ZOOM}, headers={"Idempotency-Key": "first"}
        )
        assert replay.status_code == 201 and replay.json()["vp_id"] == keyed.json()["vp_id"]
        assert (await bob.post("/v1/vps", json={"meeting_url": ZOOM})).status_code == 201
    assert len(launcher.submitted) == 6


async def test_failed_launch_ends_failed_launch_failed(tmp_path: Path, serve: Any) -> None:
    launcher = RecordingLauncher(fail_with="no capacity in the cluster")
    server = await serve(VpService(SqliteStore(tmp_path / "vps.db"), launcher))
    async with server.client() as client:
        response = await client.post("/v1/vps", json={"meeting_url": ZOOM})
        assert response.status_code == 201
        record = response.json()
        assert (record["status"], record["reason"]) == ("FAILED", "launch-failed")
        assert record["detail"] == "launch failed: no capacity in the cluster"
        assert [h["status"] for h in record["history"]] == ["SCHEDULED", "FAILED"]


class Sse:
    """A minimal server-sent-events reader over an httpx stream."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.last_id: str | None = None

    async def next(self, timeout: float = 10) -> tuple[str, Any]:
        event, data = "message", []
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line.startswith("id:"):
                    self.last_id = line[3:].strip()
                elif line == "" and data:
                    return event, json.loads("\n".join(data))
        raise AssertionError("stream ended")


async def stream_token(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/stream-token")
    assert response.status_code == 200
    return str(response.json()["token"])


async def test_event_stream_sends_snapshot_then_own_changes(api: Any) -> None:
    server, _ = api
    async with server.client("alice") as alice, server.client("bob") as bob:
        existing = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
        a_token, b_token = await stream_token(alice), await stream_token(bob)
        async with (
            alice.stream("GET", "/v1/events", params={"token": a_token}) as a_resp,
            bob.stream("GET", "/v1/events", params={"token": b_token}) as b_resp,
        ):
            assert a_resp.status_code == 200
            assert a_resp.headers["content-type"].startswith("text/event-stream")
            a_events, b_events = Sse(a_resp), Sse(b_resp)
            kind, snapshot = await a_events.next()
            assert kind == "snapshot"
            assert [v["vp_id"] for v in snapshot["vps"]] == [existing["vp_id"]]
            assert (await b_events.next()) == ("snapshot", {"vps": []})

            created = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
            kind, vp = await a_events.next()
            assert (kind, vp["vp_id"], vp["status"]) == ("vp", created["vp_id"], "SCHEDULED")
            await alice.delete(f"/v1/vps/{created['vp_id']}")
            kind, vp = await a_events.next()
            assert (kind, vp["vp_id"], vp["status"]) == ("vp", created["vp_id"], "CANCELLED")

            mine = (await bob.post("/v1/vps", json={"meeting_url": ZOOM})).json()
            kind, vp = await b_events.next()  # bob's first event is his own, not alice's
            assert (kind, vp["vp_id"], vp["owner"]) == ("vp", mine["vp_id"], "bob")
    for _ in range(100):  # the server notices the disconnect
        if server.service.hub.subscribers == 0:
            break
        await asyncio.sleep(0.05)
    assert server.service.hub.subscribers == 0, "closed streams unsubscribe"


async def test_transcript_stream_tails_files_and_ends(api: Any, tmp_path: Path) -> None:
    server, _ = api
    async with server.client("alice") as alice, server.client("bob") as bob:
        vp = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
        folder = tmp_path / "out" / vp["vp_id"]
        folder.mkdir(parents=True)
        transcript = folder / "transcript.jsonl"
        transcript.write_text(json.dumps({"speaker": "Alice", "text": "first"}) + "\n")
        path = f"/v1/vps/{vp['vp_id']}/transcript"
        denied = await bob.get(path, params={"token": await stream_token(bob)})
        assert denied.status_code == 404
        token = await stream_token(alice)
        async with alice.stream("GET", path, params={"token": token}) as response:
            assert response.status_code == 200
            events = Sse(response)
            assert await events.next() == ("segment", {"speaker": "Alice", "text": "first"})
            after_first = events.last_id
            with open(transcript, "a") as file:  # a line written in two parts
                file.write('{"speaker": "Bob", ')
                file.flush()
                await asyncio.sleep(0.6)
                file.write('"text": "<b>second</b>"}\n')
            assert await events.next() == ("segment", {"speaker": "Bob", "text": "<b>second</b>"})
            chat = {"sender": "Carol", "text": "hi", "direction": "in"}
            (folder / "chat.jsonl").write_text(json.dumps(chat) + "\n")
            assert await events.next() == ("chat", chat)
            await alice.delete(f"/v1/vps/{vp['vp_id']}")
            kind, final = await events.next()
            assert (kind, final["status"]) == ("end", "CANCELLED")
        # A reconnecting EventSource sends Last-Event-ID: the stream resumes after it.
        resume = {"Last-Event-ID": str(after_first)}
        async with alice.stream("GET", path, params={"token": token}, headers=resume) as again:
            events = Sse(again)
            assert await events.next() == ("segment", {"speaker": "Bob", "text": "<b>second</b>"})
            assert await events.next() == ("chat", chat)
            assert (await events.next())[0] == "end"


async def test_streams_end_when_their_token_expires_and_resume_after(
    tmp_path: Path, serve: Any
) -> None:
    service = VpService(SqliteStore(tmp_path / "vps.db"), RecordingLauncher())
    server = await serve(service, tmp_path / "out", stream_ttl=2)
    async with server.client("alice") as alice:
        vp = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
        folder = tmp_path / "out" / vp["vp_id"]
        folder.mkdir(parents=True)
        transcript = folder / "transcript.jsonl"
        transcript.write_text(json.dumps({"text": "one"}) + "\n")
        path = f"/v1/vps/{vp['vp_id']}/transcript"
        granted = (await alice.post("/v1/stream-token")).json()
        assert granted["expires_in"] == 2
        started = time.monotonic()
        async with alice.stream("GET", path, params={"token": granted["token"]}) as response:
            events = Sse(response)
            assert await events.next() == ("segment", {"text": "one"})
            after = events.last_id
            assert await events.next() == ("expired", {})
            assert 0.5 < time.monotonic() - started < 5
            assert [line async for line in events.lines] == [], "then the stream ends"
        with open(transcript, "a") as file:
            file.write(json.dumps({"text": "two"}) + "\n")
        # A new token (a new EventSource cannot send Last-Event-ID) resumes with ?after=.
        params = {"token": await stream_token(alice), "after": after}
        async with alice.stream("GET", path, params=params) as again:
            events = Sse(again)
            assert await events.next() == ("segment", {"text": "two"})
        params = {"token": await stream_token(alice)}
        async with alice.stream("GET", "/v1/events", params=params) as response:
            events = Sse(response)
            assert (await events.next())[0] == "snapshot"
            assert await events.next() == ("expired", {})
        # An expired token opens nothing.
        response = await alice.get(path, params={"token": granted["token"]})
        assert response.status_code == 401


async def test_openapi_and_console_are_served(api: Any) -> None:
    server, _ = api
    async with server.client(None) as anon:
        doc = (await anon.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        assert {"/v1/vps", "/v1/vps/{vp_id}"} <= set(doc["paths"])
        assert "meeting_url" in doc["components"]["schemas"]["LaunchRequest"]["properties"]
        page = await anon.get("/")
        assert page.status_code == 200 and "Launch virtual participant" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        script = await anon.get("/console/app.js")
        assert script.status_code == 200
        code = [ln for ln in script.text.splitlines() if not ln.strip().startswith("//")]
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert not any(sink in line for line in code), sink


async def test_security_headers_on_every_response(api: Any) -> None:
    server, _ = api
    json_type = {"Content-Type": "application/json"}
    async with server.client(None) as anon:
        responses = [
            await anon.get("/"),
            await anon.get("/console/index.html"),  # the static mount too (clickjacking)
            await anon.get("/console/app.js"),
            await anon.get("/openapi.json"),
            await anon.get("/healthz"),
            await anon.get("/v1/vps"),  # 401
            await anon.get("/v1/nothing"),  # 404
            await anon.put("/v1/vps", json={}),  # 405
            await anon.post("/v1/vps", content=b"x" * 20_000, headers=json_type),  # 413
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 401, 404, 405, 413]
    for response in responses:
        headers = response.headers
        where = response.request.url.path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], where
        assert headers["x-frame-options"] == "DENY", where
        assert headers["x-content-type-options"] == "nosniff", where
        assert headers["referrer-policy"] == "no-referrer", where


def _api_state(server: RunningServer) -> Any:
    return server.server.config.app.state.api


async def test_event_streams_are_capped_per_owner_and_share_one_watcher(
    api: Any, tmp_path: Path
) -> None:
    server, _ = api
    state = _api_state(server)
    async with server.client("alice") as alice, server.client("bob") as bob:
        vp = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
        folder = tmp_path / "out" / vp["vp_id"]
        folder.mkdir(parents=True)
        (folder / "transcript.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
        token = await stream_token(alice)
        path = f"/v1/vps/{vp['vp_id']}/transcript"
        async with contextlib.AsyncExitStack() as stack:
            readers = []
            for index in range(5):
                target = path if index < 3 else "/v1/events"
                response = await stack.enter_async_context(
                    alice.stream("GET", target, params={"token": token})
                )
                assert response.status_code == 200
                readers.append(Sse(response))
                await readers[-1].next()  # the stream is really open
            sixth = await alice.get("/v1/events", params={"token": token})
            assert sixth.status_code == 429 and sixth.json()["error"] == "too-many-streams"
            assert (await alice.get(path, params={"token": token})).status_code == 429
            # another owner is not affected
            other = await stack.enter_async_context(
                bob.stream("GET", "/v1/events", params={"token": await stream_token(bob)})
            )
            assert other.status_code == 200
            # three transcript streams of one VP: one watcher, polling two files for all
            assert list(state.watches.watches) == [vp["vp_id"]]
            watch = state.watches.watches[vp["vp_id"]]
            assert watch.users == 3
            polls = watch.polls
            await asyncio.sleep(1.0)
            assert watch.polls - polls <= 6, "one poll per interval, not one per stream"
            with open(folder / "transcript.jsonl", "a") as file:
                file.write(json.dumps({"text": "again"}) + "\n")
            for reader in readers[:3]:
                assert await reader.next() == ("segment", {"text": "again"})
        for _ in range(100):  # closed streams give their slots and the watcher back
            if state.slots.open("alice") == 0 and not state.watches.watches:
                break
            await asyncio.sleep(0.05)
        assert state.slots.open("alice") == 0 and state.watches.watches == {}
        async with alice.stream("GET", "/v1/events", params={"token": token}) as again:
            assert again.status_code == 200


async def test_half_open_connections_do_not_starve_requests(tmp_path: Path, serve: Any) -> None:
    service = VpService(SqliteStore(tmp_path / "vps.db"), RecordingLauncher())
    server = await serve(service, header_timeout=1.5)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for index in range(400):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        if index % 2:  # slow headers: a request line and never the end of the headers
            writer.write(b"GET /v1/vps HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
        idle.append((reader, writer))
    try:
        async with server.client("alice") as client:
            started = time.monotonic()
            response = await client.get("/v1/vps")
            elapsed = time.monotonic() - started
        assert response.status_code == 200 and elapsed < 1.5, elapsed  # "well under 2 s"
        # the server closes every connection that did not send its headers in time
        async with asyncio.timeout(10):
            closed = await asyncio.gather(*(reader.read() for reader, _ in idle))
        assert all(data == b"" for data in closed)
    finally:
        for _, writer in idle:
            writer.close()


async def test_an_unparseable_request_gets_the_json_error_envelope(
    tmp_path: Path, serve: Any
) -> None:
    """A request the HTTP parser refuses (here a bad Transfer-Encoding, as schemathesis once
    sent) is answered 400 in the API's error envelope, not uvicorn's plain-text line."""
    service = VpService(SqliteStore(tmp_path / "vps.db"), RecordingLauncher())
    server = await serve(service)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /v1/vps HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: u>x\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(10):
        raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"] == "bad-request"


async def test_artifacts_are_listed_and_streamed_to_their_owner_only(
    api: Any, tmp_path: Path
) -> None:
    """`vp serve`: the listing names each file of the VP's output folder with a short-lived
    download URL (an artifact token for that one file); other owners get 404, a token opens
    only the artifact it names, listings are rate-limited, and the routes are documented."""
    server, _ = api
    async with server.client("alice") as alice, server.client("bob") as bob:
        vp = (await alice.post("/v1/vps", json={"meeting_url": ZOOM})).json()
        vp_id = vp["vp_id"]
        folder = tmp_path / "out" / vp_id
        folder.mkdir(parents=True)
        (folder / "chat.jsonl").write_text('{"sender": "Alice", "text": "hi"}\n')
        (folder / "speakers.jsonl").write_text('{"t": 1.5, "speaker": "Alice"}\n')
        (folder / "notes.txt").write_text("not an artifact")
        listing = await alice.get(f"/v1/vps/{vp_id}/artifacts")
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert [a["name"] for a in body["artifacts"]] == ["chat.jsonl", "speakers.jsonl"]
        chat = body["artifacts"][0]
        assert chat["size"] == 34 and chat["content_type"] == "application/x-ndjson"
        assert ZOOM not in listing.text and "UrLsEcReT" not in listing.text
        async with httpx.AsyncClient(base_url=server.base_url) as anon:
            download = await anon.get(chat["url"])  # the URL alone: no bearer header
            assert download.status_code == 200
            assert download.content == (folder / "chat.jsonl").read_bytes()
            assert download.headers["content-type"].startswith("application/x-ndjson")
            # The token names one file: not another artifact, not another VP.
            other = chat["url"].replace("/chat.jsonl?", "/speakers.jsonl?")
            assert (await anon.get(other)).status_code == 401
            assert (await anon.get(chat["url"].split("?")[0])).status_code == 401
        assert (await bob.get(f"/v1/vps/{vp_id}/artifacts")).status_code == 404
        assert (await bob.get(f"/v1/vps/{vp_id}/artifacts/chat.jsonl")).status_code == 404
        owner = await alice.get(f"/v1/vps/{vp_id}/artifacts/chat.jsonl")  # bearer works too
        assert owner.status_code == 200
        assert (await alice.get(f"/v1/vps/{vp_id}/artifacts/notes.txt")).status_code == 404
        assert (await alice.get(f"/v1/vps/{vp_id}/artifacts/..%2Fvps.db")).status_code == 404
        doc = (await alice.get("/openapi.json")).json()
        assert "/v1/vps/{vp_id}/artifacts" in doc["paths"]
        assert "/v1/vps/{vp_id}/artifacts/{name}" in doc["paths"]
        operation = doc["paths"]["/v1/vps/{vp_id}/artifacts"]["get"]
        assert operation["operationId"] == "listArtifacts" and "429" in operation["responses"]
        # Rate-limited per owner.
        codes = [(await alice.get(f"/v1/vps/{vp_id}/artifacts")).status_code for _ in range(120)]
        assert codes[-1] == 429 and codes[0] == 200
        assert (await bob.get(f"/v1/vps/{vp_id}/artifacts")).status_code == 404  # not bob's
