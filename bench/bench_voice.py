"""The VP's voice on a replica: one spoken answer's cost and the latency from a chat question
to the first sound out, plus the microphone and barge-in behaviour. Prints JSON.

    python -m bench.bench_voice [--platform zoom|teams|chime] [--runs 3]

Per run: a VP with ``--voice espeak-ng`` joins the replica, Alice asks a question in chat;
latency = question posted → the speaker's first sound (includes chat polling, the assistant's
answer, synthesis of the first sentence and the unmute click). Synthesis cost is measured
apart: CPU seconds (espeak-ng child + resampling) per second of speech. Medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario
from vp.config import JoinConfig
from vp.runner import VirtualParticipant
from vp.voice.synthesis import SAMPLE_RATE, EspeakNgSynthesizer

ANSWER = (
    "Here is what I heard so far. Alice will send the budget numbers by Friday. "
    "Bob is reviewing the release schedule. Nothing else was decided yet."
)
MEETING_IDS = {"zoom": "85012345999", "teams": "4123456789999", "chime": "8123456999"}


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def synthesis_cost() -> dict[str, float]:
    synth = EspeakNgSynthesizer()
    await synth.synthesize("Warm up.")
    cpu, wall = _cpu(), time.perf_counter()
    pcm = await synth.synthesize(ANSWER)
    wall = time.perf_counter() - wall
    cpu = _cpu() - cpu
    speech = len(pcm) / 2 / SAMPLE_RATE
    return {
        "speech_s": round(speech, 2),
        "synth_wall_s": round(wall, 3),
        "synth_cpu_s": round(cpu, 3),
        "cpu_s_per_speech_s": round(cpu / speech, 4),
    }


async def one_run(platform: str, tmp: Path, index: int, barge: bool) -> dict[str, Any]:
    with ReplicaServer(platform) as server:
        os.environ["VP_ALLOWED_HOSTS"] = server.allowed_host
        meeting_id = MEETING_IDS[platform][:-2] + f"{index:02d}"
        control = server.add_meeting(
            Scenario(
                meeting_id=meeting_id,
                passcode="482913",
                participants=[
                    ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5)),
                    ParticipantSpec(name="Bob", symbols=(6, 2, 4, 0, 5, 1)),
                ],
                speak_turn_s=60,
            )
        )
        config = JoinConfig(
            meeting_url=server.meeting_url(meeting_id, "482913"),
            platform=platform,
            name="Scribe",
            passcode="482913",
            out_dir=tmp / f"run{index}",
            max_duration=25,
            voice="espeak-ng",
            intro_message="",
            exit_message="",
        )
        vp = VirtualParticipant(config)
        task = asyncio.create_task(vp.run())
        await vp.joined_event.wait()
        await asyncio.sleep(2)
        asked = time.monotonic()
        control.chat_from("Alice", "OK Assistant, what did we decide so far?")
        barged_at = None
        for _ in range(300):
            speaker = vp.speaker
            if speaker is not None and speaker.speaking:
                break
            await asyncio.sleep(0.05)
        if barge:
            await asyncio.sleep(1.0)
            barged_at = time.monotonic()
            control.command("speak", name="Bob")
        await asyncio.sleep(6)
        vp.stop()
        result = await task
    voice = result.stats.get("voice", {})
    first = voice.get("first_sound_at") or [None]
    return {
        "final": result.final.status.value,
        "latency_s": None if first[0] is None else round(first[0] - asked, 3),
        "utterances": voice.get("utterances"),
        "refused": voice.get("refused"),
        "barge_ins": voice.get("barge_ins"),
        "spoken_s": voice.get("spoken_s"),
        "barged": barged_at is not None,
        "failed": voice.get("failed"),
        "chat_out": [
            line for line in _chat(config.effective_out_dir) if line["direction"] == "out"
        ],
        "media_reports": control.reported("media"),
    }


def _chat(out: Path) -> list[dict[str, Any]]:
    path = out / "chat.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--platform", default="zoom", choices=sorted(MEETING_IDS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--barge", action="store_true", help="Bob talks over the answer")
    args = parser.parse_args()
    cost = [await synthesis_cost() for _ in range(args.runs)]
    with tempfile.TemporaryDirectory(prefix="vp-bench-voice-") as tmp:
        runs = [await one_run(args.platform, Path(tmp), i, args.barge) for i in range(args.runs)]
    latencies = [r["latency_s"] for r in runs if r["latency_s"] is not None]
    print(
        json.dumps(
            {
                "platform": args.platform,
                "synthesis": {k: statistics.median(c[k] for c in cost) for k in cost[0]},
                "question_to_first_sound_s": statistics.median(latencies) if latencies else None,
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
