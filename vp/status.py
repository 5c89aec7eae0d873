"""Status sinks: where a VP's status objects (contract 2) go."""

from __future__ import annotations

import json
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import structlog

from vp import log as vplog
from vp.lifecycle import Lifecycle, Reason, Status, StatusEvent

log = structlog.get_logger(__name__)


class StatusSink(ABC):
    """Receives every status object of a VP, in order."""

    @abstractmethod
    def emit(self, event: StatusEvent) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called once at the end."""


class JsonlFileSink(StatusSink):
    """Appends status objects to status.jsonl, durably (one fsync per status: they are rare)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")

    def emit(self, event: StatusEvent) -> None:
        self._file.write(json.dumps(event.to_dict()) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class StreamSink(StatusSink):
    """``--json``: one status object per line on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def emit(self, event: StatusEvent) -> None:
        self._stream.write(json.dumps(event.to_dict()) + "\n")
        self._stream.flush()


class CallbackSink(StatusSink):
    def __init__(self, callback: Callable[[StatusEvent], None]) -> None:
        self._callback = callback

    def emit(self, event: StatusEvent) -> None:
        self._callback(event)


class FanOut(StatusSink):
    def __init__(self, sinks: Sequence[StatusSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: StatusEvent) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class StatusTrail(FanOut):
    """One VP's statuses: its lifecycle's transitions, details scrubbed of secrets, emitted to
    every sink in order."""

    def __init__(self, vp_id: str, sinks: Sequence[StatusSink]) -> None:
        super().__init__(sinks)
        self.lifecycle = Lifecycle(vp_id)

    def advance(
        self, status: Status, reason: Reason | None = None, detail: str | None = None
    ) -> StatusEvent:
        event = self.lifecycle.advance(status, reason, vplog.scrub(detail) if detail else None)
        self.emit(event)
        log.info("vp.status", status=status.value, reason=reason.value if reason else None)
        return event

    def finish(self, reason: Reason, detail: str | None) -> StatusEvent:
        """The terminal status (COMPLETED or FAILED, by ``reason``)."""
        event = self.lifecycle.finish(reason, vplog.scrub(detail) if detail else None)
        self.emit(event)
        log.info("vp.status", status=event.status.value, reason=reason.value)
        return event
