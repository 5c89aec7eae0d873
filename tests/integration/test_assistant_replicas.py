"""The assistant in the meeting chat, on every platform replica, with the local engine.

One VP per platform: it posts its intro after JOINED; a participant asks "OK Assistant, who
is here?" in chat and gets a prefixed reply naming the participants; a participant types
"Scribe leave" and the VP thanks them, posts its exit message and ends COMPLETED end-command.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario
from tests.recording_server import RecordingServer
from tests.support import wait_until
from vp.config import JoinConfig
from vp.lifecycle import Reason, Status
from vp.runner import VirtualParticipant

pytestmark = pytest.mark.integration

MEETING_IDS = {
    "zoom": "85099999001",
    "teams": "4199999999001",
    "chime": "8199999001",
    "webex": "m5f3a9c9001",
    "meet": "xyz-abcd-efg",
}


@pytest.mark.parametrize("platform", ["zoom", "teams", "chime", "webex", "meet"])
async def test_intro_question_and_leave_command(platform, tmp_path, monkeypatch):
    with ReplicaServer(platform) as replica:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
        meeting_id = MEETING_IDS[platform]
        control = replica.add_meeting(
            Scenario(
                meeting_id=meeting_id,
                passcode="482913",
                participants=[ParticipantSpec(name="Alice"), ParticipantSpec(name="Bob")],
            )
        )
        server = await RecordingServer().start()
        config = JoinConfig(
            meeting_url=replica.meeting_url(meeting_id, "482913"),
            platform=platform,
            name="Scribe",
            passcode="482913",
            invited_by="Dana",
            transcriber_url=server.url,
            out_dir=tmp_path / "vp",
            max_duration=90,
        )
        vp = VirtualParticipant(config)
        task = asyncio.create_task(vp.run())
        try:
            await wait_until(lambda: len(control.vp_chat) >= 1, 60)
            intro = control.vp_chat[0]
            assert "Scribe" in intro and "invited by Dana" in intro and "Scribe leave" in intro

            control.chat_from("Alice", "OK Assistant, who is here?")
            await wait_until(lambda: any("(assistant)" in m for m in control.vp_chat))
            (reply,) = [m for m in control.vp_chat if "(assistant)" in m]
            assert reply.startswith("🤖 Scribe (assistant): ")
            assert "Alice" in reply and "Bob" in reply

            control.chat_from("Bob", "Scribe leave")
            result = await asyncio.wait_for(task, 45)
        finally:
            if not task.done():
                vp.stop()
                await asyncio.wait_for(task, 30)
            await server.aclose()

    assert (result.final.status, result.final.reason) == (Status.COMPLETED, Reason.END_COMMAND)
    thanks = control.vp_chat.index("Thanks Bob — I’ll head out now.")
    assert control.vp_chat[thanks + 1] == "Scribe has left the meeting. Thanks, everyone!"
    assert len(control.vp_chat) == thanks + 2, "nothing after the exit message"
    chat = [json.loads(x) for x in (tmp_path / "vp" / "chat.jsonl").read_text().splitlines()]
    answered = [x for x in chat if x["direction"] == "out" and x["assistant"]]
    assert len(answered) == 1 and answered[0]["text"] == reply
    assert {"Alice", "Bob"} <= {x["sender"] for x in chat if x["direction"] == "in"}
    assert server.all_events[-1]["callEvent"] == "END"


@pytest.mark.parametrize("platform", ["zoom", "teams", "chime", "webex", "meet"])
async def test_a_spoken_question_is_answered_in_chat(platform, tmp_path, monkeypatch):
    """Alice *says* "OK Assistant, who is here?" (espeak-ng through the platform's audio
    plumbing); the in-process offline transcriber spots the wake phrase and the VP answers in
    the meeting chat."""
    with ReplicaServer(platform) as replica:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", replica.allowed_host)
        meeting_id = MEETING_IDS[platform]
        control = replica.add_meeting(
            Scenario(
                meeting_id=meeting_id,
                participants=[
                    ParticipantSpec(name="Alice", speech="OK Assistant, who is here?", pause_s=1.5),
                    ParticipantSpec(name="Bob"),
                ],
                speak_turn_s=12.0,
            )
        )
        config = JoinConfig(
            meeting_url=replica.meeting_url(meeting_id),
            platform=platform,
            name="Scribe",
            out_dir=tmp_path / "vp",
            intro_message="",
            max_duration=120,
        )
        vp = VirtualParticipant(config)
        task = asyncio.create_task(vp.run())
        try:
            await wait_until(lambda: any("(assistant)" in m for m in control.vp_chat), 75)
        finally:
            vp.stop()
            result = await asyncio.wait_for(task, 45)

    replies = [m for m in control.vp_chat if "(assistant)" in m]
    assert replies[0].startswith("🤖 Scribe (assistant): ")
    assert "Alice" in replies[0] and "Bob" in replies[0]
    assert result.final.status is Status.COMPLETED
    segments = [
        json.loads(x) for x in (tmp_path / "vp" / "transcript.jsonl").read_text().splitlines()
    ]
    asked = [s for s in segments if s["text"].startswith("OK Assistant")]
    assert asked and asked[0]["speaker"] == "Alice", segments
    chat = [json.loads(x) for x in (tmp_path / "vp" / "chat.jsonl").read_text().splitlines()]
    assert [x["text"] for x in chat if x["assistant"]] == replies
