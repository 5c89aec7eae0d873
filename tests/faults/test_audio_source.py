"""No audio source after joining is detected and reported — and never taken for silence.

Two real meetings that both sound silent: a Chime replica meeting nobody else has joined (its
client starts no meeting audio at all: the page plays nothing, the capture has no source),
and a real Janus room where a participant's microphone plays digital silence (a source that
is silent). The first must end with capture state "no-source" and a warning; the second with
"silent" and no "no-source" warning.

(Janus' AudioBridge always sends a mix, even to a VP alone in the room: there the VP has one
silent source, so a Janus room with nobody else is "silent", not "no-source".)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from tests.conformance.test_conformance import replicas, run_on_replica  # noqa: F401 (fixture)
from tests.faults.conftest import summary
from tests.recording_server import RecordingServer
from tests.support import scribe_config
from vp.lifecycle import Reason, Status
from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant
from vp.runner import VirtualParticipant
from vp.signal import write_wav

pytestmark = pytest.mark.integration


def audio_health(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["log_level"], e["state"]) for e in logs if e["event"] == "audio.health"]


async def test_no_other_participant_on_replica_is_no_source(
    replicas: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with structlog.testing.capture_logs() as logs:
        run = await run_on_replica(
            replicas,
            "chime",
            tmp_path,
            monkeypatch,
            participants=(),
            passcode=None,
            max_duration=14,
            alone_timeout=300,
        )
    assert run.final == (Status.COMPLETED, Reason.MAX_DURATION)
    capture = summary(run.out)["capture"]
    assert capture["state"] == "no-source", capture
    assert capture["max_sources"] == 0 and capture["frames"] > 0, "frames flowed, nothing in them"
    assert "no-source" in capture["warnings"] and "silent" not in capture["warnings"]
    assert ("warning", "no-source") in audio_health(logs)


async def test_participant_playing_silence_is_silent_not_no_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    silence = write_wav(tmp_path / "silence.wav", np.zeros(48000, np.int16), 48000)
    server = await RecordingServer().start()
    out = tmp_path / "vp"
    with structlog.testing.capture_logs() as logs:
        async with LocalMeeting(tmp_path / "janus") as meeting:
            monkeypatch.setenv("VP_ALLOWED_HOSTS", meeting.allowed_host)
            async with SimulatedParticipant(meeting.url, "Alice", silence):
                config = scribe_config(meeting.url, out, server.url, max_duration=14)
                result = await VirtualParticipant(config).run()
    await server.aclose()
    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.MAX_DURATION)
    capture = summary(out)["capture"]
    assert capture["state"] == "silent", capture
    assert capture["max_sources"] >= 1
    assert capture["warnings"] == ["silent"]
    assert ("warning", "silent") in audio_health(logs)
    assert ("warning", "no-source") not in audio_health(logs)
