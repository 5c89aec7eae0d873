"""Local WebRTC meeting infrastructure for ``vp demo``, integration tests and benchmarks.

* :class:`JanusServer` — a real Janus (HTTP API + AudioBridge only) on 127.0.0.1;
  :class:`JanusClient` manages AudioBridge rooms through its HTTP API.
* :class:`DemoSite` — serves Janus' demo pages, with ``settings.js`` pointing at our Janus.
* :class:`SimulatedParticipant` — a separate headless Chromium that speaks a WAV file
  (:func:`tone_wav`, :func:`speech_wav`, :func:`speech_then_tones_wav`) into a room.
"""

from vp.localmeeting.janus import JanusClient, JanusError, JanusServer
from vp.localmeeting.participant import (
    ParticipantError,
    SimulatedParticipant,
    check_fake_capture_wav,
    speech_then_tones_wav,
    speech_wav,
    tone_wav,
)
from vp.localmeeting.site import DemoSite

__all__ = [
    "DemoSite",
    "JanusClient",
    "JanusError",
    "JanusServer",
    "ParticipantError",
    "SimulatedParticipant",
    "check_fake_capture_wav",
    "speech_then_tones_wav",
    "speech_wav",
    "tone_wav",
]
