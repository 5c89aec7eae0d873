"""The navigation guard: the SSRF allow-list enforced on every navigation, not only up front.

The meeting URL is checked before any browser starts (``platforms.registry.resolve``), but the
page it opens can still send the browser elsewhere: an HTTP redirect, ``location = …``, a
frame, a popup. The guard intercepts every **document** request of a VP's pages (main frame,
frames, each redirect hop) through the DevTools ``Fetch`` domain, before the request leaves
the browser, and fails the ones whose URL is off the allow-list (``net::ERR_BLOCKED_BY_CLIENT``):
nothing reaches the other host.

Why only documents: an off-list document is "browsing to" another host (the SSRF the contract
forbids); subresources (scripts, images, XHR, WebSockets) are what the platform's own page
loads from its CDNs, which no host list can enumerate, and intercepting them would put a
Python round trip on every request of the page. Audio never goes through here (WebRTC).

Why not Playwright's ``route``: its handler sees only the first URL of a redirect chain, so a
302 to another host would pass. ``Fetch.requestPaused`` is raised for every hop.

Cross-site frames: Chromium runs them in their own process (a separate DevTools target),
whose later navigations the page's ``Fetch`` does not see. The guard attaches to every such
frame as it appears or navigates (``frameattached``/``framenavigated``; Playwright gives an
out-of-process frame its own CDP session) and intercepts its documents the same way.
Chromium's initial request for such a frame comes from the parent and is guarded there.

Popups are blocked, not guarded: a script in every frame of the meeting page (installed
before the page's own scripts) makes ``window.open`` return ``null`` and cancels clicks and
form submissions that would open another window; a popup that appears anyway is closed at
once (and its document requests intercepted while it lives).

Policy: a blocked main-frame navigation ends the VP (FAILED invalid-url: the meeting page is
gone); a blocked frame or popup document is only logged and counted (the meeting page stays).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from playwright.async_api import BrowserContext, CDPSession, Frame, Page
from playwright.async_api import Error as PlaywrightError

from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

# Schemes whose documents are not fetched from any host.
_LOCAL_SCHEMES = frozenset({"about", "blob", "data"})
_PATTERNS = [{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]
# Runs in every frame before the page's scripts: no window.open, no link or form that opens
# another window (``target=_blank`` or a named window, also through ``<base target>``).
POPUP_BLOCKER_JS = Path(__file__).with_name("popup_blocker.js").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class BlockedNavigation:
    """A document request the guard failed."""

    host: str  # host[:port] (or the scheme, for non-http URLs): never the path or query
    main_frame: bool


def _where(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host or f"{parts.scheme}:"
    except ValueError:
        return "<malformed url>"


class NavigationGuard:
    """Guards the pages of one VP's browser context. Call :meth:`protect` on each page before
    its first navigation; :meth:`aclose` when the context goes."""

    def __init__(
        self,
        allows: Callable[[str], bool],
        on_blocked: Callable[[BlockedNavigation], None],
    ) -> None:
        self._allows = allows
        self._on_blocked = on_blocked
        self._owner = TaskOwner()
        self._sessions: list[CDPSession] = []
        self._targets: set[str] = set()  # out-of-process frames already guarded
        self.blocked: list[BlockedNavigation] = []
        self.popups_closed = 0
        self.frames_guarded = 0
        self.checked = 0

    def watch_popups(self, context: BrowserContext, main: Page) -> None:
        """Close every page other than ``main`` that appears in ``context`` (popups are
        blocked in the page already; this catches any that get through), guarding its
        documents while it lives."""

        def on_page(page: Page) -> None:
            if page is not main:
                self._owner.spawn(self._close_popup(page), "navguard-popup")

        context.on("page", on_page)

    async def _close_popup(self, page: Page) -> None:
        try:
            await self.protect(page, main=False)
        except PlaywrightError:
            pass  # the popup closed first
        self.popups_closed += 1
        log.warning("navigation.popup_closed")
        try:
            await page.close()
        except PlaywrightError:
            pass

    async def protect(self, page: Page, *, main: bool = True) -> None:
        """Intercept the document requests of ``page`` (and of its cross-site frames) from
        now on; for the main page, block popups too."""
        if main:
            await page.add_init_script(POPUP_BLOCKER_JS)
        session = await page.context.new_cdp_session(page)
        self._sessions.append(session)
        tree = await session.send("Page.getFrameTree")
        main_frame = tree["frameTree"]["frame"]["id"]
        await self._intercept(session, main_frame if main else None)

        def on_frame(frame: Frame) -> None:
            if frame.parent_frame is not None:
                self._owner.spawn(self._protect_frame(page, frame), "navguard-frame")

        page.on("frameattached", on_frame)
        page.on("framenavigated", on_frame)

    async def _protect_frame(self, page: Page, frame: Frame) -> None:
        """Guard ``frame`` on its own if it runs out of process (a cross-site frame)."""
        try:
            session = await page.context.new_cdp_session(frame)
        except PlaywrightError:
            return  # same-process frame: the page's interception covers it
        try:
            info = await session.send("Target.getTargetInfo")
            target = str(info["targetInfo"]["targetId"])
            if target in self._targets:
                await session.detach()
                return
            self._targets.add(target)
            self._sessions.append(session)
            await self._intercept(session, None)
            self.frames_guarded += 1
        except PlaywrightError:
            pass  # the frame went away meanwhile

    async def _intercept(self, session: CDPSession, main_frame: str | None) -> None:
        """Fail every off-list document request ``session`` sees; ``main_frame`` is the id
        of the frame whose loss ends the VP (None: a frame or popup session)."""

        def paused(event: dict[str, Any]) -> None:
            request_id = event["requestId"]
            url = str(event.get("request", {}).get("url", ""))
            self.checked += 1
            if self._permitted(url):
                self._owner.spawn(
                    self._send(session, "Fetch.continueRequest", {"requestId": request_id}),
                    "navguard-continue",
                )
                return
            blocked = BlockedNavigation(
                host=_where(url),
                main_frame=main_frame is not None and event.get("frameId") == main_frame,
            )
            self.blocked.append(blocked)
            log.warning("navigation.blocked", host=blocked.host, main_frame=blocked.main_frame)
            # Report first, so the VP already knows why when the page's navigation fails.
            self._on_blocked(blocked)
            self._owner.spawn(
                self._send(
                    session,
                    "Fetch.failRequest",
                    {"requestId": request_id, "errorReason": "BlockedByClient"},
                ),
                "navguard-fail",
            )

        session.on("Fetch.requestPaused", paused)
        await session.send("Fetch.enable", {"patterns": _PATTERNS})

    def _permitted(self, url: str) -> bool:
        scheme = url.partition(":")[0].lower()
        if scheme in _LOCAL_SCHEMES:
            return True
        return self._allows(url)

    @staticmethod
    async def _send(session: CDPSession, method: str, params: dict[str, Any]) -> None:
        try:
            await session.send(method, params)
        except PlaywrightError:
            pass  # the page or its request is gone: nothing left to let through

    async def aclose(self) -> None:
        await self._owner.aclose()
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            try:
                await asyncio.wait_for(session.detach(), 2)
            except (PlaywrightError, TimeoutError):
                pass  # already detached with its page
