"""Navigation off the allow-list is blocked by request interception, not only checked up front.

An allowed page sends the browser elsewhere — an HTTP 302, a chain of redirects, a script's
``location =``, a frame, and (mid-call) the meeting page itself — to a second, real HTTP
server that is NOT on the allow-list. The request must never reach that server, and a VP whose
meeting page is sent away ends FAILED invalid-url.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import start_and_wait_joined, statuses, summary
from tests.recording_server import RecordingServer
from tests.support import scribe_config
from vp.browser import BrowserHost
from vp.config import JoinConfig
from vp.lifecycle import Reason, Status
from vp.localmeeting.meeting import LocalMeeting
from vp.navguard import BlockedNavigation, NavigationGuard
from vp.runner import VirtualParticipant
from vp.urls import url_allowed

pytestmark = pytest.mark.integration

PAGE = "audiobridgetest.html"  # a path the Janus driver claims


class Site:
    """A real HTTP server on 127.0.0.1 recording every request it gets."""

    def __init__(self, pages: dict[str, tuple[int, dict[str, str], str]]) -> None:
        self.pages = pages
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site.requests.append(self.path)
                status, headers, body = site.pages.get(
                    self.path.split("?")[0], (404, {}, "not found")
                )
                data = body.encode()
                self.send_response(status)
                for key, value in {"Content-Type": "text/html", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def evil() -> Iterator[Site]:
    site = Site({})
    yield site
    site.close()


@pytest.fixture
def allowed(evil: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    target = f"http://{evil.host}/stolen?room=1"
    site = Site(
        {
            f"/r302/{PAGE}": (302, {"Location": target}, ""),
            f"/hop/{PAGE}": (302, {"Location": f"/r302/{PAGE}"}, ""),
            f"/js/{PAGE}": (200, {}, f"<p>joining…</p><script>location.href = {target!r}</script>"),
            "/frame.html": (200, {}, f"<p id=main>meeting</p><iframe src={target!r}></iframe>"),
        }
    )
    monkeypatch.setenv("VP_ALLOWED_HOSTS", site.host)  # only this one
    yield site
    site.close()


@pytest.mark.parametrize("trick", ["r302", "hop", "js"])
async def test_redirect_off_the_list_during_join_is_blocked(
    trick: str, allowed: Site, evil: Site, tmp_path: Path
) -> None:
    out = tmp_path / "vp"
    url = f"http://{allowed.host}/{trick}/{PAGE}?room=1"
    config = JoinConfig(meeting_url=url, name="Scribe", out_dir=out, join_timeout=30)
    result = await asyncio.wait_for(VirtualParticipant(config).run(), 60)

    assert (result.final.status, result.final.reason) == (Status.FAILED, Reason.INVALID_URL)
    assert evil.host in (result.final.detail or "")
    assert evil.requests == [], "nothing reached the host off the allow-list"
    assert any(path.startswith(f"/{trick}/") for path in allowed.requests)
    assert [s["status"] for s in statuses(out)] == ["INITIALIZING", "JOINING", "FAILED"]
    assert summary(out)["browser"]["navigations_blocked"] == [evil.host]


async def test_frame_off_the_list_is_blocked_and_the_page_stays(allowed: Site, evil: Site) -> None:
    blocked: list[BlockedNavigation] = []
    extra = frozenset({allowed.host})
    guard = NavigationGuard(lambda url: url_allowed(url, (), extra), blocked.append)
    async with BrowserHost() as host:
        context = await host.new_context()
        page = await context.new_page()
        await guard.protect(page)
        await page.goto(f"http://{allowed.host}/frame.html", wait_until="load")
        await asyncio.sleep(0.5)
        assert await page.locator("#main").inner_text() == "meeting", "the page itself stays"
        await guard.aclose()
        await context.close()
    assert blocked == [BlockedNavigation(host=evil.host, main_frame=False)]
    assert evil.requests == []


async def test_meeting_page_sent_away_mid_call_ends_invalid_url(
    meeting: LocalMeeting, evil: Site, tmp_path: Path
) -> None:
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    config = scribe_config(meeting.url, out, server.url, max_duration=60, alone_timeout=120)
    vp = VirtualParticipant(config)
    task = await start_and_wait_joined(vp)
    assert vp.page is not None
    await vp.page.evaluate("u => { location.href = u; }", f"http://{evil.host}/stolen")
    result = await asyncio.wait_for(task, 30)
    await server.aclose()
    assert (result.final.status, result.final.reason) == (Status.FAILED, Reason.INVALID_URL)
    assert evil.requests == []
    assert [s["status"] for s in statuses(out)][-3:] == ["JOINED", "LEAVING", "FAILED"]
    assert server.all_events[-1]["callEvent"] == "END"


async def test_popups_are_blocked(allowed: Site, evil: Site) -> None:
    target = f"http://{evil.host}/popup"
    allowed.pages["/popup.html"] = (
        200,
        {},
        "<p id=main>meeting</p>"
        f"<a id=link href={target!r} target=_blank>open</a>"
        f"<form id=form action={target!r} target=other></form>"
        "<script>"
        f"window.result = String(window.open({target!r}));"
        "document.getElementById('link').click();"
        "document.getElementById('form').submit && "
        "document.getElementById('form').requestSubmit();"
        "</script>",
    )
    blocked: list[BlockedNavigation] = []
    guard = NavigationGuard(
        lambda url: url_allowed(url, (), frozenset({allowed.host})), blocked.append
    )
    async with BrowserHost() as host:
        context = await host.new_context()
        page = await context.new_page()
        await guard.protect(page)
        guard.watch_popups(context, page)
        await page.goto(f"http://{allowed.host}/popup.html", wait_until="load")
        await asyncio.sleep(1.0)
        assert await page.evaluate("window.result") == "null", "window.open opens nothing"
        assert await page.locator("#main").inner_text() == "meeting"
        assert context.pages == [page], "no popup window is left open"
        await guard.aclose()
        await context.close()
    assert evil.requests == [], "no popup reached the host off the allow-list"


async def test_cross_site_frames_are_guarded_on_their_own_navigations(
    allowed: Site, evil: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second allowed site, cross-site to the meeting page (localhost vs 127.0.0.1): its
    # frame runs out of process. Once loaded, it sends itself off the list.
    other = Site({})
    other_host = other.host.replace("127.0.0.1", "localhost")
    target = f"http://{evil.host}/framed"
    other.pages["/inner.html"] = (
        200,
        {},
        f"<p>inner</p><script>setTimeout(() => {{ location.href = {target!r}; }}, 700)</script>",
    )
    allowed.pages["/outer.html"] = (
        200,
        {},
        f"<p id=main>meeting</p><iframe src='http://{other_host}/inner.html'></iframe>",
    )
    blocked: list[BlockedNavigation] = []
    extra = frozenset({allowed.host, other_host})
    guard = NavigationGuard(lambda url: url_allowed(url, (), extra), blocked.append)
    try:
        # strict site isolation (desktop Chromium's default): the frame is its own target
        async with BrowserHost(extra_args=["--site-per-process"]) as host:
            context = await host.new_context()
            page = await context.new_page()
            await guard.protect(page)
            await page.goto(f"http://{allowed.host}/outer.html", wait_until="load")
            await asyncio.sleep(2.0)
            assert await page.locator("#main").inner_text() == "meeting"
            await guard.aclose()
            await context.close()
    finally:
        other.close()
    assert "/inner.html" in other.requests, "the cross-site frame loaded"
    assert evil.requests == [], "its own navigation off the list never left the browser"
    assert BlockedNavigation(host=evil.host, main_frame=False) in blocked
    assert blocked == [BlockedNavigation(host=evil.host, main_frame=False)]
