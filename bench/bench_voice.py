"""The VP's voice on a replica: one spoken answer's cost and the latency from a chat question
to the first sound out, plus the microphone and barge-in behaviour. Prints JSON.

    python -m bench.bench_voice [--platform zoom|teams|chime] [--runs 3] [--question chat|spoken]

Per run: a VP with ``--voice espeak-ng`` joins the replica, Alice asks a question in chat;
latency = question posted → the speaker's first sound (includes chat polling, the assistant's
answer, synthesis of the first sentence and the unmute click). Synthesis cost is measured
apart: CPU seconds (espeak-ng child + resampling) per second of speech. Medians are reported.

``--question spoken``: Alice *says* "OK Assistant, who is here?" (espeak-ng through the
replica's audio plumbing, as tests/integration/test_assistant_replicas.py does) and the VP
hears it with the in-process offline transcriber (pocketsphinx and its wake spotter). Latency =
end of her question as the VP heard it (ch0 of recording.wav) → the VP's first voice sample
(ch1 of the same file, so no clocks are compared), split into transcription (end of speech →
final segment), assistant (segment → answer posted in chat and queued for the voice) and voice
(queued → first sound: synthesis of the first sentence, the unmute click, playing), plus the
replica's uplink meter (when the client starts sending sound). Janus is not used: its demo
page has no chat, so a VP on Janus has no assistant to answer a question.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from platforms.replicas.server import MeetingControl, ParticipantSpec, ReplicaServer, Scenario
from vp import log as vplog
from vp.config import JoinConfig
from vp.localmeeting.participant import synthesize_speech
from vp.runner import VirtualParticipant
from vp.transcriber.protocol import TranscriptSegment
from vp.voice.synthesis import SAMPLE_RATE, EspeakNgSynthesizer

ANSWER = (
    "Here is what I heard so far. Alice will send the budget numbers by Friday. "
    "Bob is reviewing the release schedule. Nothing else was decided yet."
)
MEETING_IDS = {"zoom": "85012345999", "teams": "4123456789999", "chime": "8123456999"}
SPOKEN_QUESTION = "OK Assistant, who is here?"
# 20 ms windows; "loud" = RMS above this share of the signal's loudest window (scale-free:
# the replica's plumbing changes the level) and above an absolute floor (the idle noise).
LOUD_WINDOW_S = 0.02
LOUD_SHARE = 0.05
LOUD_FLOOR = 100.0


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


@contextmanager
def voice_meeting(
    platform: str,
    number: int,
    out: Path,
    *,
    max_duration: float,
    passcode: str | None = None,
    **scenario: Any,
) -> Iterator[tuple[MeetingControl, JoinConfig]]:
    """A replica meeting (its ``scenario``, meeting number ``number``) and the config of the
    benchmarked VP for it: Scribe with the espeak-ng voice and no intro or exit message."""
    with ReplicaServer(platform) as server:
        os.environ["VP_ALLOWED_HOSTS"] = server.allowed_host
        meeting_id = MEETING_IDS[platform][:-2] + f"{number:02d}"
        control = server.add_meeting(Scenario(meeting_id=meeting_id, passcode=passcode, **scenario))
        secret = {} if passcode is None else {"passcode": passcode}
        yield (
            control,
            JoinConfig(
                meeting_url=server.meeting_url(meeting_id, passcode),
                platform=platform,
                name="Scribe",
                out_dir=out,
                max_duration=max_duration,
                voice="espeak-ng",
                intro_message="",
                exit_message="",
                **secret,
            ),
        )


async def one_run(platform: str, tmp: Path, index: int, barge: bool) -> dict[str, Any]:
    with voice_meeting(
        platform,
        index,
        tmp / f"run{index}",
        max_duration=25,
        passcode="482913",
        participants=[
            ParticipantSpec(name="Alice", symbols=(0, 3, 1, 4, 2, 5)),
            ParticipantSpec(name="Bob", symbols=(6, 2, 4, 0, 5, 1)),
        ],
        speak_turn_s=60,
    ) as (control, config):
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


def loud_windows(pcm: np.ndarray, rate: int, window_s: float = LOUD_WINDOW_S) -> np.ndarray:
    """Which ``window_s`` windows of mono int16 ``pcm`` are loud (see LOUD_SHARE/LOUD_FLOOR)."""
    window = max(1, round(window_s * rate))
    n = pcm.size // window
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = pcm[: n * window].astype(np.float64).reshape(n, window)
    rms = np.sqrt((frames**2).mean(axis=1))
    result: np.ndarray = rms > max(LOUD_FLOOR, LOUD_SHARE * float(rms.max()))
    return result


def loud_span(
    pcm: np.ndarray, rate: int, window_s: float = LOUD_WINDOW_S
) -> tuple[float, float] | None:
    """(start, end) seconds from the first loud window's start to the last one's end."""
    loud = np.flatnonzero(loud_windows(pcm, rate, window_s))
    if loud.size == 0:
        return None
    return float(loud[0] * window_s), float((loud[-1] + 1) * window_s)


def first_sound_after(pcm: np.ndarray, rate: int, after_s: float, level: int = 300) -> float | None:
    """Seconds of the first sample of mono int16 ``pcm`` louder than ``level`` at or after
    ``after_s`` (the VP's first voice sample on ch1)."""
    start = max(0, round(after_s * rate))
    hits = np.flatnonzero(np.abs(pcm[start:].astype(np.int32)) > level)
    return None if hits.size == 0 else (start + int(hits[0])) / rate


@dataclass(frozen=True)
class SpokenTimeline:
    """One spoken question and its answer. Times in seconds: ``question_end_rec`` and
    ``first_voice_rec`` on recording.wav's timeline (ch0/ch1, aligned by the pipeline); the
    rest on the bench's monotonic clock (the VP runs in this process)."""

    question_end_rec: float  # end of Alice's speech on ch0
    first_voice_rec: float  # the VP's first voice sample on ch1
    segment_final: float  # the final segment with the wake phrase reached the VP
    answer_queued: float  # the answer was posted in chat and queued for the voice
    first_sound: float  # the speaker handed the first sentence to the page (= ch1's push)
    uplink_sound: float | None = None  # the client started sending sound (replica meter)

    @property
    def question_end(self) -> float:
        """The question's end on the monotonic clock: ch1's first sample is ``first_sound``."""
        return self.first_sound - (self.first_voice_rec - self.question_end_rec)

    def parts(self) -> dict[str, float | None]:
        """The latency and its parts, in seconds (rounded to ms)."""
        end = self.question_end
        uplink = None if self.uplink_sound is None else self.uplink_sound - end
        return {
            "question_end_to_first_voice_s": round(self.first_voice_rec - self.question_end_rec, 3),
            "transcription_s": round(self.segment_final - end, 3),
            "assistant_and_chat_post_s": round(self.answer_queued - self.segment_final, 3),
            "synthesis_unmute_play_s": round(self.first_sound - self.answer_queued, 3),
            "question_end_to_uplink_sound_s": None if uplink is None else round(uplink, 3),
        }


async def spoken_run(platform: str, tmp: Path, index: int) -> dict[str, Any]:
    """One VP, one spoken question; the latency from its end to the VP's first sound."""
    question_pcm = synthesize_speech(SPOKEN_QUESTION, sample_rate=SAMPLE_RATE)
    spoken = loud_span(question_pcm, SAMPLE_RATE)
    assert spoken is not None
    question_s = spoken[1] - spoken[0]
    wall_minus_mono = time.time() - time.monotonic()
    finals: list[tuple[float, str]] = []

    def on_segment(segment: TranscriptSegment) -> None:
        if not segment.is_partial and segment.channel == "CALLER":
            finals.append((time.monotonic(), segment.transcript))

    with voice_meeting(
        platform,
        50 + index,
        tmp / f"spoken{index}",
        max_duration=60,
        participants=[
            # Bob is silent and speaks first; Alice asks once when told to: her
            # question, 0.5 s, a short tone (the replica appends one), 30 s of silence.
            ParticipantSpec(name="Bob", silent_loads=1000),
            ParticipantSpec(name="Alice", symbols=(0,), speech=SPOKEN_QUESTION, pause_s=30),
        ],
        speak_turn_s=600,
    ) as (control, config):
        vp = VirtualParticipant(config, on_segment=on_segment)
        task = asyncio.create_task(vp.run())
        try:
            await vp.joined_event.wait()
            await asyncio.sleep(3)
            control.command("speak", name="Alice")
            for _ in range(600):  # the answer is spoken within 30 s, or never
                speaker = vp.speaker
                if speaker is not None and speaker.stats.first_sound_at:
                    break
                await asyncio.sleep(0.05)
            for _ in range(300):
                speaker = vp.speaker
                if speaker is None or not speaker.speaking:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)
        finally:
            vp.stop()
            result = await task
        uplink = [r for r in control.reported("uplink") if r.get("sending")]
    voice = result.stats.get("voice", {})
    chat_out = [line for line in _chat(config.effective_out_dir) if line["direction"] == "out"]
    row: dict[str, Any] = {
        "final": result.final.status.value,
        "utterances": voice.get("utterances"),
        "barge_ins": voice.get("barge_ins"),
        "spoken_s": voice.get("spoken_s"),
        "heard": [text for _t, text in finals],
        "answer": [line["text"] for line in chat_out if line.get("assistant")],
    }
    asked = next((t for t, text in finals if text.lower().startswith(("ok", "okay"))), None)
    first_sound = (voice.get("first_sound_at") or [None])[0]
    wav = config.effective_out_dir / "recording.wav"
    if asked is None or first_sound is None or not wav.exists():
        return {**row, "latency": None}
    recording, rate = sf.read(str(wav), dtype="int16", always_2d=True)
    ch0 = np.ascontiguousarray(recording[:, 0])
    onset = loud_span(ch0, rate)
    if onset is None:
        return {**row, "latency": None}
    # Her speech as ch0 carries it: the loud windows from its onset until just before the
    # tone (0.5 s after the speech); cross-checked with the synthesized question's length.
    window = ch0[round(onset[0] * rate) : round((onset[0] + question_s + 0.3) * rate)]
    heard = loud_span(window, rate)
    question_end_rec = onset[0] + (heard[1] if heard is not None else question_s)
    first_voice_rec = first_sound_after(np.ascontiguousarray(recording[:, 1]), rate, onset[0])
    if first_voice_rec is None:
        return {**row, "latency": None}
    queued = first_sound - voice["first_sound_latency_s"][0]
    first_wall = first_sound + wall_minus_mono
    uplink_at = next((float(r["at"]) for r in uplink if float(r["at"]) >= first_wall - 1), None)
    timeline = SpokenTimeline(
        question_end_rec=question_end_rec,
        first_voice_rec=first_voice_rec,
        segment_final=asked,
        answer_queued=queued,
        first_sound=first_sound,
        uplink_sound=None if uplink_at is None else uplink_at - wall_minus_mono,
    )
    first_sentence = row["answer"][0].split(": ", 1)[-1] if row["answer"] else ""
    synth = EspeakNgSynthesizer()
    started = time.perf_counter()
    await synth.synthesize(first_sentence or "Alice and Bob are here.")
    return {
        **row,
        "question_s": round(question_s, 3),
        "question_on_ch0_s": round(question_end_rec - onset[0], 3),
        "timeline": {
            k: round(v, 3) if v is not None else None for k, v in asdict(timeline).items()
        },
        "latency": timeline.parts(),
        "first_sentence_synthesis_s": round(time.perf_counter() - started, 3),
    }


