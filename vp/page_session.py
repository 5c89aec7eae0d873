"""The meeting page of one VP and its recovery.

:class:`PageSession` owns the VP's Chromium (its own, or a pool's shared one), and for each
page a browser context, the audio capture installed in it, the navigation guard, the page
and its platform driver. It watches the page: a crash, Chromium exiting, or a hung page
(seen by a watchdog) while JOINED is answered by ONE relaunch and rejoin within
``rejoin_timeout`` (README "Faults survived"); the lifecycle stays JOINED, and the audio gap
is measured by :class:`~vp.audio_health.AudioHealth`. Anything else ends the call
``browser-crashed``. Every document the pages load is checked against the allow-list
(vp.navguard).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from platforms.base import DriverEvent, DriverSettings, PlatformDriver
from platforms.registry import ResolvedMeeting
from vp import log as vplog
from vp.audio_health import AudioHealth
from vp.browser import BrowserHost
from vp.call_end import CallEnd
from vp.capture import AudioCapture, CaptureFrame
from vp.config import JoinConfig
from vp.errors import BrowserCrashed, VpError
from vp.incoming_video import install_incoming_video
from vp.lifecycle import Reason
from vp.navguard import BlockedNavigation, NavigationGuard
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

HANG_CHECK_EVERY = 5.0  # the page watchdog's period (its timeout is config.hang_timeout)
MAX_REJOINS = 1
BrowserProvider = Callable[[], Awaitable[BrowserHost]]


class PageSession:
    """The browser side of one call: open the page, join, watch, recover, close.

    ``in_call()`` says whether the VP is JOINED (only then is a lost page rejoined).
    """

    def __init__(
        self,
        config: JoinConfig,
        meeting: ResolvedMeeting,
        *,
        owner: TaskOwner,
        end: CallEnd,
        audio: AudioHealth,
        in_call: Callable[[], bool],
        on_frame: Callable[[CaptureFrame], None],
        on_driver_event: Callable[[DriverEvent], None],
        shared_browser: BrowserHost | None = None,
        browser_provider: BrowserProvider | None = None,
    ) -> None:
        self.config = config
        self.meeting = meeting
        self._owner = owner
        self._end = end
        self._audio = audio
        self._in_call = in_call
        self._on_frame = on_frame
        self._on_driver_event = on_driver_event
        self._shared_browser = shared_browser
        self._browser_provider = browser_provider
        self.browser: BrowserHost | None = None
        self.page: Page | None = None
        self.driver: PlatformDriver | None = None
        self.capture: AudioCapture | None = None
        self._context: BrowserContext | None = None
        self._guard: NavigationGuard | None = None
        # A generation per page, so events of a discarded page (its crash, its Chromium's
        # exit) are ignored.
        self.generation = 0
        self._on_disconnected: Callable[[Any], None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._rejoins_left = MAX_REJOINS
        self.rejoins: list[dict[str, Any]] = []
        self.blocked: list[BlockedNavigation] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None

    # -- opening -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start (or adopt the shared) Chromium and open the meeting page."""
        if self._shared_browser is not None:
            self.browser = self._shared_browser
        else:
            self.browser = BrowserHost()
            await self.browser.start()
        await self._open_page()

    async def _open_page(self) -> None:
        """A fresh context, capture, navigation guard, page and driver (also for a rejoin)."""
        assert self.browser is not None
        cfg, meeting = self.config, self.meeting
        self.generation += 1
        generation = self.generation
        self._context = await self.browser.new_context()
        self.capture = AudioCapture(
            on_frame=self._on_frame,
            track_filter_js=meeting.driver.capture_track_filter_js,
            all_frames=meeting.driver.capture_all_frames,
            frame_server=self.browser.frame_server,
        )
        # The meeting's origin may open the capture WebSocket to 127.0.0.1 (see vp.capture).
        await self.capture.install(self._context, origins=[meeting.url])
        # The VP records audio only: the driver's way of not receiving the meeting's video.
        video = await install_incoming_video(self._context, meeting.driver.incoming_video)
        log.debug("incoming_video.installed", mode=video)
        self.page = await self._context.new_page()
        self._guard = NavigationGuard(meeting.allows, self._on_navigation_blocked)
        await self._guard.protect(self.page)
        self._guard.watch_popups(self._context, self.page)
        self.page.on("crash", lambda _page: self.lost(generation, "the meeting page crashed"))
        # Removed again in _discard_page: a shared (pool) browser outlives this VP.
        self._on_disconnected = lambda _b: self.lost(generation, "Chromium exited")
        self.browser.browser.on("disconnected", self._on_disconnected)
        settings = DriverSettings(
            name=cfg.name,
            passcode=cfg.passcode.get_secret_value() if cfg.passcode else None,
            join_timeout=cfg.join_timeout,
            alone_timeout=cfg.alone_timeout,
        )
        self.driver = meeting.driver(self.page, settings, self._on_driver_event)
        self._watchdog_task = self._owner.spawn(
            self._page_watchdog(generation, self.page), "page-watchdog"
        )

    async def join(self) -> bool:
        """Join through the driver (bounded and raced by the caller)."""
        assert self.driver is not None
        await self.driver.join(self.meeting.url)
        return True

    async def join_call(self, timeout: float, waiting: Callable[[], bool]) -> bool:
        """The first join, within ``timeout`` s and raced against the call's end. False when
        the VP must end instead; not admitted in time concludes ``waiting-room-timeout``
        (``waiting()``: whether the VP is in the waiting room, for the detail)."""
        try:
            joined = await self._end.race(asyncio.wait_for(self.join(), timeout), "join")
        except TimeoutError:
            where = " in the waiting room" if waiting() else ""
            self._end.conclude(
                Reason.WAITING_ROOM_TIMEOUT, f"not admitted{where} within {timeout:.0f} s"
            )
            return False
        except PlaywrightError as exc:
            if not self._end.done:
                raise VpError(f"join failed: {first_line(exc)}") from exc
            return False
        return joined is not None

    def watch(self) -> None:
        """Follow the meeting through the driver until it says the call is over."""
        self._watch_task = self._owner.spawn(self._watch(self.generation), "driver-watch")

    async def _watch(self, generation: int) -> None:
        assert self.driver is not None
        try:
            over = await self.driver.watch()
        except PlaywrightError as exc:
            self.lost(generation, f"the meeting page failed: {first_line(exc)}")
        except VpError as exc:
            self._end.conclude(exc.reason, exc.detail)
        else:
            self._end.conclude(over.reason, over.detail)

    def _on_navigation_blocked(self, blocked: BlockedNavigation) -> None:
        self.blocked.append(blocked)
        if blocked.main_frame:  # the meeting page would be gone: end (frames only log)
            self._end.conclude(
                Reason.INVALID_URL,
                f"the meeting page tried to open {blocked.host}, which is not allowed",
            )

    async def _page_watchdog(self, generation: int, page: Page) -> None:
        """A hung page (a script that never yields) answers no evaluate: one trivial
        evaluate every HANG_CHECK_EVERY s must return within config.hang_timeout."""
        timeout = self.config.hang_timeout
        while True:
            await asyncio.sleep(HANG_CHECK_EVERY)
            try:
                await asyncio.wait_for(page.evaluate("1"), timeout)
            except TimeoutError:
                self.lost(generation, f"the meeting page hung (no answer in {timeout:g} s)")
                return
            except PlaywrightError:
                if page.is_closed():
                    self.lost(generation, "the meeting page closed")
                    return
                # else: a navigation replaced the document mid-call; ask again next period

    # -- recovery ------------------------------------------------------------------------
    def lost(self, generation: int, cause: str) -> None:
        """The page or Chromium of ``generation`` died or hung: rejoin once if in the call."""
        if generation != self.generation or not self._end.armed:
            return  # a page already discarded
        if self._end.done or (self._recovery is not None and not self._recovery.done()):
            return
        if not self._in_call():
            self._end.conclude(Reason.BROWSER_CRASHED, cause)
        elif self._rejoins_left <= 0:
            self._end.conclude(Reason.BROWSER_CRASHED, f"{cause} again after a rejoin")
        else:
            self._rejoins_left -= 1
            self._recovery = self._owner.spawn(self._recover(cause), "rejoin")

    async def _recover(self, cause: str) -> None:
        """Discard the page (and a dead Chromium), open a new one and rejoin, once."""
        lost_at = time.monotonic()
        log.warning("vp.browser_lost", cause=cause, action="rejoin")
        self._audio.interrupted()
        for task in (self._watch_task, self._watchdog_task):
            if task is not None:
                task.cancel()
        if self.capture is not None:
            self.capture.stop()
        timeout = self.config.rejoin_timeout
        try:
            await self._discard_page()
            await self._ensure_browser()
            await self._open_page()
            joined = await self._end.race(asyncio.wait_for(self.join(), timeout), "rejoin-join")
        except TimeoutError:
            self._end.conclude(Reason.BROWSER_CRASHED, f"{cause}; no rejoin within {timeout:g} s")
            return
        except Exception as exc:  # Playwright, the driver's JoinError, a failed relaunch…
            self._end.conclude(
                Reason.BROWSER_CRASHED, f"{cause}; the rejoin failed: {first_line(exc)}"
            )
            return
        if joined is None:
            return  # the VP is ending anyway
        assert self.capture is not None
        self.capture.start()
        self.watch()
        took = round(time.monotonic() - lost_at, 3)
        self.rejoins.append({"cause": cause, "rejoin_s": took})
        log.info("vp.rejoined", cause=cause, rejoin_s=took)

    async def _ensure_browser(self) -> None:
        """A connected Chromium: the same one, the pool's replacement, or a relaunch."""
        assert self.browser is not None
        if self.browser.connected:
            return
        if self.browser is self._shared_browser:
            if self._browser_provider is None:
                raise BrowserCrashed("the shared Chromium exited")
            # One fresh Chromium for every VP that was in the dead one.
            self.browser = self._shared_browser = await self._browser_provider()
            if not self.browser.connected:
                raise BrowserCrashed("the shared Chromium exited")
        else:
            await self.browser.aclose()
            self.browser = BrowserHost()
            await self.browser.start()

    async def cancel_recovery(self) -> None:
        """Stop a rejoin in progress (the call is ending)."""
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recovery

    # -- closing -------------------------------------------------------------------------
    async def _discard_page(self) -> None:
        """Close the current page's guard and context (bounded: the page may hang)."""
        guard, self._guard = self._guard, None
        context, self._context = self._context, None
        listener, self._on_disconnected = self._on_disconnected, None
        if listener is not None and self.browser is not None and self.browser.connected:
            self.browser.browser.remove_listener("disconnected", listener)
        if guard is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(guard.aclose(), 5)
        if context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.close(), 5)

    async def close(self) -> None:
        """Close the page, and Chromium unless it is shared."""
        await self._discard_page()
        if self.browser is not None and self.browser is not self._shared_browser:
            await self.browser.aclose()


def first_line(exc: BaseException) -> str:
    """The first line of an error, scrubbed of secrets, for a status detail."""
    text = str(exc).strip().splitlines()
    return vplog.scrub(text[0][:200]) if text else type(exc).__name__
