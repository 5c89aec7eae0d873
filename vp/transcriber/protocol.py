"""Contract 3 — the LMA WebSocket transcriber wire format — as pure framing code.

Text frames are JSON call events; binary frames are raw PCM16 little-endian, two channels
interleaved (ch0 the meeting, ch1 the VP's own voice). Nothing here does I/O, so both the
client and the local reference server build and parse frames through this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vp.errors import describe_validation_error

SAMPLE_RATE = 16_000
CHANNELS = 2
BYTES_PER_SAMPLE = 2
FRAME_BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * BYTES_PER_SAMPLE  # 64,000
MAX_FRAME_MS = 200
MAX_FRAME_BYTES = FRAME_BYTES_PER_SECOND * MAX_FRAME_MS // 1000  # 12,800
LMA_PATH = "/api/v1/ws"


class ProtocolError(ValueError):
    """A frame that does not follow contract 3."""


class StartEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    callEvent: Literal["START"] = "START"  # noqa: N815 - wire names are LMA's
    callId: str = Field(min_length=1, max_length=256)  # noqa: N815
    agentId: str = Field(min_length=1, max_length=256)  # noqa: N815
    fromNumber: str = "Virtual Participant"  # noqa: N815
    toNumber: str = "LMA System"  # noqa: N815
    samplingRate: Literal[8000, 16000] = 16000  # noqa: N815
    activeSpeaker: str = "n/a"  # noqa: N815
    shouldRecordCall: bool = False  # noqa: N815


class SpeakerChangeEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    callEvent: Literal["SPEAKER_CHANGE"] = "SPEAKER_CHANGE"  # noqa: N815
    callId: str  # noqa: N815
    agentId: str  # noqa: N815
    activeSpeaker: str  # noqa: N815


class EndEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    callEvent: Literal["END"] = "END"  # noqa: N815
    callId: str  # noqa: N815


CallEvent = StartEvent | SpeakerChangeEvent | EndEvent
_EVENT_TYPES: dict[str, type[BaseModel]] = {
    "START": StartEvent,
    "SPEAKER_CHANGE": SpeakerChangeEvent,
    "END": EndEvent,
}


def encode_event(event: CallEvent) -> str:
    """Serialise a call event as the JSON text of one text frame."""
    return event.model_dump_json()


def parse_event(text: str) -> CallEvent:
    """Parse a client text frame; raise ProtocolError for anything contract 3 does not allow."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("text frame is not JSON") from exc
    if not isinstance(raw, dict):
        raise ProtocolError("text frame is not a JSON object")
    kind = raw.get("callEvent")
    model = _EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"unknown callEvent {kind!r}")
    try:
        return model.model_validate(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        fields = describe_validation_error(exc, names_only=True)
        raise ProtocolError(f"invalid {kind} event (fields: {fields})") from exc


def check_audio_frame(data: bytes) -> None:
    """Raise ProtocolError unless ``data`` is a valid stereo PCM16 frame of ≤ 200 ms."""
    if not data:
        raise ProtocolError("empty audio frame")
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(f"audio frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    if len(data) % (CHANNELS * BYTES_PER_SAMPLE):
        raise ProtocolError("audio frame is not a whole number of stereo PCM16 samples")


def frame_seconds(nbytes: int, sample_rate: int = SAMPLE_RATE) -> float:
    return nbytes / (sample_rate * CHANNELS * BYTES_PER_SAMPLE)


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """An LMA-shaped ADD_TRANSCRIPT_SEGMENT (our local transcriber's back-channel)."""

    call_id: str
    channel: Literal["CALLER", "AGENT"]
    segment_id: str
    start_time: float
    end_time: float
    transcript: str
    is_partial: bool
    speaker: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "EventType": "ADD_TRANSCRIPT_SEGMENT",
            "CallId": self.call_id,
            "Channel": self.channel,
            "SegmentId": self.segment_id,
            "StartTime": round(self.start_time, 3),
            "EndTime": round(self.end_time, 3),
            "Transcript": self.transcript,
            "IsPartial": self.is_partial,
            "Speaker": self.speaker,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> TranscriptSegment:
        try:
            channel = raw["Channel"]
            if channel not in ("CALLER", "AGENT"):
                raise ProtocolError(f"unknown Channel {channel!r}")
            return cls(
                call_id=str(raw["CallId"]),
                channel=channel,
                segment_id=str(raw["SegmentId"]),
                start_time=float(raw["StartTime"]),
                end_time=float(raw["EndTime"]),
                transcript=str(raw["Transcript"]),
                is_partial=bool(raw["IsPartial"]),
                speaker=str(raw.get("Speaker") or "n/a"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("malformed ADD_TRANSCRIPT_SEGMENT") from exc


def parse_server_message(text: str) -> TranscriptSegment | None:
    """Parse a server text frame; None for messages this client does not use."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(raw, dict) and raw.get("EventType") == "ADD_TRANSCRIPT_SEGMENT":
        return TranscriptSegment.from_wire(raw)
    return None
