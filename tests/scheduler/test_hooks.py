"""Contract 5 on `vp serve`: webhooks (registration rules, signed deliveries in seq order,
retries with the same id, a SIGKILLed `vp serve` losing nothing) and calendars (a feed served
by a local HTTP server schedules, moves and cancels VPs; a broken feed is recorded).

Receivers and feeds are real HTTP servers (Starlette under uvicorn) on loopback, exempted
the way an operator would: ``webhook_allowed_hosts`` / ``VP_WEBHOOK_ALLOWED_HOSTS``."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler.hook_store import HookStore
from scheduler.hooks import HookService, HookSettings
from scheduler.ratelimit import RateLimiter
from scheduler.service import VpService
from scheduler.sqlite_store import SqliteStore
from tests.scheduler.conftest import RunningServer, bearer, start_vp_serve
from tests.scheduler.fakes import RecordingLauncher
from tests.support import wait_until
from vp.lifecycle import Reason, Status

# A webhook URL's query value; not hex, so no random id or timestamp in a listing contains it.
QUERY_SECRET = "query-Secret-zq"

PASSCODE = "HoOk-PaSs-77"
ZOOM = "https://zoom.us/j/123456789?pwd=UrLsEcReT"


@dataclass
class Receiver:
    """A webhook receiver and calendar feed server on loopback."""

    port: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many posts first
    status: int = 200
    feed: bytes = b""
    feed_status: int = 200
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    tls: tuple[str, str] | None = None  # (certfile, keyfile): serve https

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}/hook"

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=500)
        return Response(status_code=self.status)

    async def _feed(self, _request: Request) -> Response:
        return Response(self.feed, self.feed_status, media_type="text/calendar")

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/hook", self._hook, methods=["POST"]),
                Route("/feed.ics", self._feed),
            ]
        )
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        tls = {"ssl_certfile": self.tls[0], "ssl_keyfile": self.tls[1]} if self.tls else {}
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", **tls)
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        await wait_until(lambda: self.server is not None and self.server.started)

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 10)

    def events(self, secret: str) -> list[dict[str, Any]]:
        """Every body received, verified with the webhook's secret (standardwebhooks)."""
        verifier = Webhook(secret)
        return [verifier.verify(body, headers) for headers, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    await rx.start()
    yield rx
    await rx.stop()


@dataclass
class Plane:
    server: RunningServer
    hooks: HookService
    service: VpService
    out: Path

    def client(self, sub: str = "alice") -> httpx.AsyncClient:
        return self.server.client(sub)


@pytest.fixture
async def plane(tmp_path: Path, serve: Any, receiver: Receiver) -> Plane:
    service = VpService(
        SqliteStore(tmp_path / "vps.db"), RecordingLauncher(), rate_limiter=RateLimiter(50, 60)
    )
    settings = HookSettings(
        calendar_poll=0,  # the tests sync by hand
        webhook_allowed_hosts=frozenset({receiver.host}),
        calendar_allowed_hosts=frozenset({receiver.host}),
    )
    out = tmp_path / "out"
    hooks = HookService(HookStore(tmp_path / "vps.db"), service, out_root=out, settings=settings)
    server = await serve(service, out, hooks=hooks)
    return Plane(server, hooks, service, out)


# -- webhooks ----------------------------------------------------------------------------------
async def test_webhook_urls_are_checked_and_the_secret_is_shown_once(
    plane: Plane, receiver: Receiver
) -> None:
    async with plane.client() as alice, plane.client("bob") as bob:
        for url, why in [
            ("http://example.com/hook", "https"),
            ("https://127.0.0.1/hook", "non-public"),
            ("https://10.1.2.3/hook", "non-public"),
            ("https://169.254.169.254/latest", "non-public"),
            ("https://[::1]/hook", "non-public"),
            ("https://[::ffff:192.168.0.1]/hook", "non-public"),
            ("https://localhost/hook", "non-public"),  # resolves to loopback
            ("https://user:pw@example.com/hook", "user information"),
        ]:
            response = await alice.post("/v1/webhooks", json={"url": url})
            assert response.status_code == 422, (url, response.text)
            assert response.json()["fields"][0]["field"] == "url"
            assert why in response.json()["fields"][0]["message"], (url, response.text)
        bad_type = await alice.post("/v1/webhooks", json={"url": receiver.url, "events": ["x"]})
        assert bad_type.status_code == 422 and bad_type.json()["fields"][0]["field"] == "events.0"

        created = await alice.post(
            "/v1/webhooks",
            json={"url": f"{receiver.url}?token={QUERY_SECRET}", "events": ["vp.status"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        assert len(base64.b64decode(hook["secret"][len("whsec_") :])) >= 24
        assert hook["events"] == ["vp.status"]
        listed = (await alice.get("/v1/webhooks")).json()["webhooks"]
        assert [w["webhook_id"] for w in listed] == [hook["webhook_id"]]
        assert hook["secret"] not in json.dumps(listed) and "secret" not in listed[0]
        assert QUERY_SECRET not in json.dumps(listed), "query values are masked in listings"
        # Another owner sees nothing of it.
        assert (await bob.get("/v1/webhooks")).json() == {"webhooks": []}
        path = f"/v1/webhooks/{hook['webhook_id']}"
        assert (await bob.get(f"{path}/deliveries")).status_code == 404
        assert (await bob.delete(path)).status_code == 404
        assert (await alice.get(f"{path}/deliveries")).status_code == 200
        assert (await alice.get("/v1/webhooks/../etc/deliveries")).status_code == 404
        assert (await alice.get("/v1/webhooks")).status_code == 200
        assert (await bob.post("/v1/webhooks", json={"url": receiver.url})).status_code == 201
        # Registrations are rate limited per owner.
        codes = [
            (await alice.post("/v1/webhooks", json={"url": receiver.url})).status_code
            for _ in range(10)
        ]
        assert codes[:9] == [201] * 9 and codes[9] == 429, codes
        assert (await alice.delete(path)).status_code == 204
        assert (await alice.get(f"{path}/deliveries")).status_code == 404
        anonymous = await plane.server.client(None).get("/v1/webhooks")
        assert anonymous.status_code == 401
        document = (await alice.get("/openapi.json")).json()
        for route in ("/v1/webhooks", "/v1/webhooks/{webhook_id}/deliveries", "/v1/calendars"):
            assert route in document["paths"]
        assert "secret" in document["components"]["schemas"]["WebhookCreated"]["properties"]


async def test_receiver_gets_every_event_signed_retried_and_in_seq_order(
    plane: Plane, receiver: Receiver
) -> None:
    receiver.fail_first = 2  # the first two attempts fail: retried, with the same id
    async with plane.client() as alice:
        hook = (await alice.post("/v1/webhooks", json={"url": receiver.url})).json()
        created = await alice.post("/v1/vps", json={"meeting_url": ZOOM, "passcode": PASSCODE})
        vp_id = created.json()["vp_id"]
        # The VP runs (the launcher records; here we play its status lines and output files).
        store, hub = plane.service.store, plane.service.hub
        for status in (Status.INITIALIZING, Status.JOINING, Status.JOINED):
            hub.publish(store.transition(vp_id, status))
        folder = plane.out / vp_id
        folder.mkdir(parents=True)
        lines = [
            {"ts": 1.0, "segment_id": "s1", "channel": "CALLER", "speaker": "Ann",
             "start": 0.5, "end": 1.5, "text": "hello there"},
            {"ts": 2.0, "segment_id": "s2", "channel": "CALLER", "speaker": "Bob",
             "start": 2.0, "end": 3.0, "text": "second line"},
        ]  # fmt: skip
        (folder / "transcript.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        chat = {"ts": 2.5, "sender": "Ann", "text": "hi bot", "direction": "in", "assistant": 0}
        (folder / "chat.jsonl").write_text(json.dumps(chat) + "\n")
        (folder / "events.jsonl").write_text(
            json.dumps({"type": "vp.capture_degraded", "start_s": 12.0, "cause": "silent"}) + "\n"
        )
        await asyncio.sleep(0.8)  # the tap reads running VPs' files every half second
        hub.publish(store.transition(vp_id, Status.LEAVING))
        hub.publish(store.transition(vp_id, Status.COMPLETED, Reason.END_COMMAND))

        expected = 6 + 2 + 1 + 1  # statuses SCHEDULED…COMPLETED, two segments, chat, capture
        await wait_until(lambda: len({h["webhook-id"] for h, _ in receiver.received}) >= expected)
        await wait_until(
            lambda: receiver.fail_first == 0 and len(receiver.received) >= expected + 2
        )
        deliveries = (await alice.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries")).json()

    bodies = receiver.events(hook["secret"])  # every signature verifies
    by_id: dict[str, list[dict[str, Any]]] = {}
    for (headers, _raw), body in zip(receiver.received, bodies, strict=True):
        by_id.setdefault(headers["webhook-id"], []).append(body)
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    retried = [msg for msg, copies in by_id.items() if len(copies) > 1]
    assert retried and sum(len(by_id[m]) - 1 for m in retried) == 2, "two failures, retried"
    assert all(copies[0] == c for copies in by_id.values() for c in copies), "same body"
    events = sorted((copies[0] for copies in by_id.values()), key=lambda e: e["data"]["seq"])
    assert [e["data"]["seq"] for e in events] == list(range(1, expected + 1))
    assert {e["data"]["vp_id"] for e in events} == {vp_id}
    statuses = [e["data"]["status"] for e in events if e["type"] == "vp.status"]
    assert statuses == ["SCHEDULED", "INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED"]
    kinds = [e["type"] for e in events]
    assert kinds.count("vp.transcript") == 2 and kinds.count("vp.chat") == 1
    segment = next(e["data"] for e in events if e["type"] == "vp.transcript")
    assert segment == {"speaker": "Ann", "text": "hello there", "start_s": 0.5, "end_s": 1.5,
                       "vp_id": vp_id, "seq": segment["seq"]}  # fmt: skip
    message = next(e["data"] for e in events if e["type"] == "vp.chat")
    assert message["direction"] == "in" and message["sender"] == "Ann"
    degraded = next(e["data"] for e in events if e["type"] == "vp.capture_degraded")
    assert degraded["start_s"] == 12.0 and degraded["cause"] == "silent"
    everything = b"".join(raw for _, raw in receiver.received).decode()
    assert PASSCODE not in everything and "UrLsEcReT" not in everything
    assert deliveries["failed"] == 0 and deliveries["pending"] == 0
    assert deliveries["delivered"] == expected
    codes = [d["status_code"] for d in deliveries["deliveries"] if d["event_id"] in retried]
    assert sorted(codes) == [200] * len(retried) + [500, 500]
    first_retry = [
        d for d in deliveries["deliveries"] if d["event_id"] == retried[0] and d["attempt"] <= 2
    ]
    times = sorted(datetime.fromisoformat(d["ts"]) for d in first_retry)
    assert times[1] - times[0] < timedelta(seconds=5), "the first retry comes within 5 s"


async def test_event_type_filter_and_owner_scope(plane: Plane, receiver: Receiver) -> None:
    async with plane.client() as alice, plane.client("bob") as bob:
        hook = (
            await alice.post("/v1/webhooks", json={"url": receiver.url, "events": ["vp.chat"]})
        ).json()
        await bob.post("/v1/vps", json={"meeting_url": ZOOM})  # bob's VP: not alice's business
        created = await alice.post("/v1/vps", json={"meeting_url": ZOOM})
        vp_id = created.json()["vp_id"]
        plane.service.hub.publish(plane.service.store.transition(vp_id, Status.INITIALIZING))
        folder = plane.out / vp_id
        folder.mkdir(parents=True)
        chat = {"ts": 1.0, "sender": "VP", "text": "hello", "direction": "out"}
        (folder / "chat.jsonl").write_text(json.dumps(chat) + "\n")
        await wait_until(lambda: len(receiver.received) >= 1)
        await asyncio.sleep(1.0)
    events = receiver.events(hook["secret"])
    assert [e["type"] for e in events] == ["vp.chat"]
    assert events[0]["data"]["seq"] == 3, "seq counts every event of the VP, across types"
    assert events[0]["data"]["direction"] == "out"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_serve(db: Path, port: int, hosts: str) -> asyncio.subprocess.Process:
    return await start_vp_serve(db, port, env={"VP_WEBHOOK_ALLOWED_HOSTS": hosts})


async def test_killed_vp_serve_loses_no_pending_delivery(
    tmp_path: Path, receiver: Receiver
) -> None:
    """`vp serve` SIGKILLed while a delivery is being retried: after the restart the same
    event (same webhook-id) is delivered."""
    receiver.status = 503  # the receiver is down for now
    db, port = tmp_path / "vps.db", _free_port()
    proc = await _start_serve(db, port, receiver.host)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers=bearer("alice")) as client:
            hook = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
            join_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            created = await client.post("/v1/vps", json={"meeting_url": ZOOM, "join_at": join_at})
            assert created.status_code == 201
        await wait_until(lambda: len(receiver.received) >= 2)  # failed, retried, failed
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    failed_ids = {h["webhook-id"] for h, _ in receiver.received}
    assert len(failed_ids) == 1
    receiver.status = 200
    seen = len(receiver.received)
    proc = await _start_serve(db, port, receiver.host)
    try:
        await wait_until(lambda: len(receiver.received) > seen)
        async with httpx.AsyncClient(base_url=base, headers=bearer("alice")) as client:
            await wait_until(lambda: receiver.received[-1][0]["webhook-id"] in failed_ids)
            log = (await client.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries")).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    delivered = receiver.events(hook["secret"])[-1]
    assert delivered["type"] == "vp.status" and delivered["data"]["status"] == "SCHEDULED"
    assert log["delivered"] == 1 and log["pending"] == 0
    assert [d["status_code"] for d in log["deliveries"]][0] == 200


# -- calendars ---------------------------------------------------------------------------------
def _ics(*events: str) -> bytes:
    body = "".join(events)
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vp tests//EN\r\n"
    return f"{head}{body}END:VCALENDAR\r\n".encode()


def _at(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _event(uid: str, start: datetime, *lines: str) -> str:
    end = start + timedelta(minutes=30)
    props = "".join(f"{line}\r\n" for line in lines)
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{_at(start)}\r\nDTSTART:{_at(start)}\r\n"
        f"DTEND:{_at(end)}\r\n{props}END:VEVENT\r\n"
    )


async def test_calendar_feed_schedules_moves_and_cancels_vps(
    plane: Plane, receiver: Receiver
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    standup = now + timedelta(hours=2)
    weekly = now + timedelta(minutes=30)
    receiver.feed = _ics(
        _event("standup", standup, "SUMMARY:Standup", "LOCATION:https://zoom.us/j/5551234567"),
        _event(
            "daily", weekly, "RRULE:FREQ=DAILY;COUNT=5",
            "DESCRIPTION:Join: https://teams.microsoft.com/l/meetup-join/19%3ameeting_x/0 ok",
        ),
        _event("nolink", standup, "LOCATION:Room 4"),
        _event("gone", standup, "STATUS:CANCELLED", "URL:https://zoom.us/j/5559999999"),
        _event("conf", standup + timedelta(hours=1),
               "CONFERENCE;VALUE=URI:https://app.chime.aws/meetings/1234567890"),
        _event("later", now + timedelta(days=3), "LOCATION:https://zoom.us/j/5550000000"),
    )  # fmt: skip
    feed_url = f"http://{receiver.host}/feed.ics"
    async with plane.client() as alice, plane.client("bob") as bob:
        refused = await alice.post("/v1/calendars", json={"ics_url": "https://10.0.0.1/c.ics"})
        assert refused.status_code == 422 and refused.json()["fields"][0]["field"] == "ics_url"
        created = await alice.post("/v1/calendars", json={"ics_url": feed_url, "name": "work"})
        assert created.status_code == 201, created.text
        calendar = created.json()
        assert calendar["last_error"] is None and calendar["last_success"] is not None
        assert calendar["ics_url"] == f"http://{receiver.host}/…", "the feed path may be secret"
        first = {vp["vp_id"]: vp for vp in calendar["vps"]}
        assert len(first) == 3  # standup, daily's next occurrence, the Chime conference
        records = {v: (await alice.get(f"/v1/vps/{v}")).json() for v in first}
        by_platform = {r["platform"]: r for r in records.values()}
        assert set(by_platform) == {"zoom", "teams", "chime"}
        assert all(r["status"] == "SCHEDULED" for r in records.values())
        zoom = by_platform["zoom"]
        assert datetime.fromisoformat(zoom["join_at"]) == standup
        assert datetime.fromisoformat(by_platform["teams"]["join_at"]) == weekly
        assert (await bob.get("/v1/calendars")).json() == {"calendars": []}
        assert (await bob.get(f"/v1/vps/{zoom['vp_id']}")).status_code == 404

        # The standup moves an hour later, the Chime event is removed, daily is unchanged.
        moved = standup + timedelta(hours=1)
        receiver.feed = _ics(
            _event("standup", moved, "LOCATION:https://zoom.us/j/5551234567"),
            _event(
                "daily", weekly, "RRULE:FREQ=DAILY;COUNT=5",
                "DESCRIPTION:Join: https://teams.microsoft.com/l/meetup-join/19%3ameeting_x/0 ok",
            ),
        )  # fmt: skip
        await plane.hooks.sync_all()
        calendar = (await alice.get("/v1/calendars")).json()["calendars"][0]
        now_vps = {vp["vp_id"] for vp in calendar["vps"]}
        assert by_platform["teams"]["vp_id"] in now_vps, "an unchanged occurrence keeps its VP"
        assert zoom["vp_id"] not in now_vps and len(now_vps) == 2
        old = (await alice.get(f"/v1/vps/{zoom['vp_id']}")).json()
        assert old["status"] == "CANCELLED"
        assert (await alice.get(f"/v1/vps/{by_platform['chime']['vp_id']}")).json()[
            "status"
        ] == "CANCELLED"
        new_zoom = (await alice.get(f"/v1/vps/{(now_vps - first.keys()).pop()}")).json()
        assert new_zoom["platform"] == "zoom" and new_zoom["status"] == "SCHEDULED"
        assert datetime.fromisoformat(new_zoom["join_at"]) == moved

        # The event is cancelled in the feed: its VP is cancelled.
        receiver.feed = _ics(
            _event("standup", moved, "STATUS:CANCELLED", "LOCATION:https://zoom.us/j/5551234567"),
            _event(
                "daily", weekly, "RRULE:FREQ=DAILY;COUNT=5",
                "DESCRIPTION:Join: https://teams.microsoft.com/l/meetup-join/19%3ameeting_x/0 ok",
            ),
        )  # fmt: skip
        await plane.hooks.sync_all()
        assert (await alice.get(f"/v1/vps/{new_zoom['vp_id']}")).json()["status"] == "CANCELLED"

        # A broken feed is recorded on the calendar and changes nothing.
        last_success = (await alice.get("/v1/calendars")).json()["calendars"][0]["last_success"]
        for status, feed, error in [
            (500, b"", "HTTP 500"),
            (200, b"this is not a calendar", "not an iCalendar feed"),
            (200, b"X" * (1024 * 1024 + 10), "larger than"),
        ]:
            receiver.feed_status, receiver.feed = status, feed
            await plane.hooks.sync_all()
            broken = (await alice.get("/v1/calendars")).json()["calendars"][0]
            assert error in (broken["last_error"] or ""), broken
            assert broken["last_success"] == last_success
            assert [v["vp_id"] for v in broken["vps"]] == [by_platform["teams"]["vp_id"]]

        # Removing the calendar cancels the VPs it scheduled that have not started.
        assert (await bob.delete(f"/v1/calendars/{calendar['calendar_id']}")).status_code == 404
        gone = await alice.delete(f"/v1/calendars/{calendar['calendar_id']}")
        assert gone.status_code == 204
        teams = (await alice.get(f"/v1/vps/{by_platform['teams']['vp_id']}")).json()
        assert teams["status"] == "CANCELLED"
        assert (await alice.get("/v1/calendars")).json() == {"calendars": []}


def _certificate(folder: Path, host: str) -> tuple[str, str]:
    """A self-signed certificate for ``host``: (certfile, keyfile)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


async def test_deliveries_are_pinned_to_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DNS rebinding between check and connection: the delivery connects to the address
    that was checked (here the name's only address, made "public" for the test), with the
    certificate still verified for the host name; a name with any private address is
    refused."""
    import ssl

    from scheduler import netguard
    from scheduler.hook_store import NewEvent, WebhookRow
    from scheduler.webhooks import Deliverer

    certfile, keyfile = _certificate(tmp_path, "hooks.example")
    rx = Receiver(tls=(certfile, keyfile))
    await rx.start()
    answers = {"hooks.example": ["127.0.0.1"], "rebound.example": ["93.184.216.34", "10.0.0.5"]}
    resolved: list[str] = []

    async def fake_resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return answers[host]

    real_public = netguard.public_address
    monkeypatch.setattr(netguard, "resolve", fake_resolve)
    monkeypatch.setattr(netguard, "public_address", lambda a: a == "127.0.0.1" or real_public(a))
    try:
        target = await netguard.pinned_target(f"https://hooks.example:{rx.port}/hook", frozenset())
        assert target.url == f"https://127.0.0.1:{rx.port}/hook"
        assert target.headers == {"host": f"hooks.example:{rx.port}"}
        assert target.extensions == {"sni_hostname": "hooks.example"}
        with pytest.raises(netguard.UrlRefused, match="non-public"):
            await netguard.pinned_target("https://rebound.example/hook", frozenset())

        store = HookStore(tmp_path / "hooks.db")
        url = f"https://hooks.example:{rx.port}/hook"
        store.create_webhook(WebhookRow("wh_1", "alice", url, (), "whsec_" + "A" * 44, "t"))
        event = NewEvent("vp.status", "2030-01-01T00:00:00Z", {"status": "SCHEDULED"})
        assert store.emit("vp1", "alice", "status", 0, 1, [event], now=time.time())
        trust = ssl.create_default_context(cafile=certfile)
        deliverer = Deliverer(store, allowed_hosts=frozenset(), verify=trust)
        task = asyncio.create_task(deliverer.run())
        await wait_until(lambda: store.outbox_states("wh_1").get("delivered") == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        ((headers, _),) = rx.received
        assert headers["host"] == f"hooks.example:{rx.port}" and "hooks.example" in resolved

        # The same delivery with a certificate that does not match fails (not delivered).
        store.create_webhook(
            WebhookRow("wh_2", "alice", url.replace("hooks.", "other."), (), "whsec_" + "A" * 44,
                       "t")
        )  # fmt: skip
        answers["other.example"] = ["127.0.0.1"]
        assert store.emit("vp1", "alice", "status", 1, 2, [event], now=time.time())
        task = asyncio.create_task(deliverer.run())
        await wait_until(lambda: bool(store.deliveries("wh_2")))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        (attempt,) = store.deliveries("wh_2")[-1:]
        assert attempt.status_code is None and attempt.error == "ConnectError"
        assert not [h for h, _ in rx.received if h["host"].startswith("other.")]
    finally:
        await rx.stop()


async def test_a_delivery_failing_past_the_retry_window_is_recorded_failed(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Retries back off (1 s, 2 s, …) until the retry window (--webhook-retry-hours) is over;
    then the event is marked failed and no more attempts are made."""
    from scheduler.hook_store import NewEvent, WebhookRow
    from scheduler.webhooks import Deliverer

    receiver.status = 500
    store = HookStore(tmp_path / "hooks.db")
    store.create_webhook(WebhookRow("wh_1", "alice", receiver.url, (), "whsec_" + "A" * 44, "t"))
    event = NewEvent("vp.status", "2030-01-01T00:00:00Z", {"status": "SCHEDULED"})
    assert store.emit("vp1", "alice", "status", 0, 1, [event], now=time.time())
    deliverer = Deliverer(store, allowed_hosts=frozenset({receiver.host}), retry_seconds=2.5)
    task = asyncio.create_task(deliverer.run())
    try:
        await wait_until(lambda: store.outbox_states("wh_1").get("failed") == 1, timeout=15)
        await asyncio.sleep(1.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    attempts = list(reversed(store.deliveries("wh_1")))
    assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
    assert 2 <= len(attempts) <= 3 and all(a.status_code == 500 for a in attempts)
    assert len(receiver.received) == len(attempts), "nothing after it was marked failed"
    assert len({h["webhook-id"] for h, _ in receiver.received}) == 1


def test_a_failed_attempt_records_the_refusal_the_timeout_or_the_error_type() -> None:
    """The delivery log's ``error`` (local and AWS deliveries alike)."""
    from scheduler.netguard import UrlRefused
    from scheduler.webhooks import delivery_error

    assert delivery_error(UrlRefused("a private address")) == "refused: a private address"
    assert delivery_error(httpx.ReadTimeout("slow")) == "timeout"
    assert delivery_error(httpx.ConnectError("down")) == "ConnectError"
