"""End to end: a VP joins the Zoom web-client replica in headless Chromium — the Zoom client's
own quirks. The scenarios every platform shares (speakers, chat, ends, refusals, lobby,
passcodes) run in tests/conformance.

The replica (platforms/replicas/zoom) reproduces the real client's URLs, DOM, texts, timing
quirks and audio plumbing (remote WebRTC tracks played through WebAudio, only after computer
audio is joined); each test registers a Scenario and drives it through its MeetingControl,
while a real LMA-protocol WebSocket server records what the VP streams.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platforms.replicas.server import (
    MeetingControl,
    ParticipantSpec,
    ReplicaServer,
    Scenario,
)
from tests.recording_server import RecordingServer
from vp.config import JoinConfig
from vp.lifecycle import Reason, Status
from vp.runner import RunResult, VirtualParticipant
from vp.signal import count_sequence, decode

pytestmark = pytest.mark.integration

ALICE = ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5))
BOB = ParticipantSpec(name="Bob", symbols=(6, 2, 4, 0, 5, 1))
PASSCODE = "482913"
_ids = iter(range(100, 1000))


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaServer]:
    with ReplicaServer("zoom") as server:
        yield server


@dataclass
class Run:
    result: RunResult
    out: Path
    server: RecordingServer
    control: MeetingControl
    seconds: float

    @property
    def final(self) -> tuple[Status, Reason | None]:
        return self.result.final.status, self.result.final.reason

    @property
    def statuses(self) -> list[str]:
        lines = (self.out / "status.jsonl").read_text().splitlines()
        return [json.loads(line)["status"] for line in lines]

    def ch0(self) -> np.ndarray:
        return np.frombuffer(self.server.audio_bytes, dtype="<i2").reshape(-1, 2)[:, 0].copy()


During = Callable[[VirtualParticipant, MeetingControl], Awaitable[None]]


async def run_vp(
    replica: ReplicaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    path: str = "/wc/{id}/join",
    url_pwd: str | None = PASSCODE,
    vp_passcode: str | None = None,
    participants: tuple[ParticipantSpec, ...] = (ALICE, BOB),
    during: During | None = None,
    max_duration: float | None = 30,
    join_timeout: float = 30,
    alone_timeout: float = 120,
    query: str = "",
    **scenario: Any,
) -> Run:
    monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
    meeting_id = f"85012345{next(_ids)}"
    control = replica.add_meeting(
        Scenario(
            meeting_id=meeting_id,
            passcode=scenario.pop("passcode", PASSCODE),
            participants=list(participants),
            **scenario,
        )
    )
    params = [f"pwd={url_pwd}"] if url_pwd else []
    if query:
        params.append(query)
    url = replica.base_url + path.format(id=meeting_id) + ("?" + "&".join(params) if params else "")
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(
        JoinConfig(
            meeting_url=url,
            platform="zoom",
            name="Scribe",
            passcode=vp_passcode,
            transcriber_url=server.url,
            out_dir=out,
            max_duration=max_duration,
            join_timeout=join_timeout,
            alone_timeout=alone_timeout,
            intro_message="",
            exit_message="",
        )
    )
    started = time.monotonic()
    task = asyncio.create_task(vp.run())
    try:
        if during is not None:
            joined = asyncio.create_task(vp.joined_event.wait())
            await asyncio.wait({task, joined}, return_when=asyncio.FIRST_COMPLETED)
            joined.cancel()
            if not task.done():
                await during(vp, control)
        result = await asyncio.wait_for(task, (max_duration or 0) + join_timeout + 30)
    finally:
        if not task.done():
            vp.stop()
            await asyncio.wait_for(task, 30)
        await server.aclose()
    return Run(result, out, server, control, time.monotonic() - started)


async def test_waiting_room_then_admitted_and_host_ends(replica, tmp_path, monkeypatch):
    """The waiting room (inside .meeting-app) is reported before admission; the client does not
    join computer audio by itself here, so the driver must click Join Audio for any sound."""
    run = await run_vp(
        replica,
        tmp_path,
        monkeypatch,
        participants=(ALICE,),
        waiting_room_s=3,
        end_after_s=6,
        query="__replica_audio=manual",
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.statuses == [
        "INITIALIZING",
        "JOINING",
        "WAITING_ROOM",
        "JOINED",
        "LEAVING",
        "COMPLETED",
    ]
    assert run.control.states == ["prejoin", "lobby", "joined", "ended"]
    assert count_sequence(decode(run.ch0()), ALICE.symbols) >= 1, "computer audio was joined"
    assert run.server.all_events[-1]["callEvent"] == "END"


async def test_landing_page_classic_client_and_passcode_retry(replica, tmp_path, monkeypatch):
    """/j/<id> landing → "Join from your browser" → classic client (terms, #inputname, #joinBtn);
    the URL's pwd is wrong, the configured passcode is right: one retry, then in."""

    async def end(_vp: VirtualParticipant, control: MeetingControl) -> None:
        await asyncio.sleep(2)
        control.end()

    run = await run_vp(
        replica,
        tmp_path,
        monkeypatch,
        path="/j/{id}",
        url_pwd="111111",
        vp_passcode=PASSCODE,
        participants=(ALICE,),
        during=end,
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.control.states == ["prejoin", "wrong_passcode", "joined", "ended"]
    assert run.seconds < 25


async def test_transient_toasts_and_flicker_do_not_end_the_meeting(replica, tmp_path, monkeypatch):
    """Removal-like toast texts (role=alert) and the meeting client unmounting for 2.5 s (a
    reconnect: Leave button and footer gone) last over two polls, yet the VP stays."""

    async def glitches(_vp: VirtualParticipant, control: MeetingControl) -> None:
        await asyncio.sleep(1)
        control.command("toast", text="Bob has been removed from the meeting", ms=2500)
        await asyncio.sleep(3)
        control.command("flicker", ms=2500)
        await asyncio.sleep(3)
        control.command("toast", text="The meeting has ended for Bob’s breakout room", ms=2500)

    run = await run_vp(
        replica, tmp_path, monkeypatch, participants=(ALICE,), during=glitches, max_duration=12
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run.control.states == ["prejoin", "joined", "left"]


async def test_captcha_on_the_classic_client(replica, tmp_path, monkeypatch):
    """The classic client's bot wall (a reCAPTCHA frame) fails fast; the React client's is a
    conformance scenario."""
    run = await run_vp(replica, tmp_path, monkeypatch, captcha=True, path="/wc/join/{id}")
    assert run.final == (Status.FAILED, Reason.CAPTCHA)
    assert "JOINED" not in run.statuses and "WAITING_ROOM" not in run.statuses
    assert run.seconds < 20


# Counts remote tracks the page's RTCPeerConnections receive (installed before page scripts).
_TRACK_PROBE = """
(() => {
  window.__remoteTracks = 0;
  const Orig = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Orig(...args);
    pc.addEventListener('track', () => { window.__remoteTracks += 1; });
    return pc;
  };
  window.RTCPeerConnection.prototype = Orig.prototype;
})();
"""


async def test_replica_reproduces_the_real_client_quirks(replica):
    """Driven by hand (no VP): the quirks the driver must cope with are really there."""
    from vp.browser import BrowserHost

    meeting_id = f"85012345{next(_ids)}"
    control = replica.add_meeting(
        Scenario(meeting_id=meeting_id, passcode=PASSCODE, participants=[ALICE])
    )
    async with BrowserHost() as host:
        context = await host.new_context()
        await context.add_init_script(_TRACK_PROBE)
        page = await context.new_page()
        await page.goto(
            f"{replica.base_url}/wc/{meeting_id}/join?pwd={PASSCODE}&__replica_audio=manual"
        )
        # OneTrust banner covers the form; the permission portal comes twice when declined.
        await page.locator("#onetrust-accept-btn-handler").click()
        skip = page.get_by_role("button", name="Continue without microphone and camera")
        await skip.click()
        await skip.click()
        assert await skip.count() == 0
        join = page.locator("button.preview-join-button")
        # A synthetic value (Playwright fill = insertText, no key events) leaves Join disabled.
        await page.locator("#input-for-name").fill("Scribe")
        assert "disabled" in (await join.get_attribute("class") or "")
        await page.locator("#input-for-name").fill("")
        await page.locator("#input-for-name").press_sequentially("Scribe")
        assert "disabled" not in (await join.get_attribute("class") or "")
        assert await page.locator("#preview-audio-control-button").get_attribute("aria-label") in (
            "Mute",
            "Unmute",
        )
        await join.click()
        leave = page.locator('button[aria-label="Leave"]')
        await leave.wait_for(state="attached")
        assert control.states == ["prejoin", "joined"]
        name = page.locator(
            ".speaker-active-container__video-frame .video-avatar__avatar-footer span"
        )
        assert await name.inner_text() == "Alice"

        # No sound before computer audio is joined; then one remote track, no <audio> in the DOM.
        await page.wait_for_timeout(1000)
        assert await page.evaluate("window.__remoteTracks") == 0
        # A popup's mask intercepts pointer events until dismissed.
        await page.get_by_role("button", name="Got it").click()
        audio = page.locator("button.join-audio-container__btn")
        assert await audio.get_attribute("aria-label") == "join audio"
        await page.mouse.move(300, 300)  # the footer auto-hides while the mouse is idle
        await audio.click()
        await page.get_by_role("button", name="Join Audio by Computer").click()
        await page.wait_for_function("window.__remoteTracks >= 1")
        assert await page.locator("audio").count() == 0
        assert await audio.get_attribute("aria-label") == "unmute my microphone"

        # The chat toggle's label flips; the editor takes execCommand insertText; Enter sends.
        await page.locator('button[aria-label="open the chat panel"]').click()
        assert await page.locator('button[aria-label="close the chat panel"]').count() == 1
        editor = page.locator('.chat-rtf-box__editor-outer [contenteditable="true"]')
        await editor.evaluate(
            "e => { e.focus(); document.execCommand('insertText', false, 'yo'); }"
        )
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            "() => document.querySelector('[aria-label=\"Chat Message List\"] [role=row]')"
        )
        row = page.locator('[aria-label="Chat Message List"] [role="row"]').first
        assert (await row.get_attribute("aria-label") or "").startswith("You to Everyone, ")
        for _ in range(20):
            if control.vp_chat:
                break
            await page.wait_for_timeout(100)
        assert control.vp_chat == ["yo"]

        # A reconnect unmounts the client (Leave button gone) and brings it back.
        control.command("flicker", ms=1500)
        await leave.wait_for(state="detached")
        await leave.wait_for(state="attached", timeout=5000)

        # Enter cancels the leave popover; the danger button leaves.
        await page.mouse.move(310, 310)
        await leave.click()
        danger = page.locator("button.leave-meeting-options__btn--danger")
        await danger.focus()
        await page.keyboard.press("Enter")
        await danger.wait_for(state="detached")
        await leave.click()
        await danger.click()
        await page.wait_for_url("**/wc/leave**")
        assert control.states == ["prejoin", "joined", "left"]
        await context.close()