def median_spread(values: list[float]) -> dict[str, float] | None:
    """Median, min and max of ``values`` (None when empty)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def spoken_main(platform: str, runs: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vp-bench-voice-spoken-") as tmp:
        rows = [await spoken_run(platform, Path(tmp), i) for i in range(runs)]
    load_after = os.getloadavg()
    measured = [r["latency"] for r in rows if r["latency"] is not None]
    summary = {
        key: median_spread([m[key] for m in measured if m[key] is not None])
        for key in (measured[0] if measured else {})
    }
    return {
        "platform": platform,
        "question": "spoken",
        "spoken_question": SPOKEN_QUESTION,
        "latency": summary,
        # 1/5/15-minute load averages of this 2-core machine (others' tests run alongside)
        "load_average": {"before": load_before, "after": load_after},
        "runs": rows,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--platform", default="zoom", choices=sorted(MEETING_IDS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--barge", action="store_true", help="Bob talks over the answer")
    parser.add_argument(
        "--question",
        default="chat",
        choices=("chat", "spoken"),
        help="Alice asks in chat (default) or says the question",
    )
    args = parser.parse_args()
    vplog.configure("INFO", stream=sys.stderr)  # stdout is the JSON
    if args.question == "spoken":
        print(json.dumps(await spoken_main(args.platform, args.runs), indent=2))
        return
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
