"""The web console in real headless Chromium against a real `vp serve` stack: launch from the
form, watch the status change live (server-sent events, no polling), read the live
transcript and chat, stop the VP; schedule and cancel; field errors; HTML is shown as text."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page, async_playwright, expect

from platforms.replicas.server import ChatLine, ParticipantSpec, ReplicaServer, Scenario
from scheduler.local_launcher import LocalLauncher
from scheduler.service import Caller, VpService
from scheduler.sqlite_store import SqliteStore
from tests.scheduler.conftest import RunningServer, token
from tests.scheduler.fakes import RecordingLauncher
from tests.support import STOPPED_AFTER_JOINING, wait_until
from vp.browser import find_chromium
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, speech_wav

pytestmark = pytest.mark.integration
PASSCODE = "551177"
XSS_CHAT = '<img src=x onerror="window.__xss=1"><b>bold</b> & more'
XSS_NAME = "<i>Scribe</i>"
SPEECH = "Hello everyone, and welcome to the weekly planning meeting. Please send your numbers."
TZ = "Europe/Berlin"


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(), headless=True)
        context = await browser.new_context(timezone_id=TZ)
        yield await context.new_page()
        await browser.close()


async def test_console_launch_watch_transcript_stop(tmp_path, monkeypatch, serve, page) -> None:
    with ReplicaServer("zoom") as replica:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
        replica.add_meeting(
            Scenario(
                meeting_id="87012345001",
                passcode=PASSCODE,
                participants=[ParticipantSpec(name="Alice", speech=SPEECH)],
                chat=[ChatLine(at_s=2, sender="Alice", text=XSS_CHAT)],
            )
        )
        url = replica.meeting_url("87012345001")
        # The VP runs the in-process reference transcriber: real transcript lines.
        launcher = LocalLauncher(
            tmp_path / "out",
            extra_args=["--intro-message=", "--exit-message=", "--max-duration=300"],
        )
        service = VpService(SqliteStore(tmp_path / "vps.db"), launcher)
        server: RunningServer = await serve(service, tmp_path / "out")
        await run_console(page, server, url)


async def run_console(page: Page, server: RunningServer, url: str) -> None:
    gets: list[str] = []
    page.on("request", lambda r: gets.append(r.url) if r.method == "GET" else None)
    await page.goto(f"{server.base_url}/#token={token('alice')}")
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    assert "token=" not in page.url, "the token is removed from the address bar"

    # A field error from the API is shown, naming the field.
    await page.fill("#meeting_url", "https://evil.example.com/j/1")
    await page.get_by_role("button", name="Launch virtual participant").click()
    await expect(page.get_by_test_id("launch-error")).to_contain_text("meeting_url")
    await expect(page.get_by_test_id("vp-row")).to_have_count(0)

    # Schedule one for later, then cancel it: it never launches.
    later = datetime.now(ZoneInfo(TZ)).replace(microsecond=0) + timedelta(minutes=30)
    # With a passcode in the URL: stored masked, shown readably ("pwd=***", not "%2A%2A%2A").
    await page.fill("#meeting_url", f"{url}{'&' if '?' in url else '?'}pwd=Pw4dInUrl")
    await page.select_option("#platform", "zoom")
    await page.fill("#join_at", later.strftime("%Y-%m-%dT%H:%M:%S"))
    await page.get_by_role("button", name="Launch virtual participant").click()
    scheduled = page.get_by_test_id("vp-row").first
    await expect(scheduled.get_by_test_id("vp-status")).to_have_text("SCHEDULED")
    vp1 = await scheduled.get_attribute("data-vp-id")
    assert vp1 is not None
    record = await server.service.get(_alice(), vp1)
    assert record.join_at == later, "local time in the browser → the same instant, with offset"
    shown = await scheduled.locator("td.meeting").inner_text()
    assert "pwd=***" in shown and "%2A" not in shown and "Pw4dInUrl" not in shown, shown
    await scheduled.get_by_role("button", name="Cancel").click()
    await expect(scheduled.get_by_test_id("vp-status")).to_have_text("CANCELLED")
    await page.fill("#meeting_url", url)

    # Launch now, with a passcode and an HTML-looking name.
    await page.fill("#join_at", "")
    await page.fill("#name", XSS_NAME)
    await page.fill("#passcode", PASSCODE)
    await page.get_by_role("button", name="Launch virtual participant").click()
    row = page.locator("tr[data-testid=vp-row]").filter(has_text=XSS_NAME)
    status = row.get_by_test_id("vp-status")
    await expect(status).to_have_text("JOINED", timeout=120_000)
    vp2 = await row.get_attribute("data-vp-id")
    assert vp2 is not None and vp2 != vp1
    assert await page.locator("#vps i").count() == 0, "the name is text, not markup"

    # The live transcript: chat (HTML shown as text, never run) and transcript lines.
    await row.get_by_role("button", name="Transcript").click()
    lines = page.get_by_test_id("transcript")
    await expect(lines.locator("li.chat")).to_contain_text(XSS_CHAT, timeout=60_000)
    await expect(lines.locator("li.segment").first).to_contain_text("Alice:", timeout=90_000)
    assert await lines.locator("b, img").count() == 0
    assert await page.evaluate("window.__xss") is None

    await row.get_by_role("button", name="Stop").click()
    await expect(status).to_have_text("COMPLETED", timeout=60_000)
    await expect(row).to_contain_text("stopped")
    await expect(lines.locator("li.end")).to_have_text("ended: COMPLETED (stopped)")
    api_gets = [u for u in gets if "/v1/" in u]
    streams = [u.split("?")[0].removeprefix(server.base_url) for u in api_gets]
    # Only the two event streams, each opened once: the console never polls the API.
    assert streams == ["/v1/events", f"/v1/vps/{vp2}/transcript"], streams
    final = await server.service.get(_alice(), vp2)
    assert [h.status.value for h in final.history][-3:] == ["JOINED", "LEAVING", "COMPLETED"]


async def test_console_streams_outlive_their_stream_tokens(tmp_path, serve, page) -> None:
    # Stream tokens live 2 s here: each stream ends with `expired` every 2 s and the console
    # reopens it with a fresh token, the transcript resuming after the last line it showed.
    service = VpService(SqliteStore(tmp_path / "vps.db"), RecordingLauncher())
    server: RunningServer = await serve(service, tmp_path / "out", stream_ttl=2)
    async with server.client("alice") as alice:
        created = await alice.post("/v1/vps", json={"meeting_url": "https://zoom.us/j/123456789"})
        vp_id = created.json()["vp_id"]
    folder = tmp_path / "out" / vp_id
    folder.mkdir(parents=True)
    gets: list[str] = []
    page.on("request", lambda r: gets.append(r.url) if r.method == "GET" else None)
    await page.goto(f"{server.base_url}/#token={token('alice')}")
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    await page.get_by_test_id("vp-transcript").click()
    for i in range(8):  # 8 lines over ~7 s: three or more token lifetimes
        with open(folder / "transcript.jsonl", "a") as file:
            file.write(json.dumps({"speaker": "Alice", "text": f"line {i}"}) + "\n")
        await asyncio.sleep(0.9)
    lines = page.get_by_test_id("transcript").locator("li.segment")
    await expect(lines).to_have_count(8)
    assert await lines.all_inner_texts() == [f"Alice: line {i}" for i in range(8)]
    transcript_gets = [u for u in gets if u.split("?")[0].endswith("/transcript")]
    assert len(transcript_gets) >= 3, transcript_gets
    assert all("after=" in u for u in transcript_gets[1:])
    assert len([u for u in gets if "/v1/events?" in u]) >= 3
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    assert await page.get_by_test_id("vp-row").count() == 1


ALICE_SPEECH = "Good morning everyone. Let us review the budget for the next quarter."
BOB_SPEECH = "Thank you Alice. The numbers for the second project look good to me."


async def test_meeting_page_of_a_finished_janus_meeting(tmp_path, monkeypatch, serve, page) -> None:
    """A real VP in a real Janus room: Alice speaks, Bob joins, Alice leaves (the Janus driver
    names the speaker when one other person is in the room: Alice, then Bob), the VP is
    stopped. Its meeting page shows the transcript by speaker, a two-lane timeline (checked
    on a screenshot), the recording with a waveform, every artifact to download and the
    status history — under the console's CSP, with no violation."""
    async with LocalMeeting(tmp_path / "janus") as room:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", room.allowed_host)
        alice_wav = speech_wav(tmp_path / "alice.wav", ALICE_SPEECH, tail_seconds=1.0)
        bob_wav = speech_wav(tmp_path / "bob.wav", BOB_SPEECH, tail_seconds=1.0)
        launcher = LocalLauncher(
            tmp_path / "out",
            extra_args=["--intro-message=", "--exit-message=", "--max-duration=180"],
        )
        service = VpService(SqliteStore(tmp_path / "vps.db"), launcher)
        server: RunningServer = await serve(service, tmp_path / "out")
        async with server.client("alice") as client:
            bob = SimulatedParticipant(room.url, "Bob", bob_wav)
            try:
                async with SimulatedParticipant(room.url, "Alice", alice_wav):
                    body = {"meeting_url": room.url, "platform": "janus", "name": "Scribe"}
                    vp_id = (await client.post("/v1/vps", json=body)).json()["vp_id"]
                    out = tmp_path / "out" / vp_id
                    await wait_until(lambda: _speakers(out, "Alice"), 90, interval=0.25)
                    await wait_until(lambda: _segment_by(out, "Alice"), 60, interval=0.25)
                    await bob.join()
                    await asyncio.sleep(1.0)
                # Alice has left: Bob is the one other participant, so the speaker.
                await wait_until(lambda: _speakers(out, "Bob"), 30, interval=0.25)
                await wait_until(lambda: _segment_by(out, "Bob"), 60, interval=0.25)
            finally:
                await bob.aclose()
            await client.delete(f"/v1/vps/{vp_id}")
            await wait_until(lambda: (out / "summary.json").exists(), 60, interval=0.25)
            for _ in range(100):
                if (await client.get(f"/v1/vps/{vp_id}")).json()["status"] == "COMPLETED":
                    break
                await asyncio.sleep(0.2)

        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await page.goto(f"{server.base_url}/#token={token('alice')}")
        await expect(page.get_by_test_id("connection")).to_have_text("live")
        await page.get_by_test_id("vp-meeting").click()
        meeting = page.get_by_test_id("meeting-page")
        await expect(meeting.get_by_test_id("meeting-status")).to_have_text("COMPLETED (stopped)")
        # The transcript, grouped by speaker: Alice's turn first, then Bob's.
        speakers = meeting.get_by_test_id("turn-speaker")
        await expect(speakers.first).to_have_text("Alice", timeout=20_000)
        await expect(speakers.filter(has_text="Bob")).to_have_count(1)
        texts = await speakers.all_inner_texts()
        assert texts.index("Alice") < texts.index("Bob")
        assert all(a != b for a, b in zip(texts, texts[1:], strict=False)), "turns merge"
        await expect(meeting.get_by_test_id("meeting-chat")).to_have_text("No chat messages.")
        # Who spoke when: one lane each, in the order they first spoke.
        lanes = meeting.get_by_test_id("timeline-lane").locator(".lane-name")
        await expect(lanes).to_have_text(["Alice", "Bob"])
        # The recording, playable, and its waveform.
        audio = meeting.get_by_test_id("recording")
        await expect(audio).to_be_visible(timeout=20_000)
        duration = await audio.evaluate(
            "a => a.readyState >= 1 ? a.duration : new Promise(r =>"
            " a.addEventListener('loadedmetadata', () => r(a.duration)))"
        )
        wav_seconds = ((out / "recording.wav").stat().st_size - 44) / 64000
        assert duration == pytest.approx(wav_seconds, abs=0.5) and duration > 5
        waveform = _pixels(await meeting.get_by_test_id("waveform").screenshot())
        assert (waveform.min(axis=2) < 200).mean() > 0.05, "the waveform is drawn"
        # The timeline's screenshot: each lane has its bar, Alice's before Bob's.
        timeline = _pixels(await meeting.get_by_test_id("timeline").screenshot())
        bars = _lane_bars(timeline, lanes=2)
        assert all(cols.size > 20 for cols in bars), [cols.size for cols in bars]
        assert bars[0].min() < bars[1].min() and bars[0].max() <= bars[1].min() + 6
        # Downloads: every artifact, each link serving the file.
        names = await meeting.get_by_test_id("download").locator("a").all_inner_texts()
        assert names == [
            "recording.wav",
            "transcript.jsonl",
            "chat.jsonl",
            "speakers.jsonl",
            "status.jsonl",
            "summary.json",
        ]
        link = meeting.get_by_test_id("download").locator("a", has_text="status.jsonl")
        href = await link.get_attribute("href")
        assert href is not None
        served = await page.evaluate("u => fetch(u).then(r => r.text())", href)
        assert served == (out / "status.jsonl").read_text()
        # The status history.
        history = await meeting.get_by_test_id("history-item").locator("strong").all_inner_texts()
        assert [h.strip() for h in history] == STOPPED_AFTER_JOINING
        assert violations == []


