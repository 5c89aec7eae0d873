"""The web console in real headless Chromium against a real `vp serve` stack: launch from the
form, watch the status change live (server-sent events, no polling), read the live
transcript and chat, stop the VP; schedule and cancel; field errors; HTML is shown as text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, async_playwright, expect

from platforms.replicas.server import ChatLine, ParticipantSpec, ReplicaServer, Scenario
from scheduler.local_launcher import LocalLauncher
from scheduler.service import Caller, VpService
from scheduler.sqlite_store import SqliteStore
from tests.scheduler.conftest import RunningServer, token
from tests.scheduler.fakes import RecordingLauncher
from vp.browser import find_chromium

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
    await page.fill("#meeting_url", url)
    await page.select_option("#platform", "zoom")
    await page.fill("#join_at", later.strftime("%Y-%m-%dT%H:%M:%S"))
    await page.get_by_role("button", name="Launch virtual participant").click()
    scheduled = page.get_by_test_id("vp-row").first
    await expect(scheduled.get_by_test_id("vp-status")).to_have_text("SCHEDULED")
    vp1 = await scheduled.get_attribute("data-vp-id")
    assert vp1 is not None
    record = await server.service.get(_alice(), vp1)
    assert record.join_at == later, "local time in the browser → the same instant, with offset"
    await scheduled.get_by_role("button", name="Cancel").click()
    await expect(scheduled.get_by_test_id("vp-status")).to_have_text("CANCELLED")

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


def _alice() -> Caller:
    return Caller("alice")


def test_console_assets_are_package_data() -> None:
    import scheduler.api as api

    assert {p.name for p in Path(api.CONSOLE_DIR).iterdir()} >= {
        "index.html",
        "app.js",
        "style.css",
    }


def test_the_platform_list_offers_every_registered_platform() -> None:
    import re

    from platforms.registry import platform_names

    html = (Path(__file__).parents[2] / "scheduler" / "console" / "index.html").read_text()
    select = html[html.index('<select id="platform"') : html.index("</select>")]
    offered = set(re.findall(r'<option value="([a-z]+)">', select))
    assert offered == set(platform_names()), "the console's platform list is the registry's"
