"""One set of meeting scenarios, run over every platform driver.

Each scenario runs a real VP (headless Chromium, capture, pipeline, transcriber client) against
a platform's replica web client (or a real Janus room), and asserts the contract: statuses and
reasons (contract 2), transcriber traffic (contract 3: each speaker's tone signal decoded on
ch0, not doubled, SPEAKER_CHANGE names in order) and chat. A scenario is generated only for the
platforms whose real client has that behaviour (Janus has no lobby, chat or passcode).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platforms.registry import get_driver
from platforms.replicas.server import (
    ChatLine,
    MeetingControl,
    ParticipantSpec,
    ReplicaServer,
    Scenario,
)
from scheduler.webhooks import FILES, line_event, read_new_lines
from tests.recording_server import Connection, RecordingServer
from tests.support import wait_until
from vp.config import JoinConfig
from vp.consent import REDACTION_PRE_S
from vp.lifecycle import Reason, Status
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, tone_wav
from vp.runner import RunResult, VirtualParticipant
from vp.signal import count_sequence, decode
from vp.transcriber.protocol import TranscriptSegment

pytestmark = pytest.mark.integration

REPLICA_PLATFORMS = ("zoom", "teams", "chime", "webex", "meet")
# Platforms whose driver sets the microphone through the client's own control and whose
# replica measures the VP's outgoing audio: all of them.
VOICE_PLATFORMS = ("zoom", "teams", "chime", "meet", "webex")
ALICE = ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5))
BOB = ParticipantSpec(name="Bob", symbols=(6, 2, 4, 0, 5, 1))
PASSCODE = "482913"


MEETING_IDS = {
    "zoom": "85012345678",
    "teams": "4123456789012",
    "chime": "8123456789",
    "webex": "m5f3a9c0e12",
    "meet": "abc-defg-hij",
}
# Capture sources at once: one mix, except Meet's three-slot rotating pool (each slot once).
MAX_SOURCES = {"meet": 3}


@dataclass
class Run:
    result: RunResult
    out: Path
    server: RecordingServer
    control: MeetingControl | None
    vp: VirtualParticipant
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def statuses(self) -> list[str]:
        lines = (self.out / "status.jsonl").read_text().splitlines()
        return [json.loads(line)["status"] for line in lines]

    @property
    def final(self) -> tuple[Status, Reason | None]:
        return self.result.final.status, self.result.final.reason

    def seconds_between(self, first: str, then: str) -> float:
        """Seconds from the first ``first`` status to the first ``then`` status."""
        lines = [json.loads(x) for x in (self.out / "status.jsonl").read_text().splitlines()]
        ts = {}
        for line in lines:
            ts.setdefault(line["status"], datetime.fromisoformat(line["ts"]))
        return (ts[then] - ts[first]).total_seconds()

    def chat_lines(self) -> list[dict[str, Any]]:
        path = self.out / "chat.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def speakers(self) -> list[str]:
        names = []
        for event in self.server.all_events:
            name = None
            if event["callEvent"] == "START":
                name = event.get("activeSpeaker")
            elif event["callEvent"] == "SPEAKER_CHANGE":
                name = event["activeSpeaker"]
            if name and name != "n/a" and (not names or names[-1] != name):
                names.append(name)
        return names

    def ch0(self) -> np.ndarray:
        audio = self.server.audio_bytes
        return np.frombuffer(audio, dtype="<i2").reshape(-1, 2)[:, 0].copy()


During = Callable[[VirtualParticipant, MeetingControl | None], Awaitable[None]]
Echo = Callable[[dict[str, Any], Connection], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def replicas() -> Any:
    servers: dict[str, ReplicaServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


def replica(replicas: dict[str, ReplicaServer], platform: str) -> ReplicaServer:
    if platform not in replicas:
        replicas[platform] = ReplicaServer(platform).start()
    return replicas[platform]


_counter = iter(range(10_000))


async def run_on_replica(
    replicas: dict[str, ReplicaServer],
    platform: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    participants: tuple[ParticipantSpec, ...] = (ALICE, BOB),
    passcode: str | None = PASSCODE,
    vp_passcode: str | None = None,
    passcode_in_url: bool = True,
    during: During | None = None,
    alongside: During | None = None,
    join_timeout: float = 30,
    max_duration: float | None = 8,
    alone_timeout: float = 120,
    voice: str = "off",
    capture_silence_s: float = 10.0,
    transcriber_echo: Echo | None = None,
    **scenario: Any,
) -> Run:
    server = replica(replicas, platform)
    monkeypatch.setenv("VP_ALLOWED_HOSTS", server.allowed_host)
    meeting_id = f"{MEETING_IDS[platform][:-3]}{next(_counter):03d}"
    control = server.add_meeting(
        Scenario(
            meeting_id=meeting_id,
            passcode=passcode,
            participants=list(participants),
            **scenario,
        )
    )
    url_passcode = passcode if vp_passcode is None else vp_passcode
    url = server.meeting_url(meeting_id, url_passcode if passcode_in_url else None)
    return await run_vp(
        url,
        platform,
        tmp_path,
        control,
        passcode=url_passcode or None,
        during=during,
        alongside=alongside,
        join_timeout=join_timeout,
        max_duration=max_duration,
        alone_timeout=alone_timeout,
        voice=voice,
        capture_silence_s=capture_silence_s,
        transcriber_echo=transcriber_echo,
    )


async def run_vp(
    url: str,
    platform: str,
    tmp_path: Path,
    control: MeetingControl | None,
    *,
    passcode: str | None,
    during: During | None,
    join_timeout: float,
    max_duration: float | None,
    alone_timeout: float,
    alongside: During | None = None,
    voice: str = "off",
    capture_silence_s: float = 10.0,
    transcriber_echo: Echo | None = None,
) -> Run:
    """Run one VP to its end; ``during`` runs once it joined, ``alongside`` from the start;
    ``transcriber_echo`` answers the VP's call events as a transcriber would."""
    server = await RecordingServer(echo=transcriber_echo).start()
    out = tmp_path / "vp"
    config = JoinConfig(
        meeting_url=url,
        platform=platform,
        name="Scribe",
        passcode=passcode,
        transcriber_url=server.url,
        call_id=f"conf-{platform}",
        out_dir=out,
        join_timeout=join_timeout,
        max_duration=max_duration,
        alone_timeout=alone_timeout,
        capture_silence_s=capture_silence_s,
        intro_message="",  # the assistant's own messages are tested in tests/assistant
        exit_message="",
        voice=voice,
    )
    vp = VirtualParticipant(config)
    started = time.monotonic()
    task = asyncio.create_task(vp.run())
    helper = asyncio.create_task(alongside(vp, control)) if alongside is not None else None
    try:
        if during is not None:
            joined = asyncio.create_task(vp.joined_event.wait())
            await asyncio.wait({task, joined}, return_when=asyncio.FIRST_COMPLETED)
            joined.cancel()
            if not task.done():
                await during(vp, control)
        result = await asyncio.wait_for(task, (max_duration or 60) + join_timeout + 60)
        if helper is not None:
            await helper  # its assertions count
    finally:
        if not task.done():
            vp.stop()
            await asyncio.wait_for(task, 30)
        if helper is not None and not helper.done():
            helper.cancel()
        await server.aclose()
    return Run(result, out, server, control, vp, time.monotonic() - started)


