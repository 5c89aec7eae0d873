"""Contract 3 framing, pure."""

import json

import pytest

from vp.transcriber.protocol import (
    MAX_FRAME_BYTES,
    EndEvent,
    ProtocolError,
    SpeakerChangeEvent,
    StartEvent,
    TranscriptSegment,
    check_audio_frame,
    encode_event,
    parse_event,
    parse_server_message,
)


def test_start_has_contract_fields():
    raw = json.loads(encode_event(StartEvent(callId="c1", agentId="Bot", activeSpeaker="n/a")))
    assert raw["callEvent"] == "START"
    assert raw["callId"] == "c1"
    assert raw["agentId"] == "Bot"
    assert raw["samplingRate"] == 16000
    assert {"fromNumber", "toNumber", "activeSpeaker"} <= raw.keys()


def test_round_trip_and_unknown_events():
    for event in (
        StartEvent(callId="c", agentId="a"),
        SpeakerChangeEvent(callId="c", agentId="a", activeSpeaker="Ann"),
        EndEvent(callId="c"),
    ):
        assert parse_event(encode_event(event)) == event
    with pytest.raises(ProtocolError):
        parse_event('{"callEvent": "PAUSE", "callId": "c"}')
    with pytest.raises(ProtocolError):
        parse_event("not json")
    with pytest.raises(ProtocolError, match="callId"):
        parse_event('{"callEvent": "START", "agentId": "a"}')


def test_audio_frame_checks():
    check_audio_frame(b"\0" * MAX_FRAME_BYTES)
    with pytest.raises(ProtocolError):
        check_audio_frame(b"\0" * (MAX_FRAME_BYTES + 4))
    with pytest.raises(ProtocolError):
        check_audio_frame(b"\0" * 6)  # not whole stereo samples
    with pytest.raises(ProtocolError):
        check_audio_frame(b"")


def test_segment_wire_round_trip():
    seg = TranscriptSegment("c", "CALLER", "Ann-1.0", 1.0, 2.5, "hello", False, "Ann")
    wire = seg.to_wire()
    assert wire["EventType"] == "ADD_TRANSCRIPT_SEGMENT"
    assert parse_server_message(json.dumps(wire)) == seg
    assert parse_server_message('{"EventType": "OTHER"}') is None
