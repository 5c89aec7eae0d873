"""The files one call leaves in ``--out``: transcript.jsonl, chat.jsonl, speakers.jsonl (the
SPEAKER_CHANGE history), recording.wav and summary.json (status.jsonl is written by its
status sink).

:class:`CallArtifacts` opens and closes the files and turns chat messages and transcript
segments into their lines; :func:`build_summary` gathers the call's measurements for
summary.json (and for benchmarks and tests, through ``RunResult.stats``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vp.audio_health import AudioHealth
from vp.capture import CaptureHealth
from vp.files import JsonlWriter
from vp.lifecycle import StatusEvent
from vp.navguard import BlockedNavigation
from vp.pipeline import AudioPipeline
from vp.recording import WavRecorder
from vp.transcriber.client import TranscriberClient
from vp.transcriber.protocol import TranscriptSegment


class CallArtifacts:
    """The call's output files; every method is a no-op before :meth:`open` / after
    :meth:`close`, so the runner can call them whatever state the call is in."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._transcript: JsonlWriter | None = None
        self._chat: JsonlWriter | None = None
        self._speakers: JsonlWriter | None = None
        self._events: JsonlWriter | None = None
        self._recorder: WavRecorder | None = None

    def open(self) -> None:
        self._transcript = JsonlWriter(self.out_dir / "transcript.jsonl")
        self._chat = JsonlWriter(self.out_dir / "chat.jsonl")
        self._speakers = JsonlWriter(self.out_dir / "speakers.jsonl")
        self._events = JsonlWriter(self.out_dir / "events.jsonl")
        self._recorder = WavRecorder(self.out_dir / "recording.wav")

    def record(self, stereo_frame: bytes) -> None:
        """Append one pipeline frame to recording.wav."""
        if self._recorder is not None:
            self._recorder.write(stereo_frame)

    def chat(self, sender: str, text: str, *, direction: str, assistant: bool = False) -> None:
        """One chat message, ``direction`` ``in`` (from the meeting) or ``out`` (posted)."""
        if self._chat is not None:
            self._chat.write(
                {
                    "ts": time.time(),
                    "sender": sender,
                    "text": text,
                    "direction": direction,
                    "assistant": assistant,
                }
            )

    def event(self, kind: str, **fields: Any) -> None:
        """One line of events.jsonl (``vp.capture_degraded``: ``start_s``, ``cause``), which
        the control plane turns into webhook events (scheduler.webhooks.line_event)."""
        if self._events is not None:
            self._events.write({"type": kind, **fields, "ts": time.time()})

    def speaker(self, name: str) -> None:
        """A SPEAKER_CHANGE: ``t`` is seconds into recording.wav (where the console's
        timeline puts it); the speaker holds the floor until the next line."""
        if self._speakers is not None:
            at = self._recorder.seconds if self._recorder is not None else 0.0
            self._speakers.write({"ts": time.time(), "t": round(at, 3), "speaker": name})

    def transcript(self, segment: TranscriptSegment) -> None:
        """A final transcript segment (partials are not kept)."""
        if segment.is_partial or self._transcript is None:
            return
        self._transcript.write(
            {
                "ts": time.time(),
                "segment_id": segment.segment_id,
                "channel": segment.channel,
                "speaker": segment.speaker,
                "start": segment.start_time,
                "end": segment.end_time,
                "text": segment.transcript,
            }
        )

    def close(self) -> None:
        for writer in (self._transcript, self._chat, self._speakers, self._events):
            if writer is not None:
                writer.close()
        if self._recorder is not None:
            self._recorder.close()

    def write_summary(self, stats: dict[str, Any]) -> None:
        if self.out_dir.exists():
            (self.out_dir / "summary.json").write_text(json.dumps(stats, indent=2) + "\n")


def build_summary(
    final: StatusEvent,
    *,
    pipeline: AudioPipeline | None,
    client: TranscriberClient | None,
    capture: CaptureHealth | None,
    audio: AudioHealth,
    rejoins: list[dict[str, Any]] | None,
    blocked: list[BlockedNavigation],
    join_latency_s: float | None,
) -> dict[str, Any]:
    """summary.json's content. ``rejoins`` is None when the call never opened a page."""
    stats: dict[str, Any] = {"final": final.to_dict()}
    if pipeline is not None:
        p = pipeline.stats
        stats["pipeline"] = {
            "audio_seconds": round(p.emitted_seconds, 3),
            "frames": p.frames,
            "max_frame_bytes": p.max_frame_bytes,
            "filled_seconds": round(p.filled_samples / 16000, 3),
            "dropped_seconds": round(p.dropped_samples / 16000, 3),
        }
    if client is not None:
        c = client.stats
        stats["transcriber"] = {
            "connects": c.connects,
            "sent_seconds": round(c.sent_seconds, 3),
            "dropped_seconds": round(c.dropped_seconds, 3),
            "lost_seconds": round(c.lost_seconds, 3),
            "buffer_seconds": round(client.buffer_seconds, 3),
            "outages": c.outages,
            "outage_seconds": round(c.outage_seconds, 3),
            "longest_outage_s": round(c.longest_outage_s, 3),
            "end_sent": c.end_sent,
        }
    if capture is not None:
        stats["capture"] = {
            "state": capture.state,
            "frames": capture.frames,
            "max_sources": capture.max_sources,
            "dropped_in_page": capture.dropped_in_page,
            "warnings": sorted(audio.warnings),
        }
    if rejoins is not None:
        stats["browser"] = {
            "rejoins": rejoins,
            "audio_gap_s": round(audio.gap_seconds, 3),
            "navigations_blocked": [b.host for b in blocked],
        }
    if join_latency_s is not None:
        stats["join_latency_s"] = round(join_latency_s, 3)
    return stats


def with_losses(
    detail: str | None,
    *,
    rejoins: list[dict[str, Any]],
    audio: AudioHealth,
    client: TranscriberClient | None,
) -> str | None:
    """The terminal detail, plus what faults cost the call (rejoins, audio lost)."""
    notes = []
    if rejoins:
        notes.append(f"rejoined after: {rejoins[0]['cause']} (audio gap {audio.gap_seconds:.1f} s)")
    if client is not None and client.stats.lost_seconds >= 0.05:
        notes.append(f"{client.stats.lost_seconds:.1f} s of audio did not reach the transcriber")
    if not notes:
        return detail
    return "; ".join([detail, *notes] if detail else notes)
