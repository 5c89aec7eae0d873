"""The driver toolkit's in-page wait (platforms.toolkit.page_change) in real Chromium: it
returns at the first DOM change, at its timeout when nothing changes, and when a navigation
replaces the document."""

from __future__ import annotations

import time

import pytest

from platforms.toolkit import page_change
from vp.browser import BrowserHost

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_page_change_returns_on_a_change_a_timeout_or_a_navigation() -> None:
    async with BrowserHost() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await page.set_content("<!doctype html><p id=state>waiting</p>")

        # A change 0.2 s in: back long before the 10 s timeout.
        set_state = "() => { document.querySelector('#state').textContent = 'in'; }"
        await page.evaluate(f"() => setTimeout({set_state}, 200)")
        started = time.monotonic()
        await page_change(page, 10.0)
        assert time.monotonic() - started < 5.0
        assert await page.inner_text("#state") == "in"

        # Nothing changes: back at the timeout, not before.
        started = time.monotonic()
        await page_change(page, 0.5)
        assert time.monotonic() - started >= 0.45

        # The document is replaced mid-wait: that counts as a change, and nothing is raised.
        await page.evaluate("() => setTimeout(() => { location.href = 'about:blank'; }, 200)")
        started = time.monotonic()
        await page_change(page, 10.0)
        assert time.monotonic() - started < 5.0
