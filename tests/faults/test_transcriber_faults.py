"""The transcriber goes away: down at start, and a mid-call outage longer than the buffer.

Real components: a VP in a real Janus room with a participant playing a known tone signal,
streaming to a real LMA-protocol WebSocket server that is stopped (its port closed: connection
refused) and started again on the same port. (A drop within the buffer bound, nothing lost:
test_dropped_connection_reconnects_and_loses_nothing in tests/integration/test_vp_janus.py.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import soundfile as sf
import structlog
from websockets.asyncio.server import serve

from tests.faults.conftest import ch0, start_and_wait_joined, statuses, summary
from tests.recording_server import RecordingServer
from tests.support import scribe_config
from vp.lifecycle import Reason, Status
from vp.localmeeting.janus import free_port
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant
from vp.runner import VirtualParticipant
from vp.signal import DEFAULT_SYMBOLS, count_sequence, decode

pytestmark = pytest.mark.integration


class FlakyServer(RecordingServer):
    """A RecordingServer on a fixed port that can go down (port closed) and come back."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    async def start(self) -> FlakyServer:
        self._server = await serve(
            self._handle, "127.0.0.1", self.port, process_request=self._check_auth, compression=None
        )
        return self

    async def go_down(self) -> None:
        """Close every connection (close handshake: what the client sent before is read) and
        stop listening: new connections are refused."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def recording(out: Path) -> bytes:
    pcm, rate = sf.read(str(out / "recording.wav"), dtype="int16", always_2d=True)
    assert rate == 16000 and pcm.shape[1] == 2
    return bytes(pcm.tobytes())


async def test_transcriber_down_at_start_fails_within_bound_and_keeps_recording(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    out = tmp_path / "vp"
    config = scribe_config(
        meeting.url,
        out,
        f"ws://127.0.0.1:{free_port()}/api/v1/ws",  # nothing listens
        transcriber_wait=6,
        max_duration=120,
    )
    vp = VirtualParticipant(config)
    with structlog.testing.capture_logs() as logs:
        task = await start_and_wait_joined(vp)
        joined_at = time.monotonic()
        result = await asyncio.wait_for(task, 60)
        ended_after = time.monotonic() - joined_at

    assert (result.final.status, result.final.reason) == (
        Status.FAILED,
        Reason.TRANSCRIBER_UNAVAILABLE,
    )
    assert "unreachable for" in (result.final.detail or "")
    assert 6 <= ended_after < 6 + 15, "retried for the bound, not much longer"
    assert result.final.detail == "transcriber unreachable for 6 s"
    history = [s["status"] for s in statuses(out)]
    assert history == ["INITIALIZING", "JOINING", "JOINED", "LEAVING", "FAILED"]
    attempts = [e for e in logs if e["event"] == "transcriber.disconnected"]
    assert 3 <= len(attempts) <= 20, "backoff: several attempts, no busy loop"
    # recording.wav is kept, complete, and holds the meeting audio captured meanwhile.
    audio = recording(out)
    assert len(audio) >= 64000 * 5
    assert count_sequence(decode(ch0(audio)), DEFAULT_SYMBOLS) >= 1, "Alice is in the recording"
    stats = summary(out)
    assert stats["transcriber"]["connects"] == 0
    assert stats["pipeline"]["audio_seconds"] == pytest.approx(len(audio) / 64000, abs=0.01)


async def test_transcriber_up_late_within_bound_gets_everything(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    server = FlakyServer(free_port())
    out = tmp_path / "vp"
    config = scribe_config(meeting.url, out, server.url, transcriber_wait=30, max_duration=14)
    vp = VirtualParticipant(config)
    task = await start_and_wait_joined(vp)
    await asyncio.sleep(4)  # the transcriber is down for the first seconds of the call
    await server.start()
    result = await asyncio.wait_for(task, 60)
    await server.aclose()

    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.MAX_DURATION)
    (conn,) = server.connections
    assert conn.order[0] == "START" and conn.order[-1] == "END"
    assert server.audio_bytes == recording(out), "the buffered first seconds were replayed"
    assert summary(out)["transcriber"]["lost_seconds"] == 0


async def test_outage_longer_than_buffer_reports_the_seconds_lost(
    meeting: LocalMeeting, alice: SimulatedParticipant, tmp_path: Path
) -> None:
    server = await FlakyServer(free_port()).start()
    out = tmp_path / "vp"
    config = scribe_config(meeting.url, out, server.url, transcriber_buffer=2, max_duration=22)
    vp = VirtualParticipant(config)
    with structlog.testing.capture_logs() as logs:
        task = await start_and_wait_joined(vp)
        await asyncio.sleep(4)
        await server.go_down()
        await asyncio.sleep(7)  # more than three times the 2 s buffer
        await server.start()
        result = await asyncio.wait_for(task, 60)
    await server.aclose()

    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.MAX_DURATION)
    first, second = server.connections
    assert [e["callEvent"] for e in second.events][0] == "START"
    assert second.order[-1] == "END"
    stats = summary(out)["transcriber"]
    lost = stats["lost_seconds"]
    assert lost >= 7 - 2 - 1, f"about the outage minus the buffer, got {lost}"
    assert stats["outages"] == 1 and stats["longest_outage_s"] >= 7
    # Exact accounting: the recording = what came before + the lost stretch + the rest.
    audio = recording(out)
    before, after = b"".join(first.frames), b"".join(second.frames)
    assert audio.startswith(before) and audio.endswith(after)
    lost_bytes = len(audio) - len(before) - len(after)
    assert lost_bytes == pytest.approx(lost * 64000, abs=64000 * 0.002)
    # Reported in a log line, and in the terminal status detail.
    (reconnected,) = [e for e in logs if e["event"] == "transcriber.reconnected"]
    assert reconnected["lost_s"] == pytest.approx(lost, abs=0.01)
    assert reconnected["outage_s"] >= 7
    assert any(e["event"] == "transcriber.buffer_overflow" for e in logs)
    assert f"{lost:.1f} s of audio did not reach the transcriber" in (result.final.detail or "")
