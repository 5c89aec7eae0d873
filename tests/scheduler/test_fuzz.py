"""schemathesis over the OpenAPI document against a real uvicorn server: no input the
document allows (or breaks) gets a 5xx, and responses conform to the document."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from scheduler.api import openapi_document
from scheduler.hook_store import HookStore
from scheduler.hooks import HookService, HookSettings
from scheduler.ratelimit import RateLimiter
from scheduler.service import VpService
from scheduler.sqlite_store import SqliteStore
from tests.scheduler.conftest import RunningServer, bearer, start_server
from tests.scheduler.fakes import RecordingLauncher

schema = schemathesis.openapi.from_dict(openapi_document())
# A schema-violating body may also be too large (a string past its maxLength, JSON-escaped,
# can pass the 16 KiB body cap): 413 is a rejection too.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server in its own thread and event loop (schemathesis calls are blocking)."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, RunningServer] = {}

    async def main() -> None:
        service = VpService(
            SqliteStore(folder / "vps.db"),
            RecordingLauncher(),
            rate_limiter=RateLimiter(10_000, 60),
        )
        hooks = HookService(
            HookStore(folder / "vps.db"), service, settings=HookSettings(calendar_poll=0)
        )
        holder["server"] = await start_server(service, folder / "out", hooks=hooks)
        ready.set()
        await holder["server"].task

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    yield holder["server"].base_url
    holder["server"].server.should_exit = True
    thread.join(30)


@schema.exclude(path_regex="^/v1/(events|vps/.*/transcript)$").parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_with_5xx(case: schemathesis.Case, base_url: str) -> None:
    # Every default check except positive_data_acceptance: a schema-valid body may still
    # name a host off the allow-list or a past join_at, which must be 422, not accepted.
    case.call_and_validate(
        base_url=base_url,
        headers=bearer("fuzzer"),
        timeout=10,
        excluded_checks=[positive_data_acceptance],
    )


@schema.include(path_regex="^/v1/(events|vps/.*/transcript)$").parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_event_streams_refuse_bad_tokens_without_5xx(
    case: schemathesis.Case, base_url: str
) -> None:
    # Generated tokens are never valid, so the streams answer at once (401/404), never hang.
    case.call_and_validate(
        base_url=base_url, timeout=10, excluded_checks=[positive_data_acceptance]
    )
