"""Record the page snapshots the decision tests (tests/unit/test_decisions.py) replay.

Runs real VPs (headless Chromium) against the replicas and a real Janus room, keeps every
snapshot a driver read, labelled with what the meeting was doing at that moment (the replica's
own state, or the scenario), and writes one representative snapshot per label to
``tests/unit/snapshots/<platform>.json``. Re-run after changing a ``page.js``:

    nice .venv/bin/python -m tests.unit.snapshots.record [platform ...]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from platforms.base import PolledDriver
from platforms.registry import get_driver
from platforms.replicas.server import ChatLine, MeetingControl
from tests.conformance.test_conformance import (
    ALICE,
    janus_room,
    replica,
    run_on_janus,
    run_on_replica,
)
from vp.localmeeting.participant import SimulatedParticipant, tone_wav

HERE = Path(__file__).parent
Record = dict[str, Any]
recorded: list[Record] = []
current: dict[str, Any] = {"scenario": "", "control": None}


def install_recorder(platform: str) -> None:
    driver = get_driver(platform)
    assert issubclass(driver, PolledDriver)
    for kind in ("read_join", "read_meeting"):
        original: Callable[..., Any] = getattr(driver, kind)

        async def read(self: Any, _original: Any = original, _kind: str = kind) -> Any:
            snap = await _original(self)
            control: MeetingControl | None = current["control"]
            states = control.states if control is not None else []
            recorded.append(
                {
                    "scenario": current["scenario"],
                    "kind": _kind.removeprefix("read_"),
                    "state": states[-1] if states else None,
                    "snapshot": snap,
                }
            )
            return snap

        setattr(driver, kind, read)


async def scenario(name: str, platform: str, tmp: Path, **kwargs: Any) -> None:
    current["scenario"] = name
    mp = pytest.MonkeyPatch()
    servers = RECORDING_SERVERS
    original_add = replica(servers, platform).add_meeting

    def add_meeting(spec: Any) -> MeetingControl:
        control = original_add(spec)
        current["control"] = control
        return control

    replica(servers, platform).add_meeting = add_meeting  # type: ignore[method-assign]
    try:
        await run_on_replica(servers, platform, tmp / name, mp, **kwargs)
    finally:
        replica(servers, platform).add_meeting = original_add  # type: ignore[method-assign]
        mp.undo()
        current["control"] = None


RECORDING_SERVERS: dict[str, Any] = {}


async def record_replica(platform: str, tmp: Path) -> None:
    async def chat(vp: Any, control: MeetingControl | None) -> None:
        assert control is not None
        await asyncio.sleep(2.0)
        control.chat_from("Alice", "hello from Alice")
        await vp.post_chat("hi from the VP")
        await asyncio.sleep(2.0)

    await scenario(
        "happy",
        platform,
        tmp,
        waiting_room_s=2,
        end_after_s=8,
        max_duration=30,
        during=chat,
        chat=[ChatLine(at_s=1.0, sender="Bob", text="Bob was here")],
    )
    await scenario("removed", platform, tmp, remove_after_s=3, max_duration=30)
    await scenario(
        "alone", platform, tmp, everyone_leaves_after_s=2, alone_timeout=3, max_duration=30
    )
    await scenario("denied", platform, tmp, waiting_room_s=1, deny=True)
    # Webex guests meet no sign-in wall; Webex meetings can be locked.
    walls = ("locked",) if platform == "webex" else ("login_required",)
    for flag in ("not_found", *walls, "captcha"):
        await scenario(flag, platform, tmp, **{flag: True})
    if platform not in ("chime", "meet"):  # no passcode in Chime or Meet links
        await scenario("wrong_passcode", platform, tmp, vp_passcode="000000")
    if platform == "meet":  # "You can't join this video call", retried once
        await scenario("blocked", platform, tmp, blocked_joins=99)
    if platform == "webex":  # the enterprise client in iframe[name=thinIframe]
        await scenario(
            "enterprise",
            platform,
            tmp,
            thin_iframe=True,
            waiting_room_s=2,
            end_after_s=8,
            max_duration=30,
            during=chat,
            chat=[ChatLine(at_s=1.0, sender="Bob", text="Bob was here")],
        )


async def record_janus(tmp: Path) -> None:
    mp = pytest.MonkeyPatch()
    try:
        async with janus_room(tmp, mp) as meeting:
            wav = tone_wav(tmp / "alice.wav", ALICE.symbols)
            current["scenario"] = "happy"
            async with SimulatedParticipant(meeting.url, "Alice", wav):

                async def end_later(_vp: Any, _control: Any) -> None:
                    await asyncio.sleep(4)
                    await meeting.end_meeting()

                await run_on_janus(meeting.url, tmp / "happy", during=end_later)
            current["scenario"] = "not_found"
            url = meeting.url.replace(f"room={meeting.room_id}", "room=4242")
            await run_on_janus(url, tmp / "nf")
    finally:
        mp.undo()


def pick(platform: str) -> dict[str, Any]:
    """One snapshot per label: the last one read in that situation."""
    rows = [r for r in recorded if r["snapshot"] is not None]
    chosen: dict[str, Any] = {}

    def last(label: str, match: Callable[[Record], bool]) -> None:
        hits = [r["snapshot"] for r in rows if match(r)]
        if hits:
            chosen[label] = hits[-1]

    def in_(scenario: str, kind: str, state: str | None = None) -> Callable[[Record], bool]:
        return lambda r: (
            r["scenario"] == scenario
            and r["kind"] == kind
            and (state is None or r["state"] == state)
        )

    if platform == "janus":
        last("join_prejoin", lambda r: in_("happy", "join")(r) and not r["snapshot"]["roomShown"])
        last("join_admitted", in_("happy", "join"))
        last("join_not_found", in_("not_found", "join"))
        meeting = [r for r in rows if in_("happy", "meeting")(r)]
        chosen["meeting"] = next(r["snapshot"] for r in meeting if r["snapshot"]["names"])
        chosen["meeting_ended"] = meeting[-1]["snapshot"]
        return chosen
    happy_join = [r for r in rows if in_("happy", "join")(r)]
    prejoin = [r for r in happy_join if r["state"] == "prejoin"]
    chosen["join_prejoin"] = prejoin[len(prejoin) // 2]["snapshot"]
    last("join_lobby", in_("happy", "join", "lobby"))
    chosen["join_admitted"] = happy_join[-1]["snapshot"]
    refusals = (
        "denied", "not_found", "login_required", "locked", "captcha", "wrong_passcode", "blocked",
    )  # fmt: skip
    for refusal in refusals:
        last(f"join_{refusal}", in_(refusal, "join"))
    joined = [r for r in rows if in_("happy", "meeting", "joined")(r)]
    with_chat = [r for r in joined if _has_chat(r["snapshot"])]
    chosen["meeting"] = (with_chat or joined)[-1]["snapshot"]
    last("meeting_ended", in_("happy", "meeting"))
    last("meeting_removed", in_("removed", "meeting"))
    last("meeting_alone", in_("alone", "meeting", "joined"))
    if platform == "webex":
        ent_join = [r for r in rows if in_("enterprise", "join")(r)]
        guest = [r for r in ent_join if (r["snapshot"]["client"] or {}).get("nameInput")]
        if guest:
            chosen["enterprise_guest_form"] = guest[-1]["snapshot"]
        interstitial = [
            r
            for r in ent_join
            if r["snapshot"]["client"] is not None
            and r["state"] == "prejoin"
            and not r["snapshot"]["client"]["nameInput"]
            and r["snapshot"]["client"]["joinButton"]
        ]
        if interstitial:
            chosen["enterprise_interstitial"] = interstitial[0]["snapshot"]
        last("enterprise_lobby", in_("enterprise", "join", "lobby"))
        if ent_join:
            chosen["enterprise_admitted"] = ent_join[-1]["snapshot"]
        ent = [r for r in rows if in_("enterprise", "meeting", "joined")(r)]
        ent_chat = [r for r in ent if _has_chat(r["snapshot"])]
        if ent or ent_chat:
            chosen["enterprise_meeting"] = (ent_chat or ent)[-1]["snapshot"]
        last("enterprise_meeting_ended", in_("enterprise", "meeting"))
    return chosen


def _has_chat(snap: dict[str, Any]) -> bool:
    if isinstance(snap.get("client"), dict):  # Webex: the client frame's part
        snap = snap["client"]
    return bool(snap.get("chat")) and bool(snap.get("speaker") or snap.get("speakers"))


async def main(platforms: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        for platform in platforms:
            recorded.clear()
            install_recorder(platform)
            tmp = Path(tmp_dir) / platform
            if platform == "janus":
                await record_janus(tmp)
            else:
                await record_replica(platform, tmp)
            out = HERE / f"{platform}.json"
            out.write_text(json.dumps(pick(platform), indent=1, ensure_ascii=False) + "\n")
            print(out, len(recorded), "snapshots read")
    for server in RECORDING_SERVERS.values():
        server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["zoom", "teams", "chime", "janus", "webex"]))