def _speakers(out: Path, name: str) -> bool:
    path = out / "speakers.jsonl"
    return path.exists() and any(
        json.loads(line)["speaker"] == name for line in path.read_text().splitlines() if line
    )


def _segment_by(out: Path, name: str) -> bool:
    path = out / "transcript.jsonl"
    return path.exists() and any(
        json.loads(line).get("speaker") == name and json.loads(line).get("text")
        for line in path.read_text().splitlines()
        if line.endswith("}")
    )


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _lane_bars(pixels: np.ndarray, *, lanes: int) -> list[np.ndarray]:
    """Per lane, the x columns (in the plot area) holding a bar's colour: saturated pixels,
    unlike the white background, the grey lane backgrounds and the black labels."""
    height = pixels.shape[0]
    lane = (height - 22 * height / (lanes * 26 + 22)) / lanes
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    found = []
    for index in range(lanes):
        band = saturation[int(index * lane + lane * 0.35) : int(index * lane + lane * 0.65)]
        found.append(np.flatnonzero((band > 60).any(axis=0)))
    return found


def _alice() -> Caller:
    return Caller("alice")


def test_console_assets_are_package_data() -> None:
    import scheduler.api as api

    assert {p.name for p in Path(api.CONSOLE_DIR).iterdir()} >= {
        "index.html",
        "app.js",
        "style.css",
        "hooks.js",
        "meeting.js",
    }


