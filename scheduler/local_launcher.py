"""The local launcher: one ``vp join --json`` subprocess per VP, on this machine.

* Waits until ``join_at`` with a timer per VP, then queues for one of ``max_concurrent``
  slots; a queued VP stays SCHEDULED until its process starts (then INITIALIZING, the
  conditional move that a cancel wins against).
* Secrets never reach argv (visible in ``ps``): the meeting URL (it may carry ``pwd=``) and
  the passcode travel in the child's environment (``VP_MEETING_URL``, ``VP_PASSCODE``).
* The child's environment is built from an allow-list (:data:`CHILD_ENV_NAMES`,
  :data:`CHILD_ENV_PREFIXES`): a VP browses pages users choose, so it must not hold the
  server's secrets — no ``VP_AUTH_SECRET``, no transcriber JWT signing secret, no AWS keys.
* Output is private: each VP's folder is created 0700 and the child runs with umask 077,
  so every file it writes (transcript, recording, logs) is 0600.
* Every status object the child prints on stdout is written to the store and published.
* Cancel = SIGTERM (the child leaves and ends COMPLETED stopped, or CANCELLED before
  JOINED); SIGKILL after ``stop_timeout``.
* The reaper: a child that exits without a terminal status ends FAILED internal-error
  (or, when we asked it to stop, COMPLETED stopped / CANCELLED); a sweep every
  ``sweep_interval`` fails any live record no task of ours owns. No VP stays non-terminal.
* Restart: :meth:`start` re-arms SCHEDULED VPs; one whose time passed more than
  ``launch_grace`` ago ends FAILED launch-failed; one that was running when the previous
  server died ends FAILED internal-error (children die with the server: ``setpriv
  --pdeathsig``, so no orphan keeps a meeting open).

Child output goes to ``<out_root>/<vp_id>/`` (status/transcript/chat files, ``vp.log``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import structlog
from pydantic import ValidationError

from scheduler.errors import NotFound, StaleTransition
from scheduler.launcher import LaunchContext, Launcher
from scheduler.models import StatusObject, VpRecord, utc_now
from vp.lifecycle import Reason, Status
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

# What a VP child inherits from the server's environment; nothing else. System basics, the
# browser's and audio's plumbing, and the VP's non-secret settings (plus the transcriber's
# bearer token, which the VP needs to stream). Per-VP values (VP_MEETING_URL, VP_PASSCODE,
# VP_ID, VP_OUT_DIR, VP_PLATFORM, VP_CALL_ID) are never inherited: the launcher sets its own.
CHILD_ENV_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
        "XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY", "PULSE_SERVER", "PULSE_RUNTIME_PATH",
        "FONTCONFIG_PATH", "FONTCONFIG_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "PLAYWRIGHT_BROWSERS_PATH", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE", "AWS_REGION", "AWS_DEFAULT_REGION",
        "VP_ALLOWED_HOSTS", "VP_LOG_LEVEL", "VP_VOICE", "VP_NAME",
        "VP_TRANSCRIBER_URL", "VP_TRANSCRIBER_TOKEN", "VP_TRANSCRIBER_ENGINE",
        "VP_TRANSCRIBE_LANGUAGE", "VP_TRANSCRIBER_WAIT", "VP_TRANSCRIBER_BUFFER",
        "VP_MAX_DURATION", "VP_JOIN_TIMEOUT", "VP_ALONE_TIMEOUT", "VP_INTRO_MESSAGE",
        "VP_EXIT_MESSAGE", "VP_INVITED_BY", "VP_WAKE_PHRASES", "VP_ASSISTANT_ENGINE",
        "VP_CHROMIUM", "VP_CHROMIUM_ARGS", "VP_HEADLESS_SHELL", "VP_CAPTURE_TRANSPORT",
        "VP_JANUS",
    }
)  # fmt: skip
CHILD_ENV_PREFIXES = ("LC_",)
MAX_STATUS_LINE = 64 * 1024


def child_env(
    source: Mapping[str, str], extra: Mapping[str, str], meeting_url: str, passcode: str | None
) -> dict[str, str]:
    """A VP child's environment: the allow-listed part of ``source``, ``extra`` as given, and
    its meeting (never argv)."""
    env = {
        key: value
        for key, value in source.items()
        if key in CHILD_ENV_NAMES or key.startswith(CHILD_ENV_PREFIXES)
    }
    env.update(extra)
    env["VP_MEETING_URL"] = meeting_url
    if passcode:
        env["VP_PASSCODE"] = passcode
    return env


def default_vp_command() -> list[str]:
    """``python -m vp.cli`` of this interpreter, so the child runs the same code."""
    return [sys.executable, "-m", "vp.cli"]


def reaped_status(joined: bool, reason: Reason) -> tuple[Status, Reason | None]:
    """How a VP the launcher ends itself ends: a stop COMPLETED once joined (else CANCELLED),
    anything else FAILED with its reason."""
    if reason is Reason.STOPPED:
        return (Status.COMPLETED, Reason.STOPPED) if joined else (Status.CANCELLED, None)
    return Status.FAILED, reason


class LocalLauncher(Launcher):
    """Runs VPs as ``vp join`` subprocesses with bounded concurrency."""

    name: ClassVar[str] = "local"

    def __init__(
        self,
        out_root: Path,
        *,
        max_concurrent: int = 2,
        launch_grace: timedelta = timedelta(minutes=5),
        stop_timeout: float = 30.0,
        sweep_interval: float = 30.0,
        vp_command: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.out_root = Path(out_root)
        self.max_concurrent = max_concurrent
        self.launch_grace = launch_grace
        self.stop_timeout = stop_timeout
        self.sweep_interval = sweep_interval
        self.vp_command = list(vp_command) if vp_command else default_vp_command()
        self.extra_args = list(extra_args)
        self.env = env  # the environment the child's is filtered from (default: ours)
        self.extra_env = dict(extra_env or {})  # added as given (operator's, tests')
        self._clock = clock
        self._slots = asyncio.Semaphore(max_concurrent)
        self._owner = TaskOwner()
        self._vps: dict[str, asyncio.Task[None]] = {}  # vp_id → its wait/run task
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._stopping: set[str] = set()  # we asked these to stop
        self._context: LaunchContext | None = None
        self._closing = False
        self._setpriv = shutil.which("setpriv")

    # -- plumbing --------------------------------------------------------------------------
    @property
    def context(self) -> LaunchContext:
        if self._context is None:
            raise RuntimeError("LocalLauncher.start() was not called")
        return self._context

    @property
    def running(self) -> int:
        """VPs with a live process."""
        return len(self._procs)

    def out_dir(self, vp_id: str) -> Path:
        return self.out_root / vp_id

    async def _transition(
        self,
        vp_id: str,
        status: Status,
        reason: Reason | None = None,
        detail: str | None = None,
        *,
        expected: Status | None = None,
        ts: str | None = None,
    ) -> VpRecord:
        record = await asyncio.to_thread(
            self.context.store.transition,
            vp_id,
            status,
            reason,
            detail,
            expected=expected,
            ts=ts,
        )
        self.context.publish(record)
        return record

    async def _get(self, vp_id: str) -> VpRecord | None:
        return await asyncio.to_thread(self.context.store.get, vp_id)

    async def _end(self, vp_id: str, reason: Reason, detail: str) -> None:
        """Make sure the VP ends terminal (a no-op when it is already)."""
        record = await self._get(vp_id)
        if record is None or record.terminal:
            return
        status, why = reaped_status(record.joined, reason)
        try:
            await self._transition(vp_id, status, why, detail)
        except StaleTransition:  # it ended meanwhile
            pass
        log.warning("vp.reaped", vp_id=vp_id, status=status.value, reason=str(why))

    # -- Launcher --------------------------------------------------------------------------
    async def start(self, context: LaunchContext) -> None:
        self._context = context
        await self.sweep(rearm=True)
        self._owner.spawn(self._sweep_forever(), name="local-launcher-sweep")

    async def submit(self, record: VpRecord) -> None:
        self._arm(record)

    async def cancel(self, record: VpRecord) -> None:
        vp_id = record.vp_id
        proc = self._procs.get(vp_id)
        if proc is None:
            task = self._vps.get(vp_id)
            if task is not None:
                task.cancel()  # waiting for its time or a slot: it never launches
            return
        self._stop_process(vp_id, proc)

    async def aclose(self) -> None:
        """Stop every running VP (they leave cleanly and record their end), then drop the
        timers: SCHEDULED VPs stay SCHEDULED in the store and are re-armed at next start."""
        self._closing = True  # a slot freed from now on launches nothing
        for vp_id, task in list(self._vps.items()):
            if vp_id not in self._procs:
                task.cancel()
        running = [self._vps[vp_id] for vp_id in list(self._procs) if vp_id in self._vps]
        for vp_id, proc in list(self._procs.items()):
            self._stop_process(vp_id, proc)
        if running:
            await asyncio.wait(running, timeout=self.stop_timeout + 5)
        await self._owner.aclose()

    # -- scheduling ------------------------------------------------------------------------
    def _arm(self, record: VpRecord) -> None:
        if record.vp_id in self._vps:
            return
        task = self._owner.spawn(self._lifecycle(record), name=f"vp-{record.vp_id}")
        self._vps[record.vp_id] = task
        task.add_done_callback(functools.partial(self._forget, record.vp_id))

    def _forget(self, vp_id: str, task: asyncio.Task[None]) -> None:
        if self._vps.get(vp_id) is task:
            del self._vps[vp_id]

    async def sweep(self, *, rearm: bool = False) -> None:
        """Reconcile the store with our tasks: arm SCHEDULED VPs we do not track (at start:
        every one), fail those due too long ago, and fail live VPs no task of ours runs."""
        records = await asyncio.to_thread(self.context.store.list_active)
        now = self._clock()
        for record in records:
            if record.vp_id in self._vps:
                continue
            if record.status is Status.SCHEDULED:
                due = record.join_at or record.created_at
                if now - due > self.launch_grace:
                    await self._fail_stale(
                        record,
                        Reason.LAUNCH_FAILED,
                        "missed its start time while the "
                        f"control plane was down (due {due.isoformat()})",
                    )
                else:
                    log.info("vp.rearmed", vp_id=record.vp_id, at_start=rearm)
                    self._arm(record)
            else:
                await self._fail_stale(
                    record,
                    Reason.INTERNAL_ERROR,
                    f"the control plane lost this VP while it was {record.status.value}",
                )

    async def _fail_stale(self, record: VpRecord, reason: Reason, detail: str) -> None:
        try:
            await self._transition(
                record.vp_id, Status.FAILED, reason, detail, expected=record.status
            )
            log.warning("vp.reaped", vp_id=record.vp_id, reason=reason.value)
        except (StaleTransition, NotFound):
            pass  # it moved meanwhile: not stale after all

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except Exception as exc:  # the sweep must outlive a bad moment of the store
                log.error("sweep.failed", error=type(exc).__name__)

    async def _lifecycle(self, record: VpRecord) -> None:
        vp_id = record.vp_id
        try:
            if record.join_at is not None:
                delay = (record.join_at - self._clock()).total_seconds()
                if delay > 0:
                    await asyncio.sleep(delay)
            async with self._slots:
                if self._closing:
                    return  # stays SCHEDULED; re-armed at the next start
                try:
                    launched = await self._transition(
                        vp_id, Status.INITIALIZING, expected=Status.SCHEDULED
                    )
                except (StaleTransition, NotFound):
                    log.info("vp.not_launched", vp_id=vp_id)  # cancelled meanwhile
                    return
                try:
                    await self._run_process(launched)
                except asyncio.CancelledError:
                    # Shut down between INITIALIZING and the end: never leave it live.
                    await asyncio.shield(
                        self._end(vp_id, Reason.STOPPED, "the control plane shut down")
                    )
                    raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("vp.launcher_error", vp_id=vp_id, error=type(exc).__name__)
            await self._end(vp_id, Reason.INTERNAL_ERROR, f"launcher error: {type(exc).__name__}")

    # -- the process -----------------------------------------------------------------------
    def _command(self, record: VpRecord) -> list[str]:
        args = [
            "join",
            "--json",
            # "--opt=value": a name like "--help" stays a value
            f"--vp-id={record.vp_id}",
            f"--platform={record.platform}",
            f"--name={record.name}",
            f"--out={self.out_dir(record.vp_id)}",
            *self.extra_args,
        ]
        prefix = [self._setpriv, "--pdeathsig", "TERM"] if self._setpriv else []
        return [*prefix, *self.vp_command, *args]

    async def _run_process(self, record: VpRecord) -> None:
        vp_id = record.vp_id
        secrets = await asyncio.to_thread(self.context.store.get_secrets, vp_id)
        if secrets is None:
            await self._end(vp_id, Reason.LAUNCH_FAILED, "the VP's meeting was not stored")
            return
        if shutil.which(self.vp_command[0]) is None:
            await self._end(
                vp_id, Reason.LAUNCH_FAILED, f"cannot start vp: {self.vp_command[0]} not found"
            )
            return
        out_dir = self.out_dir(vp_id)
        self.out_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        out_dir.mkdir(mode=0o700, exist_ok=True)
        out_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
        log_fd = os.open(out_dir / "vp.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(log_fd, "ab") as stderr:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._command(record),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    env=child_env(
                        os.environ if self.env is None else self.env,
                        self.extra_env,
                        secrets.meeting_url,
                        secrets.passcode,
                    ),
                    start_new_session=True,  # a Ctrl-C of the server is ours to relay
                    umask=0o077,  # everything the VP writes is the owner's only
                    limit=MAX_STATUS_LINE,
                )
            except OSError as exc:
                await self._end(vp_id, Reason.LAUNCH_FAILED, f"cannot start vp: {exc.strerror}")
                return
        self._procs[vp_id] = proc
        log.info("vp.process_started", vp_id=vp_id, pid=proc.pid)
        try:
            await asyncio.to_thread(self.context.store.set_launch_handle, vp_id, f"pid:{proc.pid}")
            reported = await self._follow(vp_id, proc)
            code = await proc.wait()
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
            raise
        finally:
            self._procs.pop(vp_id, None)
        if vp_id in self._stopping:
            self._stopping.discard(vp_id)
            await self._end(vp_id, Reason.STOPPED, f"stopped; vp exited with code {code}")
        elif not reported:
            await self._end(
                vp_id, Reason.LAUNCH_FAILED, f"vp exited with code {code} before reporting a status"
            )
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            await self._end(vp_id, Reason.INTERNAL_ERROR, f"vp was killed by {name}")
        else:
            await self._end(
                vp_id, Reason.INTERNAL_ERROR, f"vp exited with code {code} without a final status"
            )

    async def _follow(self, vp_id: str, proc: asyncio.subprocess.Process) -> bool:
        """Write every status object the child prints to the store until its stdout closes;
        True when it printed at least one of its own."""
        assert proc.stdout is not None
        reported = False
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # a line over the limit: not a status object
                continue
            if not line:
                return reported
            try:
                item = StatusObject.model_validate_json(line)
            except ValidationError:
                log.warning("vp.unparsed_output", vp_id=vp_id, length=len(line))
                continue
            if item.vp_id != vp_id:
                log.warning("vp.foreign_status", vp_id=vp_id)
                continue
            reported = True
            current = await self._get(vp_id)
            if current is None or (
                current.status is item.status and item.status is Status.INITIALIZING
            ):
                continue  # the child's INITIALIZING repeats ours
            try:
                await self._transition(vp_id, item.status, item.reason, item.detail, ts=item.ts)
            except StaleTransition as exc:
                log.warning("vp.status_refused", vp_id=vp_id, error=str(exc))

    def _stop_process(self, vp_id: str, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        first = vp_id not in self._stopping
        self._stopping.add(vp_id)
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return
        if first:
            self._owner.spawn(self._kill_later(vp_id, proc), name=f"vp-{vp_id}-kill")

    async def _kill_later(self, vp_id: str, proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), self.stop_timeout)
        except TimeoutError:
            log.warning("vp.kill", vp_id=vp_id)
            try:
                proc.kill()
            except ProcessLookupError:
                pass
