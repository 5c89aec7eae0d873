"""The memory guard: report a VP close to its memory limit, and reload the meeting page once
before the kernel's OOM killer would end the call.

The limit is ``--memory-limit`` (``VP_MEMORY_LIMIT``) when given, measured against the PSS
of the VP's whole process tree (Python, Playwright's node driver, every Chromium process;
:mod:`vp.proctree`). Otherwise it is the cgroup's (an ECS task's): cgroup v2 ``memory.max``
or v1 ``memory.limit_in_bytes``, measured by the cgroup's own usage minus its inactive file
cache (the kernel reclaims that before it kills, so it is not pressure). No limit, no guard.

Above :data:`WARN_AT` of the limit the VP reports (a ``vp.memory_high`` log line, a warning
in summary.json's ``memory``, a note in the terminal status detail); above :data:`RELOAD_AT`
it reloads the meeting page through the page session's recovery (relaunch-and-rejoin, once
per call), which frees the renderer's memory. The decisions are :class:`MemoryGuardState`'s,
pure and clock-injected; :class:`MemoryGuard` is the sampling task around it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import structlog

from vp.call_part import CallPart
from vp.proctree import tree_pss_bytes
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

WARN_AT = 0.85
RELOAD_AT = 0.95
# After a warning, memory must fall below this before another excursion warns again, and
# warnings are at least WARN_EVERY s apart (a level hovering at 85 % warns once).
REARM_BELOW = 0.80
WARN_EVERY = 60.0
CHECK_EVERY = 5.0  # seconds between samples
# cgroup v1 writes "no limit" as the largest page-aligned 64-bit value; anything this large
# is no limit either.
NO_LIMIT = 1 << 60

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: str | int) -> int:
    """Bytes from ``536870912``, ``512M``, ``512MiB``, ``1.5G`` (binary units, any case)."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", value)
    if m is None:
        raise ValueError("must be bytes or a size like 512M, 1.5G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


class MemoryAction(Enum):
    NONE = "none"
    WARN = "warn"
    RELOAD = "reload"


@dataclass
class MemoryGuardState:
    """The guard's decisions over (used bytes, time) samples; no I/O, no clock of its own."""

    limit_bytes: int
    max_reloads: int = 1
    warn_at: float = WARN_AT
    reload_at: float = RELOAD_AT
    peak_bytes: int = 0
    warnings: list[dict[str, float]] = field(default_factory=list)
    reloads: int = 0
    _armed: bool = True
    _last_warning: float | None = None

    def observe(self, used: int, now: float) -> MemoryAction:
        """One sample: ``RELOAD`` above reload_at (while a reload is left), else ``WARN`` on
        crossing warn_at (re-armed once below REARM_BELOW, at most every WARN_EVERY s)."""
        self.peak_bytes = max(self.peak_bytes, used)
        fraction = used / self.limit_bytes
        if fraction < REARM_BELOW:
            self._armed = True
        if fraction >= self.reload_at and self.reloads < self.max_reloads:
            self.reloads += 1
            self._note_warning(fraction, now)
            return MemoryAction.RELOAD
        rested = self._last_warning is None or now - self._last_warning >= WARN_EVERY
        if fraction >= self.warn_at and self._armed and rested:
            self._note_warning(fraction, now)
            return MemoryAction.WARN
        return MemoryAction.NONE

    def _note_warning(self, fraction: float, now: float) -> None:
        self._armed = False
        self._last_warning = now
        self.warnings.append({"at": now, "fraction": round(fraction, 3)})


# -- where the limit comes from --------------------------------------------------------------
@dataclass(frozen=True)
class MemoryLimit:
    """A limit, where it came from, and how to read the usage it applies to (bytes)."""

    limit_bytes: int
    source: str  # "--memory-limit", "cgroup v2", "cgroup v1", "ecs task"
    usage: Callable[[], int | None]


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2 unlimited) is None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> tuple[list[Path], list[Path]]:
    """Candidate v2 and v1 memory cgroup folders of this process (its own, then the root
    as mounted in a container, where the process sees its cgroup at the mount point)."""
    v2, v1 = [], []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":
            v2.append(root / rel)
        elif "memory" in controllers.split(","):
            v1.append(root / "memory" / rel)
    v2.append(root)
    v1.append(root / "memory")
    return v2, v1


