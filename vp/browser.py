"""One headless Debian Chromium, hosting one isolated browser context per VP.

Playwright's own browser download cannot work here, so Chromium is always the system one,
reached through ``executable_path``. A :class:`BrowserHost` owns the Chromium process (and the
loopback :class:`~vp.capture.FrameServer` its pages send audio to); each VP gets a
:class:`BrowserContext` of its own (cookies, permissions, init scripts, and its own renderer
process), so one Chromium can host several VPs without them seeing each other.

Cost (measured by bench/, see README "Performance"): headless, the VP runs Debian's
``chromium-headless-shell`` when installed — the same engine without the desktop browser layer
(no UI renderer, no extensions system), about 70 MB less per Chromium — with the audio service
in the browser process and a smaller heap for Playwright's node driver.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from vp.capture import FrameServer
from vp.errors import ConfigError
from vp.settings import VpSettings

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# Debian's chromium-headless-shell; the binary itself (the /usr/bin wrapper only adds flags).
HEADLESS_SHELL_CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
)

# Playwright's own --disable-features list (playwright chromiumSwitches). Chromium keeps only
# the LAST --disable-features switch, so ours must repeat Playwright's to keep them.
_PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
)
_VP_DISABLED_FEATURES = (
    "Translate",
    "AutofillServerCommunication",
    "CertificateTransparencyComponentUpdater",
    "InterestFeedContentSuggestions",
    # The audio service runs in the browser process: one process (~10-20 MB PSS) fewer per
    # Chromium. Renderers stay separate processes (one per VP context).
    "AudioServiceOutOfProcess",
)

# Playwright's node driver: a smaller V8 heap (it holds protocol objects only). Measured:
# about 25 MB PSS less per driver, no CPU change.
DRIVER_NODE_OPTIONS = "--max-old-space-size=64 --max-semi-space-size=1"

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
    "--disable-features="
    + ",".join(dict.fromkeys((*_PLAYWRIGHT_DISABLED_FEATURES, *_VP_DISABLED_FEATURES))),
)


def _chromium_args() -> str | None:
    return VpSettings.from_env(only=frozenset({"chromium_args"})).chromium_args


def find_chromium(headless: bool = False) -> str:
    """The system Chromium's path; ``VP_CHROMIUM`` overrides. ``headless``: prefer Debian's
    chromium-headless-shell when installed (``VP_HEADLESS_SHELL=0`` opts out)."""
    settings = VpSettings.from_env(only=frozenset({"chromium", "headless_shell"}))
    if settings.chromium:
        return settings.chromium
    if headless and settings.headless_shell:
        for candidate in HEADLESS_SHELL_CANDIDATES:
            if os.access(candidate, os.X_OK):
                return candidate
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


async def _start_playwright() -> Playwright:
    """Start Playwright's node driver with :data:`DRIVER_NODE_OPTIONS` (it inherits our
    environment; an operator's own NODE_OPTIONS wins)."""
    if "NODE_OPTIONS" in os.environ:
        return await async_playwright().start()
    os.environ["NODE_OPTIONS"] = DRIVER_NODE_OPTIONS
    try:
        return await async_playwright().start()
    finally:
        os.environ.pop("NODE_OPTIONS", None)


@dataclass
class BrowserHost:
    """Owns one Playwright driver and one Chromium process.

    Use as ``async with BrowserHost() as host: ctx = await host.new_context()``.
    """

    extra_args: Sequence[str] = ()
    headless: bool = True
    _playwright: Playwright | None = field(default=None, init=False)
    _browser: Browser | None = field(default=None, init=False)
    frame_server: FrameServer | None = field(default=None, init=False)
    """Receives the capture frames of this Chromium's pages (see vp.capture)."""

    async def start(self) -> None:
        self._playwright = await _start_playwright()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=find_chromium(self.headless),
                headless=self.headless,
                # VP_CHROMIUM_ARGS: extra flags for experiments and operations (bench/).
                args=[
                    *BASE_ARGS,
                    *self.extra_args,
                    *(_chromium_args() or "").split(),
                ],
                # Playwright mutes audio by default; the VP's output is never heard anyway, but
                # keep it unmuted so nothing in the page can tell it is muted.
                ignore_default_args=["--mute-audio"],
            )
            self.frame_server = FrameServer()
            await self.frame_server.start()
        except BaseException:
            await self.aclose()
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
        server, self.frame_server = self.frame_server, None
        if server is not None:
            await server.aclose()
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
