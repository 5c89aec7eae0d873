"""End to end: a VP joins the Amazon Chime replica (app.chime.aws/meetings/<id> → /anonymousJoin)
in headless Chromium, with the ChimeDriver written for the real web app — the Chime client's own
quirks (moderator passcode, grouped chat senders, one mixed <audio> element). The scenarios
every platform shares (speakers, chat, ends, refusals, lobby) run in tests/conformance.

The replica's meeting audio is real WebRTC: each participant's tone WAV is mixed in the page,
sent over a loopback RTCPeerConnection (Opus) and played through the one
<audio id="audio-speaker-element"> the Chime SDK binds; the VP must hear each speaker once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from platforms.replicas.server import (
    ChatLine,
    MeetingControl,
    ParticipantSpec,
    ReplicaServer,
    Scenario,
)
from tests.recording_server import RecordingServer
from tests.support import wait_until
from vp.config import JoinConfig
from vp.lifecycle import Reason, Status
from vp.runner import RunResult, VirtualParticipant
from vp.signal import DEFAULT_AMPLITUDE, count_sequence, decode

pytestmark = pytest.mark.integration

ALICE = ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5))
BOB = ParticipantSpec(name="Bob", symbols=(6, 2, 4, 0, 5, 1))
PASSCODE = "482913"  # a moderated meeting's moderator passcode
_ids = count(100)


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaServer]:
    server = ReplicaServer("chime").start()
    yield server
    server.stop()


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

    def chat(self, direction: str) -> list[tuple[str, str]]:
        path = self.out / "chat.jsonl"
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        return [(x["sender"], x["text"]) for x in lines if x["direction"] == direction]

    def ch0(self) -> np.ndarray:
        audio = np.frombuffer(self.server.audio_bytes, dtype="<i2").reshape(-1, 2)
        return audio[:, 0].astype(np.float64) / 32768


During = Callable[[VirtualParticipant, MeetingControl], Coroutine[Any, Any, None]]


async def run(
    replica: ReplicaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    vp_passcode: str | None = None,
    during: During | None = None,
    join_timeout: float = 20,
    max_duration: float = 30,
    alone_timeout: float = 120,
    **scenario: Any,
) -> Run:
    monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
    meeting_id = f"8123456{next(_ids):03d}"
    scenario.setdefault("participants", [ALICE, BOB])
    control = replica.add_meeting(Scenario(meeting_id=meeting_id, **scenario))
    recorder = await RecordingServer().start()
    out = tmp_path / "vp"
    vp = VirtualParticipant(
        JoinConfig(
            meeting_url=f"{replica.base_url}/meetings/{meeting_id}",
            platform="chime",
            name="Scribe",
            passcode=vp_passcode,
            transcriber_url=recorder.url,
            call_id="chime-replica",
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
        result = await asyncio.wait_for(task, max_duration + join_timeout + 30)
    finally:
        if not task.done():
            vp.stop()
            await asyncio.wait_for(task, 30)
        await recorder.aclose()
    return Run(result, out, recorder, control, time.monotonic() - started)


def windowed_rms(x: np.ndarray, n: int = 1600) -> np.ndarray:
    blocks = x[: x.size // n * n].reshape(-1, n)
    rms: np.ndarray = np.sqrt((blocks**2).mean(axis=1))
    return rms


# -- the happy path ------------------------------------------------------------------------
async def test_moderated_meeting_speakers_audio_and_chat(replica, tmp_path, monkeypatch):
    async def chat(vp: VirtualParticipant, control: MeetingControl) -> None:
        await asyncio.sleep(1.0)
        control.chat_from("Alice", "hello")
        await vp.post_chat("hi from the VP")
        await wait_until(lambda: any(s == "Alice" for s, _ in read_chat(vp.out_dir)))

    run_ = await run(
        replica,
        tmp_path,
        monkeypatch,
        passcode=PASSCODE,  # the meeting's moderator passcode…
        vp_passcode=PASSCODE,  # …which the VP was given
        during=chat,
        max_duration=13,
        speak_turn_s=3,
        chat=[
            ChatLine(at_s=0.5, sender="Bob", text="Bob was here"),
            ChatLine(at_s=0.7, sender="Bob", text="and here (grouped)"),
        ],
    )
    assert run_.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run_.statuses == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED"]
    states = run_.control.states
    assert states[:3] == ["prejoin", "moderator_passcode", "joined"] and states[-1] == "left"

    # Speakers: START names the first speaker, SPEAKER_CHANGE follows the turns in order.
    events = run_.server.all_events
    assert events[0]["callEvent"] == "START" and events[-1]["callEvent"] == "END"
    names = [events[0]["activeSpeaker"]] + [
        e["activeSpeaker"] for e in events if e["callEvent"] == "SPEAKER_CHANGE"
    ]
    assert names[:4] == ["Alice", "Bob", "Alice", "Bob"], names
    page_turns = [r["name"] for r in run_.control.reported("speaker")]
    assert names == page_turns[: len(names)]

    # Audio: each tone sequence intact on ch0, at one copy's level (a doubled mix would be
    # at twice the amplitude: RMS ≈ 0.49 instead of 0.35/√2 ≈ 0.25).
    ch0 = run_.ch0()
    decoded = decode((ch0 * 32768).astype(np.int16))
    assert count_sequence(decoded, ALICE.symbols) >= 1
    assert count_sequence(decoded, BOB.symbols) >= 1
    rms = windowed_rms(ch0)
    tone_rms = float(np.median(rms[rms > 0.05]))
    single = DEFAULT_AMPLITUDE / np.sqrt(2)
    assert 0.7 * single < tone_rms < 1.3 * single, f"tone RMS {tone_rms:.3f} vs {single:.3f}"
    assert float(np.abs(ch0).max()) < 1.5 * DEFAULT_AMPLITUDE, "not doubled"

    # Chat: incoming with senders (grouped follow-ups inherit theirs), own message skipped,
    # and the VP's message reached the page through the app's own submission path.
    incoming = run_.chat("in")
    assert ("Alice", "hello") in incoming
    assert ("Bob", "Bob was here") in incoming and ("Bob", "and here (grouped)") in incoming
    assert all(s not in ("Scribe", "Amazon Chime") for s, _ in incoming)
    assert len(incoming) == len(set(incoming))
    assert run_.control.vp_chat == ["hi from the VP"]
    assert run_.chat("out") == [("Scribe", "hi from the VP")]


def read_chat(out: Path) -> list[tuple[str, str]]:
    path = out / "chat.jsonl"
    if not path.exists():
        return []
    return [(x["sender"], x["text"]) for x in map(json.loads, path.read_text().splitlines())]


# -- refusals: Chime's own (the others are conformance scenarios) ----------------------------
async def test_wrong_moderator_passcode_is_refused_fast(replica, tmp_path, monkeypatch):
    run_ = await run(replica, tmp_path, monkeypatch, vp_passcode="000000", passcode=PASSCODE)
    assert run_.final == (Status.FAILED, Reason.WRONG_PASSCODE)
    assert "JOINED" not in run_.statuses
    assert run_.seconds < 15


# -- a meeting that goes on -----------------------------------------------------------------
async def test_transient_toasts_and_chat_texts_do_not_end_the_meeting(
    replica, tmp_path, monkeypatch
):
    """A reconnect toast that briefly unmounts the control bar, a participant-left toast, and
    end-like words in chat are not the end; the real end then is."""

    async def flicker(vp: VirtualParticipant, control: MeetingControl) -> None:
        await asyncio.sleep(1.0)
        control.command("toast", flicker_ms=1500)
        control.chat_from("Bob", "Your meeting has ended? You’ve been removed?")
        control.command("leave", name="Bob")
        await asyncio.sleep(5.0)
        assert vp.lifecycle.status is Status.JOINED
        assert vp.participants == ("Alice",)
        control.end()

    run_ = await run(replica, tmp_path, monkeypatch, during=flicker, max_duration=40)
    assert run_.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run_.seconds < 25
    assert ("Bob", "Your meeting has ended? You’ve been removed?") in run_.chat("in")


# -- the replica itself: the real client's quirks the driver has to live with ----------------
async def test_replica_reproduces_the_clients_quirks(replica, monkeypatch):
    from vp.browser import BrowserHost

    meeting_id = f"8123456{next(_ids):03d}"
    control = replica.add_meeting(Scenario(meeting_id=meeting_id, participants=[ALICE]))
    async with BrowserHost() as host:
        context = await host.new_context()
        page = await context.new_page()
        await page.goto(f"{replica.base_url}/meetings/{meeting_id}")
        # Guests are sent on to /anonymousJoin, which has no meeting id in its URL.
        await page.wait_for_url(lambda u: urlsplit(u).path == "/anonymousJoin", timeout=5000)
        name = page.locator("#name")
        await name.wait_for()
        join_now = page.locator('button:has-text("Join meeting now")')
        # A value set without key events leaves "Join meeting now" disabled (CHX presses a key).
        await name.fill("Bot")
        assert "Button--disabled" in (await join_now.get_attribute("class") or "")
        await name.press("1")
        assert "Button--enabled" in (await join_now.get_attribute("class") or "")
        await page.locator('button.Button--enabled:has-text("Join meeting now")').click()
        # Device setup: the cookie banner covers the Join button until it is answered.
        join = page.locator('button[data-testid="button"][aria-label="Join"]')
        await join.wait_for()
        await page.locator('button[data-id="awsccc-cb-btn-accept"]').wait_for()
        with pytest.raises(Exception, match="intercepts pointer events|Timeout"):
            await join.click(timeout=1500, trial=True)
        await page.locator('button[data-id="awsccc-cb-btn-accept"]').click()
        muted = page.locator('div[data-test-id="DeviceSetupJoinMutedCheckbox"] input')
        await muted.evaluate("(el) => el.click()")
        assert await muted.is_checked()
        assert await page.locator('button[data-test-id="DevicePreviewJoinBtn"]').count() == 1
        await join.click()
        await page.locator('nav[data-testid="control-bar"]').wait_for()
        assert await page.locator('button#audio[aria-label="Unmute my microphone"]').count() == 1
        # The chat toggle's label flips; the list exists only while the panel is open.
        assert await page.locator("._2B9DdDvc2PdUbvEGXfOU20").count() == 0
        await page.locator('button[aria-label^="Open chat panel"]').click()
        assert await page.locator('button[aria-label^="Close chat panel"]').count() == 1
        box = page.locator('textarea[placeholder="Message all attendees"]')
        # The app sends its own model, fed by input events: a bare DOM value is not sent.
        await box.evaluate("(el) => { el.value = 'ghost'; }")
        await box.press("Enter")
        await box.fill("real message")
        await box.press("Enter")
        await wait_until(lambda: bool(control.vp_chat), 5)
        await asyncio.sleep(0.3)
        assert control.vp_chat == ["real message"]
        bubbles = page.locator("._2B9DdDvc2PdUbvEGXfOU20 .chatBubbleContainer")
        assert await bubbles.last.locator("h3[data-testid='chat-bubble-sender-name']").count()
        assert await bubbles.last.locator(".Linkify").inner_text() == "real message"
        # One mixed stream on one <audio> element, carried by a remote WebRTC track.
        await wait_until_page(
            page,
            "() => { const el = document.getElementById('audio-speaker-element');"
            " return !!(el && el.srcObject && el.srcObject.getAudioTracks().length === 1"
            " && !el.paused); }",
        )
        assert await page.locator("audio").count() == 1
        speaker = page.locator(".activeSpeakerCell ._3yg3rB2Xb_sfSzRXkm8QT-")
        await wait_until_page(
            page,
            "() => document.querySelector('.activeSpeakerCell ._3yg3rB2Xb_sfSzRXkm8QT-')"
            ".textContent === 'Alice'",
        )
        assert await speaker.inner_text() == "Alice"
        await context.close()


async def wait_until_page(page: Any, js: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await page.evaluate(js):
        assert time.monotonic() < deadline, f"timed out: {js}"
        await asyncio.sleep(0.1)