async def run_on_janus(
    url: str, tmp_path: Path, *, during: During | None = None, alone_timeout: float = 120
) -> Run:
    """Run one VP in a Janus room (no passcode, no replica control) to its end."""
    return await run_vp(
        url,
        "janus",
        tmp_path,
        None,
        passcode=None,
        during=during,
        join_timeout=30,
        max_duration=60,
        alone_timeout=alone_timeout,
    )


@asynccontextmanager
async def janus_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LocalMeeting]:
    async with LocalMeeting(tmp_path / "janus") as meeting:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", meeting.allowed_host)
        yield meeting


def assert_refusal_detail(run: Run, pattern: str) -> None:
    """A refusal says why: a non-empty terminal detail matching ``pattern``, also in the
    FAILED line of status.jsonl."""
    detail = run.result.final.detail or ""
    assert detail.strip() and re.search(pattern, detail, re.I), detail
    last = json.loads((run.out / "status.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "FAILED" and last["detail"] == detail


def assert_clean_end(run: Run) -> None:
    """END is the last call event and recording.wav holds what was streamed."""
    import soundfile as sf

    assert run.server.all_events[-1]["callEvent"] == "END"
    recorded, rate = sf.read(str(run.out / "recording.wav"), dtype="int16", always_2d=True)
    assert rate == 16000 and recorded.tobytes() == run.server.audio_bytes


# -- scenarios ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_waiting_room_then_speakers_in_order(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        waiting_room_s=3,
        speak_turn_s=2,  # Alice, Bob, Alice: three turns by 6 s, each a whole tone sequence
        max_duration=9,
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run.statuses[:4] == ["INITIALIZING", "JOINING", "WAITING_ROOM", "JOINED"]
    lines = (run.out / "status.jsonl").read_text().splitlines()
    lobby = next(json.loads(x) for x in lines if json.loads(x)["status"] == "WAITING_ROOM")
    assert lobby["detail"], "the lobby in the platform's own words"
    lobby_said = get_driver(platform).lobby_said  # the driver's pattern of the lobby's words
    assert lobby_said is not None, platform
    said = lobby_said if isinstance(lobby_said, re.Pattern) else re.compile(lobby_said, re.I)
    assert said.search(lobby["detail"]), lobby
    speakers = run.speakers()
    assert len(speakers) >= 3, speakers
    assert set(speakers) == {"Alice", "Bob"} and "Scribe" not in speakers
    assert all(a != b for a, b in zip(speakers, speakers[1:], strict=False)), "alternating"
    assert run.control is not None
    assert speakers == [r["name"] for r in run.control.reported("speaker")][: len(speakers)]
    max_sources = MAX_SOURCES.get(platform, 1)
    assert 1 <= run.result.stats["capture"]["max_sources"] <= max_sources, "each source once"
    assert run.result.stats["capture"]["degraded"] == [], "capture health: no false alarm"
    assert not (run.out / "events.jsonl").read_text(), "no vp.capture_degraded event"
    start = run.server.connections[0].events[0]
    assert start["callEvent"] == "START" and start["activeSpeaker"] == "Alice", "known at JOINED"
    ch0 = run.ch0()
    decoded = decode(ch0)
    assert count_sequence(decoded, ALICE.symbols) >= 1, "Alice's tones intact on ch0"
    assert count_sequence(decoded, BOB.symbols) >= 1, "Bob's tones intact on ch0"
    # Not doubled: the signal is played at 0.35 of full scale; two copies of the same audio
    # would show up at about twice that RMS (0.35/√2 ≈ 0.25 for one copy of a sine).
    samples = ch0.astype(np.float64) / 32768
    blocks = samples[: samples.size // 1600 * 1600].reshape(-1, 1600)
    rms = np.sqrt((blocks**2).mean(axis=1))
    tone_rms = float(np.median(rms[rms > 0.05]))
    assert 0.12 < tone_rms < 0.37, f"tone RMS {tone_rms:.3f}: one copy of each speaker"
    assert_clean_end(run)


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_speaking_but_silent_is_reported_then_recovered_by_a_rejoin(
    platform, replicas, tmp_path, monkeypatch
):
    """Capture health: the UI shows Alice and Bob speaking in turn while their audio is silent
    (until the page is reloaded). With the threshold at 2 s: the alarm within 2 s (+ a turn
    and a poll) of the first speaker shown, re-attach (no help), the rejoin 2 s later, and
    sound back after it closes the interval. The host ends the meeting once Alice has had a
    whole turn on the reloaded page."""
    silent = tuple(p.model_copy(update={"silent_loads": 1}) for p in (ALICE, BOB))

    async def end_after_alice_is_heard_again(
        vp: VirtualParticipant, control: MeetingControl | None
    ) -> None:
        assert control is not None
        await wait_until(lambda: control.audio_loads.get(0, 0) >= 2, 60)  # reloaded: real audio
        shown_before = len(control.reported("speaker"))

        def alice_had_a_whole_turn() -> bool:
            names = [r["name"] for r in control.reported("speaker")[shown_before:]]
            return "Alice" in names and "Bob" in names[names.index("Alice") :]

        await wait_until(alice_had_a_whole_turn, 30)
        control.end()

    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        participants=silent,
        speak_turn_s=2,
        capture_silence_s=2,
        alongside=end_after_alice_is_heard_again,
        max_duration=60,
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    degraded = run.result.stats["capture"]["degraded"]
    assert len(degraded) == 1, degraded
    interval = degraded[0]
    assert 2 <= interval["start_s"] <= 10, interval
    assert interval["end_s"] is not None and interval["end_s"] > interval["start_s"] + 2
    assert "speaking" in interval["cause"]
    events = [json.loads(x) for x in (run.out / "events.jsonl").read_text().splitlines()]
    assert [(e["type"], e["start_s"]) for e in events] == [
        ("vp.capture_degraded", interval["start_s"])
    ]
    assert isinstance(events[0]["ts"], float) and events[0]["cause"] == interval["cause"]
    rejoins = run.result.stats["browser"]["rejoins"]
    assert [r["cause"] for r in rejoins] == ["the capture stayed silent"]
    assert run.control is not None and run.control.audio_loads[0] >= 2, "the page was reloaded"
    # After the rejoin the tones are heard (the interval closed on them).
    assert count_sequence(decode(run.ch0()), ALICE.symbols) >= 1
    assert "capture degraded 1 time(s)" in (run.result.final.detail or "")
    assert_clean_end(run)


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_norecord_silences_the_participant_and_record_brings_them_back(
    platform, replicas, tmp_path, monkeypatch
):
    """Consent, in one meeting per platform. Bob has the floor; Bob's command on Alice's behalf
    and a message under the VP's own name do nothing; Alice's ``@Scribe norecord`` opts her out
    (confirmed in chat, naming her). Bob goes on intact; then Alice speaks: her tones are
    absent from ch0 (recording.wav = the transcriber stream) from her command to her
    ``/record`` — including the start of her turn, before the indicator showed her (the
    pre-margin's delay line) — and back after it. summary.json lists the opt-out, the
    redactions (silence inside each) and the delay."""
    t: dict[str, float] = {}

    async def consent(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None
        control.command("speak", name="Bob")
        await wait_until(lambda: vp.active_speaker == "Bob", 10)
        t["bob"] = time.monotonic()
        # As its intro would (off here): on the Teams replica the chat pane shows messages
        # only once the VP has opened it to post.
        await vp.post_chat("Hello, I am taking notes.")
        # Chat already there when the VP first reads it is history: wait until it reads.
        for attempt in range(20):
            control.chat_from("Bob", f"hello {attempt}")
            with contextlib.suppress(AssertionError):
                await wait_until(lambda: "hello" in (vp.out_dir / "chat.jsonl").read_text(), 1)
                break
        control.chat_from("Bob", "/norecord Alice")  # nobody opts someone else out
        control.chat_from("Bob", "@Scribe norecord Alice")
        control.chat_from("Scribe", "/norecord")  # the VP's own name: nothing
        control.chat_from("Alice", "@Scribe norecord")
        await wait_until(lambda: any("Alice: you will not" in x for x in control.vp_chat), 10)
        # Bob on past Alice's opt-out: ≥ 3.5 s, so ≥ 2 s of him is left before the pre-margin
        # reaches back from her turn (one whole tone sequence takes 1.92 s at worst).
        await asyncio.sleep(max(3.5, 6.0 - (time.monotonic() - t["bob"])))
        control.command("speak", name="Alice")
        await asyncio.sleep(2.5)
        control.chat_from("Alice", "/record")
        await wait_until(lambda: any("Alice: you are recorded" in x for x in control.vp_chat), 10)
        await asyncio.sleep(2.5)
        control.end()

    def transcriber(event: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        """A transcript line for whoever the stream says speaks from here (stream seconds),
        as LMA attributes them."""
        name = event.get("activeSpeaker")
        if event["callEvent"] not in ("START", "SPEAKER_CHANGE") or name in (None, "n/a"):
            return []
        when = "at the start" if event["callEvent"] == "START" else "after a change"
        text = f"words of {name} {when}"
        at = sum(len(f) for f in conn.frames) / 4 / 16000
        line = TranscriptSegment(f"conf-{platform}", "CALLER", text, at, at + 1, text, False, name)
        return [line.to_wire()]

    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        during=consent,
        speak_turn_s=60,
        max_duration=60,
        transcriber_echo=transcriber,
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.control is not None
    # No transcript line of Alice's while she is opted out — not in transcript.jsonl, not in
    # the webhook events made from the VP's files (contract 5); the others' lines are there.
    kept = [json.loads(x)["text"] for x in (run.out / "transcript.jsonl").read_text().splitlines()]
    assert "words of Alice after a change" not in kept, kept
    assert {"words of Alice at the start", "words of Bob after a change"} <= set(kept), kept
    events = [
        line_event(kind, item)
        for kind, name in FILES.items()
        for item in read_new_lines(run.out / name, 0)[0]
    ]
    sent = json.dumps([e.data for e in events if e is not None])
    assert "words of Bob after a change" in sent and "words of Alice after a change" not in sent
    said = run.control.vp_chat
    assert sum("Alice: you will not be recorded" in x for x in said) == 1, said
    assert sum("Alice: you are recorded again" in x for x in said) == 1, said
    assert not any(x.startswith(("Bob:", "Scribe:")) for x in said), "only Alice opted out"
    consent = run.result.stats["consent"]
    [opt_out] = consent["opt_outs"]
    assert opt_out["participant"] == "Alice" and opt_out["to_s"] > opt_out["from_s"]
    assert consent["delay_s"] == REDACTION_PRE_S and consent["delay_from_s"] is not None
    redactions = run.result.stats["redactions"]
    assert redactions and {r["participant"] for r in redactions} == {"Alice"}, redactions
    assert all(r["end_s"] is not None and r["end_s"] > r["start_s"] for r in redactions)
    assert all(r["start_s"] >= opt_out["from_s"] for r in redactions), "from the command on"
    ch0 = run.ch0()

    def at(seconds: float) -> int:
        return max(0, min(ch0.size, int(seconds * 16000)))

    for r in redactions:  # silence inside each (0.1 s / 0.2 s of clock skew at the edges)
        inside = ch0[at(r["start_s"] + 0.1) : at(r["end_s"] - 0.2)]
        assert inside.size == 0 or int(np.abs(inside).max()) == 0, r
    # Opted out: none of Alice's tones (3 is hers alone), not even her turn's start.
    out = decode(ch0[at(opt_out["from_s"] + 0.1) : at(opt_out["to_s"] - 0.1)])
    assert 3 not in out and count_sequence(out, ALICE.symbols) == 0, out
    # Bob intact meanwhile: his tones in the stretch before Alice's redaction.
    first = min(r["start_s"] for r in redactions)
    assert count_sequence(decode(ch0[at(opt_out["from_s"]) : at(first)]), BOB.symbols) >= 1
    # Back after /record.
    assert 3 in decode(ch0[at(opt_out["to_s"] + 0.3) :]), "Alice back after /record"
    assert run.speakers()[-2:] == ["Bob", "Alice"]
    assert_clean_end(run)


async def camera_stats(vp: VirtualParticipant) -> dict[str, Any]:
    """ReplicaCameras.stats() summed over the page's frames (the client may run in one)."""
    assert vp.page is not None
    total: dict[str, Any] = {"cameras": [], "framesEncoded": 0}
    for frame in vp.page.frames:
        with contextlib.suppress(Exception):  # a frame navigating, or without cameras.js
            stats = await frame.evaluate(
                "() => window.ReplicaCameras ? window.ReplicaCameras.stats() : null"
            )
            if stats:
                total["cameras"] += stats["cameras"]
                total["framesEncoded"] += stats["framesEncoded"]
    return total


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_chat_round_trip(platform, replicas, tmp_path, monkeypatch):
    """Chat both ways in a meeting that sends the VP two moving 1280×720 VP8 cameras
    (Scenario.camera_streams) and a 1920×1080 screen share (Scenario.screen_share): the
    driver's incoming-video suppression (vp/incoming_video.py) negotiates them away, so nothing
    is sent, decoded or rendered, while chat, speaker detection and Alice's and Bob's audio are
    unaffected."""
    seen: list[dict[str, Any]] = []

    async def cameras(vp: VirtualParticipant) -> None:
        for _ in range(100):  # the cameras' and the share's transceivers negotiated (inactive)
            stats = await camera_stats(vp)
            if len(stats["cameras"]) == 3 and all(c["direction"] for c in stats["cameras"]):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # time for frames to arrive, had they been sent
        seen.append(await camera_stats(vp))

    async def during(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        await asyncio.gather(chat(vp, control), cameras(vp))

    async def chat(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None
        await asyncio.sleep(1.5)
        control.chat_from("Alice", "Hello from Alice — ça va?")
        await vp.post_chat("Hi, I’m the meeting assistant.")
        await vp.post_chat("Hi, I’m the meeting assistant.")  # twice: each one confirmed
        for _ in range(50):
            if any(line["sender"] == "Alice" for line in read_chat(vp)):
                break
            await asyncio.sleep(0.2)

    def read_chat(vp: VirtualParticipant) -> list[dict[str, Any]]:
        path = vp.out_dir / "chat.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        during=during,
        max_duration=10,
        chat=[ChatLine(at_s=1.0, sender="Bob", text="Bob was here")],
        camera_streams=2,
        screen_share=True,
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run.control is not None
    assert run.control.vp_chat == ["Hi, I’m the meeting assistant."] * 2
    assert run.statuses == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "COMPLETED"]
    assert run.control.states[-1] == "left", "left through the client's own leave flow"
    lines = run.chat_lines()
    incoming = [(x["sender"], x["text"]) for x in lines if x["direction"] == "in"]
    assert ("Alice", "Hello from Alice — ça va?") in incoming
    assert ("Bob", "Bob was here") in incoming
    assert all(sender != "Scribe" for sender, _ in incoming), "the VP's own message is skipped"
    assert len(incoming) == len(set(incoming)), "no duplicates"
    outgoing = [x["text"] for x in lines if x["direction"] == "out"]
    assert outgoing == ["Hi, I’m the meeting assistant."] * 2
    # Video suppressed: both cameras and the share offered, negotiated inactive, never encoded
    # or decoded.
    assert seen, "camera stats read"
    assert [c["kind"] for c in seen[0]["cameras"]] == ["camera", "camera", "share"], seen[0]
    assert [c["direction"] for c in seen[0]["cameras"]] == ["inactive"] * 3, seen[0]
    assert [c["framesDecoded"] for c in seen[0]["cameras"]] == [0, 0, 0], seen[0]
    assert seen[0]["framesEncoded"] == 0, "the replica's media server never sent a frame"
    # ...and the meeting otherwise unaffected: speakers followed, both voices captured.
    assert {"Alice", "Bob"} <= set(run.speakers())
    decoded = decode(run.ch0())
    assert count_sequence(decoded, ALICE.symbols) >= 1, "Alice heard with video on"
    assert count_sequence(decoded, BOB.symbols) >= 1, "Bob heard with video on"


@pytest.mark.parametrize("platform", VOICE_PLATFORMS)
async def test_spoken_answer_unmutes_speaks_mutes_and_yields_to_a_talker(
    platform, replicas, tmp_path, monkeypatch
):
    """--voice espeak-ng: a chat question's answer is spoken — the replica's uplink sees the
    VP's mic go on, sound, the mic go off — and a second answer stops when Bob talks over it."""
    barge: dict[str, float] = {}

    async def ask(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None
        # A chat post first, as in test_chat_round_trip (the Teams driver reads incoming chat
        # reliably once its panel has been used).
        await vp.post_chat("Hi, I’m the meeting assistant.")
        control.chat_from("Alice", "OK Assistant, who is here?")
        await wait_until(lambda: bool(control.reported("uplink")), 20)
        await wait_until(lambda: vp.speaker is not None and not vp.speaker.speaking, 20)
        await wait_until(lambda: control.reported("mic")[-1]["on"] is False, 10)
        control.chat_from("Alice", "OK Assistant, summarize the meeting so far please.")
        await wait_until(lambda: len(control.reported("uplink")) >= 3, 20)
        await asyncio.sleep(0.5)
        barge["at"] = time.time()
        control.command("speak", name="Bob")  # Bob talks over the VP
        await wait_until(lambda: vp.speaker is not None and not vp.speaker.speaking, 10)
        barge["stopped"] = time.time()
        # The uplink measured the second answer's end and the mic going off: the scenario is over.
        await wait_until(lambda: control.reported("mic")[-1]["on"] is False, 10)
        await wait_until(lambda: control.reported("uplink")[-1]["sending"] is False, 10)
        control.end()

    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        during=ask,
        max_duration=60,
        voice="espeak-ng",
        speak_turn_s=60,
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.control is not None
    voice = run.result.stats["voice"]
    assert voice["utterances"] == 2 and voice["refused"] == 0, voice
    assert voice["barge_ins"] == 1, voice
    # What the replica's uplink measured: for each answer, mic on → sound → sound ends and
    # mic off (the same 50 ms tick at the latest), and no sound while the mic is off.
    mics = run.control.reported("mic")
    ons = [r["at"] for r in mics if r["on"]]
    offs = [r["at"] for r in mics if not r["on"] and r["at"] > ons[0]]
    uplink = run.control.reported("uplink")
    sounds = [r["at"] for r in uplink if r["sending"]]
    quiets = [r["at"] for r in uplink if not r["sending"]]
    assert len(ons) == len(offs) == len(sounds) == len(quiets) == 2, (mics, uplink)
    for on, sound, quiet, off in zip(ons, sounds, quiets, offs, strict=True):
        assert on <= sound < quiet <= off + 0.1, (on, sound, quiet, off)
    assert offs[0] < ons[1], "one answer at a time"
    # Bob's turn stopped the second answer: the sound ended soon after he started.
    second_quiet = quiets[1]
    assert second_quiet - barge["at"] < 3.0, "the VP yielded to Bob"


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_host_ends_meeting(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, end_after_s=4, max_duration=40
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.seconds < 30
    assert_clean_end(run)


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_removed_from_meeting(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, remove_after_s=4, max_duration=40
    )
    assert run.final == (Status.COMPLETED, Reason.REMOVED)
    assert run.seconds < 30
    assert run.seconds_between("JOINED", "LEAVING") < 4 + 8, "the removal noticed fast"
    assert_clean_end(run)


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_alone(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        everyone_leaves_after_s=2,
        alone_timeout=3,
        max_duration=40,
    )
    assert run.final == (Status.COMPLETED, Reason.ALONE)
    assert run.seconds < 30
    assert run.vp.participants == ()
    assert run.control is not None and run.control.states[-1] == "left", "left through the UI"
    assert_clean_end(run)


@pytest.mark.parametrize("platform", ("zoom", "teams", "webex"))
async def test_wrong_passcode(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, vp_passcode="000000", max_duration=30
    )
    assert run.final == (Status.FAILED, Reason.WRONG_PASSCODE)
    assert "JOINED" not in run.statuses
    assert run.seconds < 20
    assert_refusal_detail(run, r"passcode|password")


@pytest.mark.parametrize("platform", ("zoom", "teams", "webex"))
async def test_passcode_from_settings(platform, replicas, tmp_path, monkeypatch):
    """The link lacks the passcode: the VP's configured one gets it in, and it never lands
    in an output file."""
    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, passcode_in_url=False, max_duration=3
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert "JOINED" in run.statuses
    for path in run.out.iterdir():
        assert PASSCODE.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize("platform", ("zoom", "teams", "webex"))
async def test_passcode_needed_and_none_given(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(replicas, platform, tmp_path, monkeypatch, vp_passcode="")
    assert run.final == (Status.FAILED, Reason.WRONG_PASSCODE)
    assert "JOINED" not in run.statuses
    assert run.seconds < 20
    assert_refusal_detail(run, r"needs a (passcode|password)")


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_admitted_from_lobby_then_a_speaker_out_of_turn(
    platform, replicas, tmp_path, monkeypatch
):
    """Held in the lobby (not taken for the meeting) until the host admits the VP; a
    participant taking the floor out of turn is followed; then the host ends the meeting."""

    async def host(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None
        await wait_until(lambda: vp.lifecycle.status is Status.WAITING_ROOM, 30)
        await asyncio.sleep(1.5)
        assert vp.lifecycle.status is Status.WAITING_ROOM, "held in the lobby, not joined"
        control.command("admit")
        await wait_until(lambda: vp.active_speaker == "Alice", 20)
        control.command("speak", name="Bob")  # Bob takes the floor out of turn
        await wait_until(lambda: vp.active_speaker == "Bob", 5)
        control.end()

    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        manual_admission=True,
        speak_turn_s=60,
        alongside=host,
        max_duration=60,
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.statuses[:4] == ["INITIALIZING", "JOINING", "WAITING_ROOM", "JOINED"]
    assert run.statuses.count("WAITING_ROOM") == 1
    assert run.control is not None
    states = run.control.states
    assert "lobby" in states and states.index("lobby") < states.index("joined")
    assert run.speakers()[:2] == ["Alice", "Bob"]


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_denied_from_lobby(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, waiting_room_s=2, deny=True
    )
    assert run.final == (Status.FAILED, Reason.DENIED)
    assert "WAITING_ROOM" in run.statuses
    assert run.seconds < 20
    detail = run.result.final.detail or ""
    assert " says \u201c" in detail, f"the platform's own words: {detail!r}"


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_join_timeout_in_lobby(platform, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, manual_admission=True, join_timeout=8
    )
    assert run.final == (Status.FAILED, Reason.WAITING_ROOM_TIMEOUT)
    assert "WAITING_ROOM" in run.statuses
    assert run.seconds < 25
    assert_refusal_detail(run, r"not admitted in the waiting room within 8 s")


@pytest.mark.parametrize(
    ("platform", "flag", "reason"),
    [
        (p, flag, reason)
        for p in REPLICA_PLATFORMS
        for flag, reason in (
            ("not_found", Reason.MEETING_NOT_FOUND),
            ("login_required", Reason.LOGIN_REQUIRED),
            ("captcha", Reason.CAPTCHA),
            ("locked", Reason.DENIED),
        )
        # Webex guests meet no sign-in wall in the facts (SSO is for enterprise emails, and the
        # VP gives a placeholder one); only Webex has locked meetings.
        if (p, flag) != ("webex", "login_required") and (flag != "locked" or p == "webex")
    ],
)
async def test_join_refused(platform, flag, reason, replicas, tmp_path, monkeypatch):
    run = await run_on_replica(replicas, platform, tmp_path, monkeypatch, **{flag: True})
    assert run.final == (Status.FAILED, reason)
    assert "JOINED" not in run.statuses
    assert run.seconds < 20
    detail = run.result.final.detail or ""
    assert detail.strip(), "every refusal says why"
    if flag in ("not_found", "locked"):
        assert " says \u201c" in detail, f"the platform's own words: {detail!r}"
    # What the organiser can change, where the facts tell it.
    organiser = {
        ("zoom", "login_required"): "the organiser can let guests join without signing in",
        ("teams", "login_required"): "anonymous users join meetings",
        ("webex", "locked"): "the organiser can unlock the meeting",
    }.get((platform, flag))
    if organiser:
        assert organiser in detail, detail
    if (platform, flag) == ("teams", "login_required"):
        assert "anonymous join is disabled" in detail, detail


@pytest.mark.parametrize("variant", ("client_in_page", "thin_iframe"))
async def test_webex_client_in_the_main_frame(variant, replicas, tmp_path, monkeypatch):
    """Newer j.php builds run the Webex client in the main frame instead of the cross-origin
    iframe: the same steps, lobby, speakers, chat and removal there. Enterprise sites run the
    enterprise client in a cross-origin iframe[name=thinIframe], with its own controls
    (password #password_validate_btn, guest form #guest_next-btn, #audioControlButton, the
    STOP_VIDEO button, the data-doi chat toggle and its textarea, .videoitem-* speaker tiles):
    the VP joins through them, chats both ways, drives its microphone there, and the host
    ends the meeting."""
    enterprise = variant == "thin_iframe"
    seen: dict[str, Any] = {}

    async def enterprise_meeting(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None and vp.session is not None
        driver = vp.session.driver
        await wait_until(lambda: vp.lifecycle.joined, 20)
        await wait_until(lambda: vp.active_speaker is not None, 10)
        frame = await driver.client_frame()  # type: ignore[attr-defined]
        assert frame is not None and frame.name == "thinIframe"
        # The enterprise cookie banner was answered (#cookie-banner-text … button:nth-child(1)).
        seen["banner"] = await driver.page.locator("#cookie-banner-text").count()
        # The VP joined through the enterprise controls: muted, video stopped, never started.
        seen["mic"] = await frame.locator("#audioControlButton").get_attribute("aria-label")
        seen["video"] = await frame.locator('button[data-doi*="_VIDEO:"]').get_attribute("data-doi")
        await vp.post_chat("Hello from the VP")
        await wait_until(lambda: "Hello from the VP" in control.vp_chat, 10)
        seen["mic_on"] = await driver.set_microphone(True)
        seen["mic_on_label"] = await frame.locator("#audioControlButton").get_attribute(
            "aria-label"
        )
        seen["mic_off"] = await driver.set_microphone(False)
        await asyncio.sleep(3)  # Bob's line (at 1 s) and the speaker turns
        control.end()

    run = await run_on_replica(
        replicas,
        "webex",
        tmp_path,
        monkeypatch,
        **{variant: True},
        waiting_room_s=2,
        max_duration=40,
        chat=[ChatLine(at_s=1.0, sender="Bob", text="Bob was here")],
        **({"during": enterprise_meeting} if enterprise else {"remove_after_s": 7}),
    )
    expected = Reason.HOST_ENDED if enterprise else Reason.REMOVED
    assert run.final == (Status.COMPLETED, expected)
    assert run.statuses[:4] == ["INITIALIZING", "JOINING", "WAITING_ROOM", "JOINED"]
    assert run.speakers()[:2] == ["Alice", "Bob"]
    assert ("Bob", "Bob was here") in [(x["sender"], x["text"]) for x in run.chat_lines()]
    assert count_sequence(decode(run.ch0()), ALICE.symbols) >= 1
    if enterprise:
        assert seen["banner"] == 0, seen
        assert seen["mic"] == "Unmute", seen
        assert seen["video"] == "VIDEO:START_VIDEO:MENU_CONTROL_BAR", seen
        assert seen["mic_on"] is True and seen["mic_on_label"] == "Mute", seen
        assert seen["mic_off"] is True, seen
        assert run.control is not None
        assert run.control.vp_chat.count("Hello from the VP") == 1
    assert_clean_end(run)


async def test_webex_device_prompt_before_joining(replicas, tmp_path, monkeypatch):
    """The device prompt over the preview is answered "Continue without microphone and
    camera" (the preview takes no clicks until then), then the VP joins muted."""
    run = await run_on_replica(
        replicas, "webex", tmp_path, monkeypatch, post_join_modal=True, max_duration=4
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert "JOINED" in run.statuses


async def test_webex_toast_and_flicker_do_not_end_the_meeting(replicas, tmp_path, monkeypatch):
    async def transient(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None
        await asyncio.sleep(1)
        control.command("toast", text="Bob has been removed from the meeting.", ms=2500)
        control.command("flicker", ms=1500)
        await asyncio.sleep(4)
        assert vp.lifecycle.status is Status.JOINED, "a toast or a flicker is not an end"
        control.end()

    run = await run_on_replica(
        replicas, "webex", tmp_path, monkeypatch, during=transient, max_duration=40
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)


async def test_webex_client_frame_cross_site(tmp_path, monkeypatch):
    """The client frame from another site (localhost vs 127.0.0.1): Chromium runs it out of
    process, and the steps, the speaker and the captured audio still come through."""
    servers = {"webex": ReplicaServer("webex", client_host="localhost").start()}
    try:
        run = await run_on_replica(
            servers, "webex", tmp_path, monkeypatch, waiting_room_s=1, max_duration=10
        )
    finally:
        servers["webex"].stop()
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run.speakers()[:2] == ["Alice", "Bob"]
    assert run.result.stats["capture"]["max_sources"] == 1
    decoded = decode(run.ch0())
    assert count_sequence(decoded, ALICE.symbols) >= 1, "the frame's audio reached Python"
    assert_clean_end(run)


# -- janus: the scenarios its real client has ------------------------------------------------

JANUS_ROSTER_JS = """() => Array.from(document.querySelectorAll('#list > li')).map((li) => {
  const icon = li.querySelector('i.abmuted');
  const name = Array.from(li.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE)
    .map((n) => n.textContent).join('').trim();
  return [name, !!icon && icon.getClientRects().length > 0];
})"""


async def test_janus_speaker_audio_and_host_ends(tmp_path, monkeypatch):
    async with janus_room(tmp_path, monkeypatch) as meeting:
        wav = tone_wav(tmp_path / "alice.wav", ALICE.symbols)
        async with SimulatedParticipant(meeting.url, "Alice", wav) as alice:
            roster: list[list[Any]] = []

            async def end_later(vp: VirtualParticipant, control: MeetingControl | None) -> None:
                await asyncio.sleep(6)
                # Who Alice's page lists, and whether it shows them muted (the AudioBridge
                # "muted" flag, as the server reports it to the other participants).
                roster.extend(await alice.page.evaluate(JANUS_ROSTER_JS))
                await meeting.end_meeting()

            run = await run_on_janus(meeting.url, tmp_path, during=end_later)
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    # Voice off: the VP mutes once the room's audio is set up (after JOINED) and stays muted.
    assert roster == [["Scribe", True]], roster
    assert run.speakers() == ["Alice"]
    assert count_sequence(decode(run.ch0()), ALICE.symbols) >= 1
    # Consent: Janus has no chat, so nobody can opt out; no redaction and no delay.
    assert run.result.stats["redactions"] == []
    assert run.result.stats["consent"]["delay_s"] == 0.0
    assert_clean_end(run)


async def test_janus_alone(tmp_path, monkeypatch):
    async with janus_room(tmp_path, monkeypatch) as meeting:
        run = await run_on_janus(meeting.url, tmp_path, alone_timeout=3)
    assert run.final == (Status.COMPLETED, Reason.ALONE)


async def test_janus_room_not_found(tmp_path, monkeypatch):
    async with janus_room(tmp_path, monkeypatch) as meeting:
        url = meeting.url.replace(f"room={meeting.room_id}", "room=4242")
        run = await run_on_janus(url, tmp_path)
    assert run.final == (Status.FAILED, Reason.MEETING_NOT_FOUND)
    assert run.seconds < 20
    assert_refusal_detail(run, r"room does not exist")


# -- Google Meet: its blocks, its notices and its audio variants ------------------------------


async def test_meet_blocked_is_retried_once_then_fails_blocked(replicas, tmp_path, monkeypatch):
    """ "You can't join this video call" (bot detection or an organisation's policy) is
    retried once with a fresh load, never in a loop, and ends FAILED blocked."""
    run = await run_on_replica(
        replicas, "meet", tmp_path, monkeypatch, blocked_joins=99, max_duration=30
    )
    assert run.final == (Status.FAILED, Reason.BLOCKED)
    assert "JOINED" not in run.statuses
    assert run.control is not None and run.control.states.count("blocked") == 2
    assert run.seconds < 25
    # The platform's words and what the organiser can change (facts: anonymous guests).
    assert_refusal_detail(run, r"You can't join this video call")
    assert "organisation that blocks anonymous guests" in (run.result.final.detail or "")


async def test_meet_blocked_once_then_admitted(replicas, tmp_path, monkeypatch):
    run = await run_on_replica(
        replicas, "meet", tmp_path, monkeypatch, blocked_joins=1, max_duration=3
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run.control is not None and run.control.states.count("blocked") == 1
    assert "JOINED" in run.statuses


async def test_meet_gemini_notice_answered_with_join_now(replicas, tmp_path, monkeypatch):
    """The "Gemini is taking notes" dialog after admission is answered with its "Join now"
    (its "Leave" would leave; hiding it gets guests ejected)."""
    run = await run_on_replica(
        replicas, "meet", tmp_path, monkeypatch, post_join_modal=True, max_duration=6
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    assert run.control is not None
    assert run.control.states[-2:] == ["joined", "left"], "stayed until the VP left itself"


async def test_meet_without_audio_elements(replicas, tmp_path, monkeypatch):
    """The variant with no <audio> elements: the peer connection's tracks are captured, each
    speaker heard once."""
    run = await run_on_replica(
        replicas, "meet", tmp_path, monkeypatch, audio_elements=False, max_duration=12
    )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    decoded = decode(run.ch0())
    assert count_sequence(decoded, ALICE.symbols) >= 1
    assert count_sequence(decoded, BOB.symbols) >= 1
    samples = run.ch0().astype(np.float64) / 32768
    blocks = samples[: samples.size // 1600 * 1600].reshape(-1, 1600)
    rms = np.sqrt((blocks**2).mean(axis=1))
    tone_rms = float(np.median(rms[rms > 0.05]))
    assert 0.12 < tone_rms < 0.37, f"tone RMS {tone_rms:.3f}: one copy of each speaker"


# -- voice: a platform that will not unmute the VP ---------------------------------------------


@pytest.mark.parametrize("platform", ("meet", "webex"))
async def test_unmute_refused_by_the_host_keeps_the_answer_in_chat(
    platform, replicas, tmp_path, monkeypatch
):
    """The host muted everyone and the client's unmute control will not unmute: the answer is
    posted in chat, nothing is sent on the uplink, and the final detail says why."""

    async def ask(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None
        control.chat_from("Alice", "OK Assistant, who is here?")
        await wait_until(lambda: vp.speaker is not None and vp.speaker.stats.refused >= 1, 20)
        await wait_until(lambda: bool(control.vp_chat), 10)
        control.end()

    run = await run_on_replica(
        replicas,
        platform,
        tmp_path,
        monkeypatch,
        during=ask,
        max_duration=40,
        voice="espeak-ng",
        unmute_refused=True,
    )
    assert run.final == (Status.COMPLETED, Reason.HOST_ENDED)
    assert run.control is not None
    assert run.control.vp_chat, "the answer stayed in chat"
    voice = run.result.stats["voice"]
    assert voice["refused"] >= 1 and voice["utterances"] == 0, voice
    assert not any(r["on"] for r in run.control.reported("mic")), "never unmuted"
    assert not any(r["sending"] for r in run.control.reported("uplink")), "nothing sent"
    assert "refused to unmute" in (run.result.final.detail or "")
