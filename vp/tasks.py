"""Owned background tasks: every task vp starts has an owner that cancels and awaits it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")


class TaskOwner:
    """Starts tasks, keeps references, and on :meth:`aclose` cancels and awaits them all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget ``task`` and retrieve its exception: an unretrieved one would be printed
        by asyncio at garbage collection with its full text (which may quote a secret)."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("task.failed", task=task.get_name(), error=type(error).__name__)

    async def aclose(self, timeout: float = 5.0) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            log.error("task.not_cancelled", task=task.get_name())
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("task.ended_with_error", task=task.get_name())
