"""Killing a BrowserHost's Chromium for fault tests (SIGKILL to its browser process)."""

from __future__ import annotations

import os
import signal

from vp.browser import BrowserHost


async def kill_chromium(host: BrowserHost) -> int:
    """SIGKILL the browser process of ``host`` (found over CDP); returns its pid."""
    session = await host.browser.new_browser_cdp_session()
    info = await session.send("SystemInfo.getProcessInfo")
    (browser_pid,) = [p["id"] for p in info["processInfo"] if p["type"] == "browser"]
    os.kill(browser_pid, signal.SIGKILL)
    return int(browser_pid)
