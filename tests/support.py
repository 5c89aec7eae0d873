"""Helpers shared by the test suites.

Tests wait for a condition, never for a fixed time: :func:`wait_until` polls a predicate until
it holds and fails with what it was waiting for once the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vp.config import JoinConfig

# The status history of a VP that joined and was then stopped (contract 2).
STOPPED_AFTER_JOINING = [
    "SCHEDULED",
    "INITIALIZING",
    "JOINING",
    "JOINED",
    "LEAVING",
    "COMPLETED",
]


async def wait_until(
    predicate: Callable[[], object],
    timeout: float = 20.0,
    what: str = "the condition",
    *,
    poll: Callable[[], Awaitable[object]] | None = None,
    interval: float = 0.05,
) -> None:
    """Return as soon as ``predicate()`` is true; raise AssertionError after ``timeout`` s.

    ``poll``, if given, is awaited before each check (to refresh what the predicate reads).
    """
    deadline = time.monotonic() + timeout
    while True:
        if poll is not None:
            await poll()
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def scribe_config(meeting_url: str, out: Path, transcriber_url: str, **options: Any) -> JoinConfig:
    """The test VP: "Scribe" joins ``meeting_url``, writes to ``out`` and streams to
    ``transcriber_url``; ``options`` are any other JoinConfig fields."""
    return JoinConfig(
        meeting_url=meeting_url,
        name="Scribe",
        out_dir=out,
        transcriber_url=transcriber_url,
        **options,
    )
