"""A launcher that records what it is asked and launches nothing.

For API behaviour where a subprocess adds nothing (auth, validation, idempotency, rate
limits, body caps, fuzzing): the real local launcher is exercised in test_api_launch.py,
test_console.py and test_local_launcher.py.
"""

from __future__ import annotations

from scheduler.errors import LaunchError
from scheduler.launcher import LaunchContext, Launcher
from scheduler.models import VpRecord


class RecordingLauncher(Launcher):
    name = "recording"

    def __init__(self, *, fail_with: str | None = None) -> None:
        self.submitted: list[str] = []
        self.cancelled: list[str] = []
        self.started = False
        self.closed = False
        self.fail_with = fail_with

    async def start(self, context: LaunchContext) -> None:
        self.context = context
        self.started = True

    async def submit(self, record: VpRecord) -> None:
        self.submitted.append(record.vp_id)
        if self.fail_with is not None:
            raise LaunchError(self.fail_with)

    async def cancel(self, record: VpRecord) -> None:
        self.cancelled.append(record.vp_id)

    async def aclose(self) -> None:
        self.closed = True
