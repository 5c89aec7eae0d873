"""The launcher extension point: how a stored VP gets started and stopped.

A launcher receives VPs that the service has already stored SCHEDULED. It owns the wait
until ``join_at`` (locally a timer; on AWS the Step Functions Wait state) and the launch,
which always begins with the *conditional* ``SCHEDULED → INITIALIZING`` transition, so a VP
cancelled in the meantime never launches.

Registry: :data:`LAUNCHERS` maps a name to ``"module:Class"``; classes are imported on first
use (the local launcher does not load boto3, the AWS one does not load subprocess code).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from scheduler.models import VpRecord
from scheduler.store import VpStore

LAUNCHERS: dict[str, str] = {
    "local": "scheduler.local_launcher:LocalLauncher",
    "aws": "scheduler.aws_launcher:AwsLauncher",
}


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """What the service hands a launcher at :meth:`Launcher.start`.

    ``store`` is the service's store (sync; call it via ``asyncio.to_thread``). ``publish``
    must be called (on the event loop) with every record the launcher changes, so live
    views (the console's server-sent events) see it; it never blocks.
    """

    store: VpStore
    publish: Callable[[VpRecord], None]


class Launcher(ABC):
    """Starts and stops VPs. One instance per service; methods run on its event loop."""

    name: ClassVar[str]

    @abstractmethod
    async def start(self, context: LaunchContext) -> None:
        """Called once before any submit. A launcher that waits itself (local) re-arms the
        store's pending VPs here; one whose waits live elsewhere (AWS) just keeps ``context``."""

    @abstractmethod
    async def submit(self, record: VpRecord) -> None:
        """Arrange for the SCHEDULED ``record`` to launch at ``record.join_at`` (at once when
        None or past). Returns quickly. Raises :class:`scheduler.errors.LaunchError` when the
        launch cannot even be arranged (the service then records FAILED launch-failed);
        failures later are recorded by the launcher itself, always ending the VP terminal."""

    @abstractmethod
    async def cancel(self, record: VpRecord) -> None:
        """Stop the VP. The service has already moved a SCHEDULED VP to CANCELLED; for a
        running one the launcher asks it to leave (SIGTERM / StopExecution), and the VP ends
        COMPLETED stopped if it had joined, else CANCELLED. Idempotent."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop owned tasks and processes (server shutdown)."""


def get_launcher_class(name: str) -> type[Launcher]:
    """The launcher class registered as ``name``; KeyError for an unknown name."""
    target = LAUNCHERS[name]
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    assert isinstance(cls, type) and issubclass(cls, Launcher)
    return cls
