"""``vp run --vp-id ID``: run one stored VP — the ECS task's entrypoint.

On AWS the task is started with ``VP_ID``, ``VP_BROKER_FUNCTION`` and its one-time
``VP_LAUNCH_TICKET`` (from the ECS environment file the workflow minted; see
:mod:`scheduler.broker`) and non-secret settings. Its role has no table or key access: it
trades the ticket once, through the broker Lambda, for its meeting (URL as given, platform,
name, passcode, ``join_at``), and every status goes back through the broker
(:class:`~scheduler.broker.BrokerSink`). Locally (``--db``/``VP_DB``, SQLite) — or with
``VP_TABLE_NAME`` for direct DynamoDB access — it reads the store itself and writes statuses
with :class:`StoreSink`. The transcriber URL/token come from ``VP_TRANSCRIBER_URL``/
``VP_TRANSCRIBER_TOKEN`` and the other ``vp join`` settings from their usual environment
variables (contract 1).

Joining on time: a task may start before ``join_at`` (the workflow's pre-start lead). It
prepares — Chromium up, page and capture ready — and enters JOINING only at ``join_at``.

Exit code as contract 1: 0 COMPLETED or CANCELLED, 2 FAILED, 1 usage (no such VP, a refused
ticket, unusable configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from scheduler.artifacts import UPLOAD_INTERVAL_S, ArtifactUploader, BrokeredS3
from scheduler.broker import (
    EVENT_KINDS,
    MAX_EVENT_BATCH,
    TICKET_ENV,
    BrokerClient,
    BrokerRefused,
    BrokerSink,
)
from scheduler.errors import StaleTransition
from scheduler.store import VpStore
from vp import log as vplog
from vp.config import JoinConfig
from vp.errors import ConfigError, describe_validation_error
from vp.lifecycle import Reason, Status, StatusEvent, utc_now_iso
from vp.settings import MEETING_FIELDS, VpSettings
from vp.status import StatusSink, StreamSink

log = structlog.get_logger(__name__)

EXIT_COMPLETED = 0
EXIT_USAGE = 1
EXIT_FAILED = 2


class StoreSink(StatusSink):
    """Writes every status object of the VP to the store, in order.

    The runner's lifecycle starts at INITIALIZING, which the launcher (the state machine's
    conditional SCHEDULED → INITIALIZING) has usually recorded already: a status the store
    already holds is skipped, not re-written. A status the store refuses (the VP was
    cancelled or failed meanwhile) is logged and dropped — the stored terminal status stands.
    A store error is logged and never crashes the VP; the launcher's final check records a
    VP that ended without a terminal status. Writes are synchronous: a VP has a handful of
    statuses, each one short write.
    """

    def __init__(self, store: VpStore, vp_id: str) -> None:
        self._store = store
        self._vp_id = vp_id
        self.written: list[Status] = []
        self.skipped: list[Status] = []

    def emit(self, event: StatusEvent) -> None:
        try:
            self._store.transition(
                self._vp_id, event.status, event.reason, event.detail, ts=event.ts
            )
            self.written.append(event.status)
        except StaleTransition:
            current = self._store.get(self._vp_id)
            self.skipped.append(event.status)
            if current is not None and current.status is event.status:
                log.info("vp.status_already_recorded", status=event.status.value)
            else:
                log.warning(
                    "vp.status_refused_by_store",
                    status=event.status.value,
                    stored=current.status.value if current else None,
                )
        except Exception as exc:  # the store is down: keep the VP running, say so
            self.skipped.append(event.status)
            log.error("vp.status_store_failed", status=event.status.value, error=type(exc).__name__)


def open_store(db: str | None, env: Mapping[str, str] | None = None) -> VpStore:
    """DynamoDB when ``VP_TABLE_NAME`` is set, else SQLite at ``db``."""
    env = os.environ if env is None else env
    # Only VP_TABLE_NAME: a bad unrelated variable is reported in the store (build_config).
    if VpSettings.from_env(env, only=frozenset({"table_name"})).table_name:
        from scheduler.dynamodb_store import DynamoDbStore

        return DynamoDbStore.from_env(env)
    if not db:
        raise ConfigError("vp run: set VP_TABLE_NAME (DynamoDB) or --db / VP_DB (SQLite)")
    from scheduler.sqlite_store import SqliteStore

    return SqliteStore(db)


def _fail(store: VpStore, vp_id: str, detail: str) -> None:
    """Record FAILED launch-failed for a VP that cannot start (best effort)."""
    try:
        store.transition(vp_id, Status.FAILED, Reason.LAUNCH_FAILED, detail)
    except Exception as exc:
        log.warning("vp.run_failure_not_recorded", error=type(exc).__name__)


def config_for(
    vp_id: str,
    *,
    meeting_url: str,
    platform: str,
    name: str,
    passcode: str | None,
    env: Mapping[str, str],
) -> JoinConfig:
    """The VP's JoinConfig: its meeting (from the store or the broker) and ``env``'s
    settings. Raises pydantic's ValidationError."""
    return JoinConfig(
        meeting_url=meeting_url,
        platform=platform,
        name=name,
        passcode=passcode,
        vp_id=vp_id,
        # The meeting comes from the store or the broker, never from the environment.
        **VpSettings.from_env(env).join_fields(exclude=MEETING_FIELDS),
    )


