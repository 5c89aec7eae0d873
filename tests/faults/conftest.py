"""Shared fixtures of the fault tests: a real Janus room with a speaking participant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vp.localmeeting.meeting import LocalMeeting
from vp.localmeeting.participant import SimulatedParticipant, tone_wav
from vp.runner import RunResult, VirtualParticipant


@pytest.fixture
async def meeting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalMeeting]:
    async with LocalMeeting(tmp_path / "janus") as m:
        monkeypatch.setenv("VP_ALLOWED_HOSTS", m.allowed_host)
        yield m


@pytest.fixture
async def alice(meeting: LocalMeeting, tmp_path: Path) -> AsyncIterator[SimulatedParticipant]:
    wav = tone_wav(tmp_path / "tones.wav")
    async with SimulatedParticipant(meeting.url, "Alice", wav) as participant:
        yield participant


async def start_and_wait_joined(
    vp: VirtualParticipant, timeout: float = 60
) -> asyncio.Task[RunResult]:
    """Start ``vp.run()`` and return its task once the VP is JOINED."""
    task = asyncio.create_task(vp.run())
    joined = asyncio.create_task(vp.joined_event.wait())
    await asyncio.wait({task, joined}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    joined.cancel()
    if task.done():
        raise AssertionError(f"the VP ended before JOINED: {task.result().final}")
    assert vp.lifecycle.joined, "not JOINED in time"
    return task


def statuses(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "status.jsonl").read_text().splitlines()]


def summary(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return result


def ch0(stereo: bytes) -> np.ndarray:
    return np.frombuffer(stereo, dtype="<i2").reshape(-1, 2)[:, 0].copy()
