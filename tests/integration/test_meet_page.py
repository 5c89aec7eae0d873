"""The Meet driver's page script against hand-made pages: the join button by each of its
texts in the facts (never a button with an aria-label such as the 3-dot menu, never a
dialog's "Join now"), the toggles' aria-label states, admission markers (the effects tile is
not a participant), and the notice answered by its own "Join now" even under another
dialog. One browser, static pages (the full flows run in tests/conformance)."""

from __future__ import annotations

from typing import Any

import pytest

from platforms.meet.driver import MeetDriver
from vp.browser import BrowserHost

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

JOIN_TEXTS = [
    "Ask to join",
    "Ask to join anyway",
    "Join now",
    "Join the call now",
    "Join anyway",
    "Join here too",
    "Switch here",
]
TRAP = '<button aria-label="More options"><span>Join now</span></button>'


async def snapshot(page: Any, html: str) -> dict[str, Any]:
    await page.set_content(f"<!doctype html><html><body>{html}</body></html>")
    return dict(await page.evaluate(MeetDriver.script.fn("snapshot")))


async def test_page_script_reads_what_the_facts_say() -> None:
    async with BrowserHost() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        for text in JOIN_TEXTS:
            snap = await snapshot(
                page, f'{TRAP}<button jsname="Qx7uuf"><span>{text}</span></button>'
            )
            assert snap["join"] == text
        snap = await snapshot(
            page,
            TRAP + '<div role="dialog" aria-modal="true"><p>This call is being recorded</p>'
            '<button><span>Leave</span></button><button data-mdc-dialog-action="ok">'
            "<span>Join now</span></button></div>",
        )
        assert snap["join"] is None, "the notice's Join now is not the join button"
        assert snap["dialog"] == {"kind": "notice", "label": "Join now"}
        snap = await snapshot(
            page,
            '<div role="button" aria-label="Turn off microphone"></div>'
            '<div role="button" aria-label="Turn on camera"></div>'
            '<input type="text" aria-label="Your name" value="Scribe">'
            '<div data-participant-id="visual_effects" aria-label="Backgrounds and effects">'
            '<span class="notranslate">Backgrounds and effects</span></div>'
            '<button aria-label="Leave call">x</button>',
        )
        assert (snap["mic"], snap["camera"]) == (True, False)
        assert snap["name"] == {"value": "Scribe"}
        assert snap["tiles"] == 0 and snap["leaveCall"] and not snap["captions"]
        snap = await snapshot(
            page,
            '<div data-participant-id="spaces/x/devices/1"><div class="IisKdb Oaajhc"></div>'
            '<span class="notranslate">Alice</span></div>'
            '<div data-participant-id="spaces/x/devices/0" data-self-name="Scribe">'
            '<span class="notranslate">Scribe</span></div>'
            '<span data-avatar-count="2"></span>'
            '<iframe title="reCAPTCHA" width="1" height="1" src="about:blank#recaptcha"></iframe>',
        )
        assert snap["tiles"] == 2 and snap["selfName"] == "Scribe"
        assert snap["names"] == ["Alice"] and snap["speaker"] == "Alice" and snap["count"] == 2
        assert snap["captcha"] is False, "the invisible reCAPTCHA frame is on every join"
        # The older participant count (screenapp#40), and the People panel's list when open.
        snap = await snapshot(
            page,
            '<button aria-label="People - 4 joined"></button>'
            '<div aria-label="Participants" role="list">'
            '<div role="listitem" aria-label="Alice"></div>'
            '<div role="listitem" aria-label="Bob"></div></div>',
        )
        assert snap["count"] == 4 and snap["roster"] == ["Alice", "Bob"]
        # Two dialogs: the later one is on top and is answered first.
        await snapshot(
            page,
            '<div style="position:fixed;inset:0;background:#fff" role="dialog">'
            "<p>Others may see your video differently</p><button>Got it</button></div>"
            '<div style="position:fixed;inset:0;background:#fff" role="dialog">'
            "<p>Gemini is taking notes</p><button>Leave</button><button>Join now</button></div>",
        )
        point = await page.evaluate(MeetDriver.script.fn("point"), "dialog")
        assert point is not None and point["label"] == "Join now"
        await context.close()