def build_config(store: VpStore, vp_id: str, env: Mapping[str, str]) -> JoinConfig | int:
    """The VP's JoinConfig from the store and ``env``; or the exit code to end with."""
    record = store.get(vp_id)
    if record is None:
        print(f"vp run: no VP {vp_id} in the store", file=sys.stderr)
        return EXIT_USAGE
    if record.terminal:
        log.warning("vp.run_already_ended", vp_id=vp_id, status=record.status.value)
        return EXIT_FAILED if record.status is Status.FAILED else EXIT_COMPLETED
    secrets = store.get_secrets(vp_id)
    if secrets is None:
        _fail(store, vp_id, "the VP's meeting secrets are missing from the store")
        return EXIT_USAGE
    try:
        return config_for(
            vp_id,
            meeting_url=secrets.meeting_url,
            platform=record.platform,
            name=record.name,
            passcode=secrets.passcode,
            env=env,
        )
    except ValidationError as exc:
        # Field (or variable) names only: the values may be secrets (the transcriber token).
        bad = describe_validation_error(exc, names_only=True)
        _fail(store, vp_id, f"invalid task configuration: {bad}")
        print(f"vp run: invalid configuration: {bad}", file=sys.stderr)
        return EXIT_USAGE


async def _run_vp(
    config: JoinConfig,
    sinks: list[StatusSink],
    join_at: datetime | None,
    json_output: bool,
    uploader: ArtifactUploader | None = None,
) -> int:
    """Run the VP; with ``uploader``, its artifacts go to S3 while it runs and whole at
    the end (the uploader's task is owned here: cancelled, awaited, then ``finish``)."""
    from vp.runner import VirtualParticipant

    if json_output:
        sinks.append(StreamSink())
    vp = VirtualParticipant(config, sinks=sinks, join_not_before=join_at)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, vp.stop)
    uploading = asyncio.create_task(uploader.run(), name="artifact-upload") if uploader else None
    try:
        result = await vp.run()
    finally:
        if uploading is not None:
            uploading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await uploading
    if uploader is not None:
        await uploader.finish()
    return result.exit_code


def artifact_uploader(
    client: BrokerClient, config: JoinConfig, env: Mapping[str, str]
) -> ArtifactUploader | None:
    """The uploader of a brokered VP when the stack keeps artifacts (``VP_ARTIFACT_BUCKET``;
    ``VP_ARTIFACT_UPLOAD_INTERVAL`` seconds between rounds, default 60)."""
    fields = frozenset({"artifact_bucket", "artifact_upload_interval"})
    try:
        settings = VpSettings.from_env(env, only=fields)
    except ValidationError:  # a bad interval: upload anyway, at the default pace
        log.warning("vp.artifact_upload_interval_invalid")
        settings = VpSettings.from_env(env, only=frozenset({"artifact_bucket"}))
    if not settings.artifact_bucket:
        return None
    interval = settings.artifact_upload_interval or UPLOAD_INTERVAL_S
    return ArtifactUploader(
        config.effective_out_dir,
        client.vp_id,
        settings.artifact_bucket,
        BrokeredS3(client.artifact_credentials),
        interval=max(1.0, interval),
    )


