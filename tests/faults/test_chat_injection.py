"""Chat content is data: no chat text is ever evaluated, and it round-trips verbatim.

On each platform's replica, a participant sends — and the VP posts — messages built to break
out of JavaScript string literals, template literals and HTML. Every driver passes chat text
to the page as an ``evaluate`` ARGUMENT (or types it), never inside the script source, so
``window.__pwned`` must stay undefined in the VP's page and every text must arrive unchanged
(in chat.jsonl for what the VP read, in the replica's report for what it posted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from platforms.replicas.server import MeetingControl
from tests.conformance.test_conformance import (  # noqa: F401 (fixture)
    REPLICA_PLATFORMS,
    replicas,
    run_on_replica,
)
from vp.lifecycle import Reason, Status
from vp.runner import VirtualParticipant

pytestmark = pytest.mark.integration

PAYLOADS = (
    "'); window.__pwned=1; ('",
    "</script><img src=x onerror=window.__pwned=1>",
    "${window.__pwned=1}",
    '"; window.__pwned=1; "',
    "`+(window.__pwned=1)+`",
)


@pytest.mark.parametrize("platform", REPLICA_PLATFORMS)
async def test_hostile_chat_is_never_evaluated_and_round_trips(
    platform: str,
    replicas: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    async def exchange(vp: VirtualParticipant, control: MeetingControl | None) -> None:
        assert control is not None and vp.page is not None
        await asyncio.sleep(1.0)
        for text in PAYLOADS:
            control.chat_from("Alice", text)
        for text in PAYLOADS:
            await vp.post_chat(text)
        for _ in range(100):  # until the VP has read all of Alice's messages
            if len(incoming(vp.out_dir)) >= len(PAYLOADS):
                break
            await asyncio.sleep(0.2)
        # Every frame: Webex renders its chat in a cross-origin client frame.
        seen["pwned"] = {await f.evaluate("() => typeof window.__pwned") for f in vp.page.frames}
        vp.stop()

    run = await run_on_replica(
        replicas, platform, tmp_path, monkeypatch, during=exchange, max_duration=120
    )
    assert run.final == (Status.COMPLETED, Reason.STOPPED)
    assert seen["pwned"] == {"undefined"}, "chat text was evaluated in the VP's page"
    assert run.control is not None
    for text in PAYLOADS:
        assert run.control.vp_chat.count(text) == 1, f"posted verbatim: {text!r}"
    got = incoming(run.out)
    assert sorted(got) == sorted(("Alice", text) for text in PAYLOADS), "read verbatim"


def incoming(out: Path) -> list[tuple[str, str]]:
    import json

    path = out / "chat.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return [(x["sender"], x["text"]) for x in lines if x["direction"] == "in"]
