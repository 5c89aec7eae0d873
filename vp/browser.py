"""One headless Debian Chromium, hosting one isolated browser context per VP.

Playwright's own browser download cannot work here, so Chromium is always the system one,
reached through ``executable_path``. A :class:`BrowserHost` owns the Chromium process; each
VP gets a :class:`BrowserContext` of its own (cookies, permissions, init scripts), so one
Chromium can host several VPs without them seeing each other.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from vp.errors import ConfigError

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

# Why each flag:
#  media plays and devices are faked without prompts; no first-run UI;
#  the network here (and in a private subnet) is closed, so no background networking;
#  no GPU in a container; --lang pins English UI texts that selectors match.
BASE_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--lang=en-US",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
)


def find_chromium() -> str:
    """The system Chromium's path; ``VP_CHROMIUM`` overrides."""
    configured = os.environ.get("VP_CHROMIUM")
    if configured:
        return configured
    for candidate in CHROMIUM_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    raise ConfigError(
        "Chromium not found: install Debian's chromium (scripts/install-system-packages.sh) "
        "or set VP_CHROMIUM"
    )


@dataclass
class BrowserHost:
    """Owns one Playwright driver and one Chromium process.

    Use as ``async with BrowserHost() as host: ctx = await host.new_context()``.
    """

    extra_args: Sequence[str] = ()
    headless: bool = True
    _playwright: Playwright | None = field(default=None, init=False)
    _browser: Browser | None = field(default=None, init=False)

    async def start(self) -> None:
        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=find_chromium(),
                headless=self.headless,
                args=[*BASE_ARGS, *self.extra_args],
                # Playwright mutes audio by default; muted output would also silence capture.
                ignore_default_args=["--mute-audio"],
            )
        except BaseException:
            await self._playwright.stop()
            self._playwright = None
            raise

    @property
    def browser(self) -> Browser:
        if self._browser is None:
            raise RuntimeError("BrowserHost is not started")
        return self._browser

    @property
    def connected(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def new_context(self) -> BrowserContext:
        """A fresh, isolated context for one VP: media permissions granted, CSP bypassed so
        the capture script can load its AudioWorklet on any meeting page."""
        return await self.browser.new_context(
            permissions=["microphone", "camera"],
            bypass_csp=True,
            viewport={"width": 1280, "height": 720},
            locale="en-US",
        )

    async def aclose(self) -> None:
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        try:
            if browser is not None:
                await browser.close()
        except Exception:
            pass  # already gone: the process crashed or was killed
        finally:
            if playwright is not None:
                await playwright.stop()

    async def __aenter__(self) -> BrowserHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