async def run_stored_vp(
    store: VpStore,
    vp_id: str,
    *,
    json_output: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the stored VP ``vp_id`` to its end; the exit code of contract 1."""
    env = os.environ if env is None else env
    config = await asyncio.to_thread(build_config, store, vp_id, env)
    if isinstance(config, int):
        return config
    record = await asyncio.to_thread(store.get, vp_id)
    join_at = record.join_at if record is not None else None
    return await _run_vp(config, [StoreSink(store, vp_id)], join_at, json_output)


FORWARD_INTERVAL = 1.0
_EVENT_FIELDS = {
    "transcript": ("ts", "speaker", "text", "start", "end"),
    "chat": ("ts", "sender", "text", "direction"),
    "events": ("ts", "type", "start_s", "cause"),  # vp.capture_degraded
}


class EventForwarder:
    """Contract 5 on AWS, the task's side: follows the VP's ``transcript.jsonl``,
    ``chat.jsonl`` and ``events.jsonl`` and sends their events through the broker, at most
    :data:`~scheduler.broker.MAX_EVENT_BATCH` per call, only the contract's fields (never a
    URL, passcode or token). A failed call is retried from the same place a tick later, so
    ``start`` (the count of that kind's events sent before) stays exact; memory is bounded by
    one read chunk per kind. Stops trying when the deployment has no webhooks."""

    def __init__(self, client: BrokerClient, out_dir: Path) -> None:
        self.client = client
        self.out_dir = out_dir
        self.offsets = dict.fromkeys(EVENT_KINDS, 0)
        self.sent = dict.fromkeys(EVENT_KINDS, 0)
        self.pending: dict[str, list[dict[str, Any]]] = {k: [] for k in EVENT_KINDS}
        self.enabled = True

    def forward_once(self) -> int:
        """Send what is new; returns how many events the broker accepted."""
        from scheduler.webhooks import line_event, read_new_lines

        accepted = 0
        for kind in EVENT_KINDS:
            while self.enabled:
                if not self.pending[kind]:
                    path = self.out_dir / f"{kind}.jsonl"
                    items, self.offsets[kind] = read_new_lines(path, self.offsets[kind])
                    fields = _EVENT_FIELDS[kind]
                    self.pending[kind] = [
                        {k: item[k] for k in fields if k in item}
                        for item in items
                        if line_event(kind, item) is not None
                    ]
                    if not self.pending[kind]:
                        break
                batch = self.pending[kind][:MAX_EVENT_BATCH]
                reply = self.client.send_events(kind, self.sent[kind], batch)
                if not reply.get("ok"):
                    if reply.get("error") == "no-webhooks":
                        self.enabled = False
                    else:
                        log.warning("vp.events_refused", kind=kind, error=reply.get("error"))
                    return accepted  # retried next tick, from the same place
                self.sent[kind] += len(batch)
                accepted += len(batch)
                del self.pending[kind][: len(batch)]
        return accepted

    async def run(self) -> None:
        while self.enabled:
            try:
                await asyncio.to_thread(self.forward_once)
            except Exception as exc:  # the broker unreachable: never crash the VP
                log.warning("vp.events_forward_failed", error=type(exc).__name__)
            await asyncio.sleep(FORWARD_INTERVAL)


async def run_brokered_vp(
    client: BrokerClient,
    *,
    json_output: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the VP ``client.vp_id`` through the broker (AWS): redeem its ticket once for
    the meeting, then write every status through the broker."""
    env = os.environ if env is None else env
    vp_id = client.vp_id
    try:
        meeting = await asyncio.to_thread(client.redeem)
    except BrokerRefused:
        print("vp run: the broker refused this task's launch ticket", file=sys.stderr)
        return EXIT_USAGE
    if meeting.status.terminal:
        log.warning("vp.run_already_ended", vp_id=vp_id, status=meeting.status.value)
        return EXIT_FAILED if meeting.status is Status.FAILED else EXIT_COMPLETED
    sink = BrokerSink(client)
    try:
        config = config_for(
            vp_id,
            meeting_url=meeting.meeting_url,
            platform=meeting.platform,
            name=meeting.name,
            passcode=meeting.passcode,
            env=env,
        )
    except ValidationError as exc:
        bad = describe_validation_error(exc, names_only=True)
        detail = f"invalid task configuration: {bad}"
        sink.emit(StatusEvent(utc_now_iso(), vp_id, Status.FAILED, Reason.LAUNCH_FAILED, detail))
        print(f"vp run: invalid configuration: {bad}", file=sys.stderr)
        return EXIT_USAGE
    uploader = artifact_uploader(client, config, env)
    forwarder = EventForwarder(client, config.effective_out_dir)
    forwarding = asyncio.create_task(forwarder.run(), name="vp-events")
    try:
        return await _run_vp(config, [sink], meeting.join_at, json_output, uploader)
    finally:
        forwarding.cancel()
        try:
            await forwarding
        except asyncio.CancelledError:
            pass
        try:  # the last lines, written while the VP left
            await asyncio.to_thread(forwarder.forward_once)
        except Exception as exc:
            log.warning("vp.events_forward_failed", error=type(exc).__name__)


def main_run(vp_id: str | None, *, db: str | None = None, json_output: bool = False) -> int:
    """The ``vp run`` command."""
    if not vp_id:
        print("vp run: a VP id is required (--vp-id or VP_ID)", file=sys.stderr)
        return EXIT_USAGE
    if os.environ.get("VP_BROKER_FUNCTION"):
        # Out of the environment at once: Chromium and every other child inherit it.
        ticket = os.environ.pop(TICKET_ENV, "")
        if not ticket:
            print(f"vp run: VP_BROKER_FUNCTION is set but {TICKET_ENV} is not", file=sys.stderr)
            return EXIT_USAGE
        vplog.register_secret(ticket)  # scrubbed from every log line
        try:
            client = BrokerClient(os.environ["VP_BROKER_FUNCTION"], vp_id, ticket)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        return asyncio.run(run_brokered_vp(client, json_output=json_output))
    try:
        store = open_store(db)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(run_stored_vp(store, vp_id, json_output=json_output))
    finally:
        store.close()