def cgroup_limit(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> MemoryLimit | None:
    """This process's cgroup memory limit (v2, else v1), or None when there is none."""
    v2, v1 = _cgroup_dirs(root, proc_cgroup)
    for folder in v2:
        limit = _read_int(folder / "memory.max")
        if limit is not None and limit < NO_LIMIT:
            return MemoryLimit(limit, "cgroup v2", _cgroup_usage(folder, "memory.current", ""))
    for folder in v1:
        limit = _read_int(folder / "memory.limit_in_bytes")
        if limit is not None and limit < NO_LIMIT:
            usage = _cgroup_usage(folder, "memory.usage_in_bytes", "total_")
            return MemoryLimit(limit, "cgroup v1", usage)
    return None


def _cgroup_usage(folder: Path, current: str, prefix: str) -> Callable[[], int | None]:
    def usage() -> int | None:
        used = _read_int(folder / current)
        if used is None:
            return None
        return max(0, used - _stat_value(folder / "memory.stat", prefix + "inactive_file"))

    return usage


def ecs_task_limit(environ: Mapping[str, str] | None = None) -> int | None:
    """The ECS task's memory limit in bytes from the task metadata endpoint (v4), or None.

    On Fargate the limit may be set on the task only, in a cgroup above the container's that
    the container cannot see; the metadata endpoint always has it (``Limits.Memory``, MiB)."""
    base = (os.environ if environ is None else environ).get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        return None
    try:
        with urllib.request.urlopen(f"{base}/task", timeout=2) as response:  # noqa: S310
            memory = json.loads(response.read(1 << 20))["Limits"]["Memory"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(memory) << 20 if isinstance(memory, int | float) and memory > 0 else None


def find_limit(
    configured: int | None,
    *,
    root_pid: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> MemoryLimit | None:
    """``configured``, else the cgroup's limit, else the ECS task's, else None. A limit
    that is not a visible cgroup's is measured on the process tree of ``root_pid`` (default
    this process). Blocking (files, and the metadata endpoint on ECS): call it off the loop."""
    pid = os.getpid() if root_pid is None else root_pid
    if configured is not None:
        return MemoryLimit(configured, "--memory-limit", lambda: tree_pss_bytes(pid))
    found = cgroup_limit()
    if found is not None:
        return found
    task = ecs_task_limit(environ)
    if task is not None:
        return MemoryLimit(task, "ecs task", lambda: tree_pss_bytes(pid))
    return None


# -- the sampling task -------------------------------------------------------------------------
class MemoryGuard:
    """Samples ``limit.usage`` every CHECK_EVERY s (off the event loop: reading /proc walks
    every process) and acts on the state's decisions: a log line, ``reload(cause)``."""

    def __init__(
        self,
        limit: MemoryLimit,
        *,
        reload: Callable[[str], None],
        can_reload: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._reload = reload
        self._clock = clock
        self._started = clock()
        self.state = MemoryGuardState(limit.limit_bytes, max_reloads=1 if can_reload else 0)

    async def run(self) -> None:
        while True:
            used = await asyncio.to_thread(self.limit.usage)
            if used is not None:
                self.sample(used)
            await asyncio.sleep(CHECK_EVERY)

    def sample(self, used: int) -> MemoryAction:
        action = self.state.observe(used, self._clock() - self._started)
        if action is MemoryAction.NONE:
            return action
        fields = {
            "used_bytes": used,
            "limit_bytes": self.limit.limit_bytes,
            "percent": round(100 * used / self.limit.limit_bytes, 1),
            "source": self.limit.source,
        }
        if action is MemoryAction.RELOAD:
            log.warning("vp.memory_high", action="reload", **fields)
            self._reload(
                f"memory at {fields['percent']:g}% of the {mib(self.limit.limit_bytes)} limit"
            )
        else:
            log.warning("vp.memory_high", action="report", **fields)
        return action

    def summary(self) -> dict[str, Any]:
        """summary.json's ``memory``."""
        s = self.state
        return {
            "limit_bytes": s.limit_bytes,
            "source": self.limit.source,
            "peak_bytes": s.peak_bytes,
            "warnings": [
                {"at_s": round(w["at"], 1), "percent": round(100 * w["fraction"], 1)}
                for w in s.warnings
            ],
            "reloads": s.reloads,
        }

    def note(self) -> str | None:
        """For the terminal status detail, when memory came near the limit."""
        s = self.state
        if not s.warnings:
            return None
        peak = round(100 * s.peak_bytes / s.limit_bytes)
        reloaded = f", page reloaded {s.reloads}x" if s.reloads else ""
        return f"memory peaked at {peak}% of the {mib(s.limit_bytes)} limit{reloaded}"


class MemoryWatch(CallPart):
    """The memory guard of one call, started once JOINED when a limit applies (else nothing
    runs). Owns the sampling task: :meth:`aclose` cancels and awaits it."""

    def __init__(self) -> None:
        self.guard: MemoryGuard | None = None
        self._owner = TaskOwner()

    async def start(
        self, configured: int | None, *, reload: Callable[[str], None], can_reload: bool
    ) -> None:
        """Find the limit (off the loop) and start sampling. In pool mode the process tree is
        every VP's: the guard reports, but one VP's reload would not help (``can_reload``)."""
        limit = await asyncio.to_thread(find_limit, configured)
        if limit is None:
            return
        self.guard = MemoryGuard(limit, reload=reload, can_reload=can_reload)
        log.info("vp.memory_guard", limit_bytes=limit.limit_bytes, source=limit.source)
        self._owner.spawn(self.guard.run(), "memory-guard")

    def note(self) -> str | None:
        return self.guard.note() if self.guard is not None else None

    def summarize(self, stats: dict[str, Any]) -> None:
        if self.guard is not None:
            stats["memory"] = self.guard.summary()

    async def aclose(self) -> None:
        await self._owner.aclose()


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"