async def test_console_manages_webhooks_and_calendars(tmp_path, serve, page) -> None:
    """Webhooks (create, the secret shown once, deliveries) and calendars (add, last sync,
    its VPs, a broken feed's error, remove) from the console; server text stays text."""
    from datetime import UTC

    from scheduler.hook_store import HookStore
    from scheduler.hooks import HookService, HookSettings
    from tests.scheduler.test_hooks import ZOOM, Receiver, _event, _ics

    receiver = Receiver()
    await receiver.start()
    try:
        service = VpService(SqliteStore(tmp_path / "vps.db"), RecordingLauncher())
        settings = HookSettings(
            calendar_poll=0,
            webhook_allowed_hosts=frozenset({receiver.host}),
            calendar_allowed_hosts=frozenset({receiver.host}),
        )
        hooks = HookService(HookStore(tmp_path / "vps.db"), service, settings=settings)
        server: RunningServer = await serve(service, None, hooks=hooks)
        await page.goto(f"{server.base_url}/#token={token('alice')}")
        await expect(page.get_by_test_id("connection")).to_have_text("live")

        # Webhooks: a refused URL names the field; a good one shows its secret once.
        await page.locator("#webhooks-panel summary").click()
        await page.fill("#webhook_url", "https://127.0.0.1/hook")
        await page.get_by_role("button", name="Add webhook").click()
        await expect(page.get_by_test_id("webhook-error")).to_contain_text("url")
        await page.fill("#webhook_url", receiver.url)
        await page.check("#webhook-events input[value='vp.status']")
        await page.get_by_role("button", name="Add webhook").click()
        await expect(page.get_by_test_id("webhook-secret")).to_contain_text("whsec_")
        secret = await page.get_by_test_id("webhook-secret").text_content()
        assert secret and secret.startswith("whsec_")
        hook = page.get_by_test_id("webhook")
        await expect(hook).to_have_count(1)
        await expect(hook).to_contain_text("vp.status")
        await page.get_by_role("button", name="Done").click()
        await expect(page.get_by_test_id("webhook-secret-box")).to_be_hidden()
        assert secret not in await page.content(), "the secret is gone once dismissed"

        launched = await service.launch(Caller("alice"), _request(ZOOM))
        assert launched.created
        await wait_until(lambda: bool(receiver.received))
        await hook.get_by_role("button", name="Deliveries").click()
        delivery = page.get_by_test_id("delivery")
        await expect(delivery).to_have_count(1)
        await expect(delivery).to_contain_text("HTTP 200")
        await expect(page.get_by_test_id("deliveries-summary")).to_contain_text("1 delivered")

        # Calendars: a feed with one Zoom meeting; its VP is listed with the last sync.
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        receiver.feed = _ics(_event("one", start, "LOCATION:https://zoom.us/j/5551234567"))
        await page.locator("#calendars-panel summary").click()
        await page.fill("#ics_url", f"http://{receiver.host}/feed.ics")
        await page.fill("#calendar_name", XSS_NAME)
        await page.get_by_role("button", name="Add calendar").click()
        calendar = page.get_by_test_id("calendar")
        await expect(calendar).to_have_count(1)
        await expect(calendar.locator(".title")).to_have_text(XSS_NAME)
        assert await page.locator("#calendar-list i").count() == 0, "the name is text"
        await expect(calendar.get_by_test_id("calendar-sync")).not_to_contain_text("never")
        await expect(calendar.get_by_test_id("calendar-vps")).to_contain_text("SCHEDULED")

        receiver.feed_status = 500  # broken: the error shows, the VP stays
        await hooks.sync_all()
        await page.locator("#calendars-panel summary").click()  # close, open: reload
        await page.locator("#calendars-panel summary").click()
        await expect(calendar.get_by_test_id("calendar-last-error")).to_contain_text("HTTP 500")
        await expect(calendar.get_by_test_id("calendar-vps")).to_contain_text("SCHEDULED")
        await calendar.get_by_role("button", name="Remove").click()
        await expect(page.get_by_test_id("calendar")).to_have_count(0)
        await expect(page.locator("#calendar-list")).to_contain_text("No calendars yet")
        vps = await service.list(Caller("alice"))
        assert sorted(v.status.value for v in vps) == ["CANCELLED", "SCHEDULED"]
    finally:
        await receiver.stop()


def _request(url: str) -> Any:
    from scheduler.models import LaunchRequest

    return LaunchRequest(meeting_url=url)


def test_the_platform_list_offers_every_registered_platform() -> None:
    import re

    from platforms.registry import platform_names

    html = (Path(__file__).parents[2] / "scheduler" / "console" / "index.html").read_text()
    select = html[html.index('<select id="platform"') : html.index("</select>")]
    offered = set(re.findall(r'<option value="([a-z]+)">', select))
    assert offered == set(platform_names()), "the console's platform list is the registry's"
