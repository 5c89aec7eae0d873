"""Pool mode: several meetings in one ``vp`` process and one Chromium.

A :class:`VpPool` runs one :class:`~vp.runner.VirtualParticipant` per meeting, all sharing one
:class:`~vp.browser.BrowserHost`: one Playwright driver, one Chromium browser process with its
network and audio services, one loopback capture server, and per meeting only what must be
separate — a browser context with its own renderer process, and the VP's own statuses, files,
pipeline and transcriber connection. That is what makes a meeting cheap in a larger task (the
marginal cost of a meeting is measured by ``bench/bench_vp.py --pool``).

Isolation: each VP runs in a task of its own (its own structlog context), and everything a VP
does ends inside its own ``run()`` (VirtualParticipant turns every failure into its own FAILED
status), so one VP failing, being stopped or having its page crash does not touch the others
(a crashed page is that VP's own: it rejoins in a new context of the same Chromium, see
vp/runner.py). Only Chromium itself is shared: if it exits, the first VP to notice has the pool
start a fresh one (:meth:`VpPool.shared_host`, under a lock, so one for all), and every VP
that was in it rejoins there once, like a VP with its own Chromium. A Chromium given to the
pool is not the pool's to restart: its VPs end ``browser-crashed``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vp.browser import BrowserHost
from vp.config import JoinConfig
from vp.errors import ConfigError, describe_validation_error
from vp.runner import RunResult, VirtualParticipant
from vp.status import StatusSink
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

SinksFactory = Callable[[JoinConfig], list[StatusSink]]


class PoolFile(BaseModel):
    """``vp pool --config FILE``: JSON ``{"defaults": {...}, "meetings": [{...}, ...]}`` (or
    just the list). Each meeting is a :class:`~vp.config.JoinConfig` (same field names as the
    ``vp join`` options, e.g. ``meeting_url``, ``name``, ``vp_id``, ``transcriber_url``);
    ``defaults`` fills in fields a meeting does not set."""

    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    meetings: list[dict[str, Any]] = Field(min_length=1, max_length=64)


def load_pool_file(path: Path, overrides: dict[str, Any] | None = None) -> list[JoinConfig]:
    """Read and validate a pool file; raises ConfigError naming the meeting and field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read a JSON pool file: {exc}") from exc
    try:
        pool = PoolFile.model_validate({"meetings": raw} if isinstance(raw, list) else raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc
    configs = []
    for i, meeting in enumerate(pool.meetings):
        fields = {**pool.defaults, **(overrides or {}), **meeting}
        try:
            configs.append(JoinConfig(**fields))
        except ValidationError as exc:
            raise ConfigError(f"{path}: meetings[{i}]: {describe_validation_error(exc)}") from exc
    return configs


def check_distinct(configs: Sequence[JoinConfig]) -> None:
    """VP ids and output directories must not repeat: each VP owns its files."""
    ids = [c.vp_id for c in configs]
    dirs = [c.effective_out_dir.resolve() for c in configs]
    if len(set(ids)) != len(ids):
        raise ConfigError("vp_id repeats in the pool: every VP needs its own id")
    if len(set(dirs)) != len(dirs):
        raise ConfigError("out_dir repeats in the pool: every VP needs its own directory")


class VpPool:
    """Runs several VPs in one Chromium.

    ``async with VpPool() as pool: pool.add(config); ...; results = await pool.wait()``.
    :meth:`add` may be called while others run; :meth:`stop` ends one VP or all of them.
    """

    def __init__(
        self,
        *,
        host: BrowserHost | None = None,
        sinks_for: SinksFactory | None = None,
        max_vps: int = 64,
    ) -> None:
        self._given_host = host
        self._host: BrowserHost | None = host
        self._sinks_for = sinks_for
        self._max_vps = max_vps
        self._owner = TaskOwner()
        self._host_lock = asyncio.Lock()
        self._closing = False
        self.vps: dict[str, VirtualParticipant] = {}
        self.results: dict[str, RunResult] = {}
        self._tasks: dict[str, asyncio.Task[RunResult]] = {}

    @property
    def host(self) -> BrowserHost | None:
        """The shared Chromium (None until the first VP started, or after aclose)."""
        return self._host

    async def __aenter__(self) -> VpPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- VPs -------------------------------------------------------------------------------
    async def add(self, config: JoinConfig) -> VirtualParticipant:
        """Start a VP for ``config`` in the pool (starting Chromium first if needed); returns
        it. Its statuses go to its own status.jsonl and to ``sinks_for(config)``."""
        if self._closing:
            raise ConfigError("the pool is closing")
        if config.vp_id in self.vps:
            raise ConfigError(f"vp_id {config.vp_id!r} is already in the pool")
        out = config.effective_out_dir.resolve()
        if any(vp.out_dir.resolve() == out for vp in self.vps.values()):
            raise ConfigError(f"out_dir of {config.vp_id!r} is already used in the pool")
        if len(self._tasks) - len(self.results) >= self._max_vps:
            raise ConfigError(f"the pool already runs {self._max_vps} VPs")
        host: BrowserHost | None
        try:
            host = await self.shared_host()
        except Exception as exc:
            # The VP then launches its own Chromium, and ends FAILED through its own statuses
            # if that fails too.
            log.error("pool.browser_start_failed", error=type(exc).__name__)
            host = None
        sinks = self._sinks_for(config) if self._sinks_for else []
        # A Chromium the pool started, it restarts for its VPs when it exits; a given one not.
        provider = self.shared_host if host is not None and host is not self._given_host else None
        vp = VirtualParticipant(config, sinks=sinks, browser=host, browser_provider=provider)
        self.vps[config.vp_id] = vp
        self._tasks[config.vp_id] = self._owner.spawn(self._run_one(vp), f"pool-vp-{config.vp_id}")
        return vp

    async def _run_one(self, vp: VirtualParticipant) -> RunResult:
        vp_id = vp.config.vp_id
        # A fresh structlog context per VP task: bind_vp() in run() stays with this VP.
        structlog.contextvars.clear_contextvars()
        try:
            result = await vp.run()
        except BaseException:
            # VirtualParticipant.run() ends every failure in its own FAILED status; only
            # cancellation (pool shutdown) gets here.
            log.warning("pool.vp_cancelled", vp_id=vp_id)
            raise
        self.results[vp_id] = result
        log.info(
            "pool.vp_done", vp_id=vp_id, status=result.final.status.value, running=self.running
        )
        return result

    @property
    def running(self) -> int:
        return sum(1 for t in self._tasks.values() if not t.done())

    def stop(self, vp_id: str | None = None) -> None:
        """Ask one VP (or every VP) to leave; they end COMPLETED ``stopped`` once joined."""
        if vp_id is None:
            for vp in self.vps.values():
                vp.stop()
            return
        try:
            self.vps[vp_id].stop()
        except KeyError:
            raise ConfigError(f"no VP {vp_id!r} in the pool") from None

    async def wait_for(self, vp_id: str) -> RunResult:
        """Until VP ``vp_id`` has ended; its result."""
        try:
            task = self._tasks[vp_id]
        except KeyError:
            raise ConfigError(f"no VP {vp_id!r} in the pool") from None
        return await asyncio.shield(task)

    async def wait(self) -> dict[str, RunResult]:
        """Until every VP added so far has ended; their results by vp_id."""
        while True:
            pending = [t for t in self._tasks.values() if not t.done()]
            if not pending:
                return dict(self.results)
            await asyncio.wait(pending)

    async def aclose(self) -> None:
        """Stop every VP, wait for them to leave, then close Chromium (if the pool owns it)."""
        self._closing = True
        self.stop()
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            # Leaving takes a few seconds per VP (in parallel); then cancel what is left.
            await asyncio.wait(pending, timeout=30)
        await self._owner.aclose()
        host, self._host = self._host, None
        if host is not None and host is not self._given_host:
            await host.aclose()

    # -- the shared Chromium -----------------------------------------------------------------
    async def shared_host(self) -> BrowserHost:
        """The pool's Chromium, started on first use, and again after it exited (for the VPs
        that were in it, which rejoin there, and for new ones)."""
        async with self._host_lock:
            host = self._host
            if host is not None and host.connected:
                return host
            if host is not None and host is self._given_host:
                return host  # not ours to restart: the VP will fail browser-crashed
            if host is not None:
                log.warning("pool.browser_restart")
                await host.aclose()
            host = BrowserHost()
            await host.start()
            self._host = host
            return host


async def run_pool(configs: Sequence[JoinConfig], *, json_output: bool = False) -> int:
    """``vp pool``: run ``configs`` in one Chromium until all end; SIGTERM/SIGINT stop them
    all. Exit code 0 when every VP ended COMPLETED or CANCELLED, 2 when any ended FAILED."""
    import signal

    from vp.status import StreamSink

    check_distinct(configs)
    stream = StreamSink() if json_output else None
    async with VpPool(sinks_for=lambda _c: [stream] if stream else []) as pool:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, pool.stop)
        try:
            for config in configs:
                await pool.add(config)
            results = await pool.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    return 2 if any(r.exit_code == 2 for r in results.values()) else 0
