"""Incoming-video suppression: the VP records audio only, so it stops paying for the cameras
(and screen shares) a meeting sends it.

Each platform driver chooses how (:attr:`platforms.base.PlatformDriver.incoming_video`):

* :attr:`IncomingVideo.NEGOTIATE_INACTIVE` — an init script (``incoming_video.js``, every
  frame) sets the page's receive-only video transceivers to ``inactive`` whenever the client
  creates an offer or answer, so the other side never sends those streams: nothing is received,
  decoded or rendered, and the client's signalling, audio, data channels, UI, active-speaker
  signals and chat are untouched (see the script's comment).
* :attr:`IncomingVideo.NONE` — nothing to do (an audio-only room: Janus AudioBridge).

``VP_INCOMING_VIDEO=receive`` turns suppression off for every platform (a switch for measuring
before/after, and an escape hatch should a client ever refuse a negotiation without video).
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

from playwright.async_api import BrowserContext

from vp.settings import VpSettings

_SCRIPT = Path(__file__).with_name("incoming_video.js")
_PLACEHOLDER = "__VP_INCOMING_VIDEO_CONFIG__"


class IncomingVideo(StrEnum):
    """How a platform's incoming video is kept from costing the VP anything."""

    NEGOTIATE_INACTIVE = "negotiate-inactive"
    NONE = "none"


@cache
def _source() -> str:
    return _SCRIPT.read_text()


def incoming_video_script(mode: Literal["inactive", "receive"]) -> str:
    """The init script's source with its config (``inactive``: suppress; ``receive``: only
    report, change nothing)."""
    return _source().replace(_PLACEHOLDER, json.dumps({"mode": mode}))


def effective_mode(
    policy: IncomingVideo, setting: str | None = None
) -> Literal["inactive", "receive"]:
    """What the page does for a platform's ``policy`` and the ``VP_INCOMING_VIDEO`` setting
    (read from the environment when not given)."""
    if setting is None:
        setting = VpSettings.from_env(only=frozenset({"incoming_video"})).incoming_video
    if policy is IncomingVideo.NONE or setting == "receive":
        return "receive"
    return "inactive"


async def install_incoming_video(context: BrowserContext, policy: IncomingVideo) -> str:
    """Add the suppression init script to ``context`` (before the first navigation); returns
    the mode the page runs in."""
    mode = effective_mode(policy)
    await context.add_init_script(script=incoming_video_script(mode))
    return mode
