"""The memory guard's pure decisions, where it finds its limit, and its options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from vp.cli import _join_config, build_parser
from vp.config import JoinConfig
from vp.memory_guard import (
    MemoryAction,
    MemoryGuard,
    MemoryGuardState,
    MemoryLimit,
    cgroup_limit,
    ecs_task_limit,
    find_limit,
    parse_size,
)
from vp.proctree import tree_pss_bytes
from vp.settings import VpSettings

MIB = 1 << 20


def test_sizes_parse_in_binary_units() -> None:
    assert parse_size("536870912") == 512 * MIB
    assert parse_size("512M") == parse_size("512MiB") == parse_size("512m") == 512 * MIB
    assert parse_size("1.5G") == 1536 * MIB
    assert parse_size("64k") == 65536
    assert parse_size(7) == 7
    for bad in ("", "lots", "12X", "-1M"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_report_above_85_then_one_reload_above_95() -> None:
    state = MemoryGuardState(1000)
    assert state.observe(500, 0) is MemoryAction.NONE
    assert state.observe(860, 5) is MemoryAction.WARN
    assert state.observe(900, 10) is MemoryAction.NONE, "one warning per excursion"
    assert state.observe(960, 15) is MemoryAction.RELOAD
    assert state.observe(990, 20) is MemoryAction.NONE, "the reload happens once per call"
    assert state.reloads == 1 and state.peak_bytes == 990
    assert [w["at"] for w in state.warnings] == [5, 15]


def test_a_jump_past_both_thresholds_reloads_at_once() -> None:
    state = MemoryGuardState(1000)
    assert state.observe(999, 1) is MemoryAction.RELOAD
    assert len(state.warnings) == 1


def test_warnings_rearm_below_80_and_are_rate_limited_by_the_clock() -> None:
    state = MemoryGuardState(1000)
    assert state.observe(870, 0) is MemoryAction.WARN
    assert state.observe(700, 10) is MemoryAction.NONE  # below 80 %: re-armed
    assert state.observe(870, 20) is MemoryAction.NONE, "within WARN_EVERY of the last"
    assert state.observe(870, 61) is MemoryAction.WARN
    assert state.observe(820, 200) is MemoryAction.NONE, "82 % does not re-arm"
    assert state.observe(870, 201) is MemoryAction.NONE


def test_without_reloads_left_it_only_reports() -> None:
    state = MemoryGuardState(1000, max_reloads=0)  # pool mode
    assert state.observe(990, 0) is MemoryAction.WARN
    assert state.reloads == 0


def test_the_guard_logs_reloads_through_its_callback_and_summarises() -> None:
    now = [100.0]
    causes: list[str] = []
    limit = MemoryLimit(512 * MIB, "--memory-limit", lambda: None)
    guard = MemoryGuard(limit, reload=causes.append, clock=lambda: now[0])
    assert guard.note() is None
    now[0] = 130.0
    assert guard.sample(450 * MIB) is MemoryAction.WARN
    now[0] = 140.0
    assert guard.sample(500 * MIB) is MemoryAction.RELOAD
    assert guard.sample(510 * MIB) is MemoryAction.NONE
    assert causes == ["memory at 97.7% of the 512 MiB limit"]
    summary = guard.summary()
    assert summary == {
        "limit_bytes": 512 * MIB,
        "source": "--memory-limit",
        "peak_bytes": 510 * MIB,
        "warnings": [{"at_s": 30.0, "percent": 87.9}, {"at_s": 40.0, "percent": 97.7}],
        "reloads": 1,
    }
    assert guard.note() == "memory peaked at 100% of the 512 MiB limit, page reloaded 1x"


def _cgroup(tmp_path: Path, proc_line: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cg"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-cgroup"
    proc.write_text(proc_line)
    return root, proc


def test_cgroup_v2_limit_and_working_set(tmp_path: Path) -> None:
    root, proc = _cgroup(
        tmp_path,
        "0::/ecs/task\n",
        {
            "ecs/task/memory.max": "536870912\n",
            "ecs/task/memory.current": "400000000\n",
            "ecs/task/memory.stat": "anon 300000000\ninactive_file 50000000\n",
        },
    )
    limit = cgroup_limit(root, proc)
    assert limit is not None and (limit.limit_bytes, limit.source) == (512 * MIB, "cgroup v2")
    assert limit.usage() == 350_000_000, "inactive file cache is not pressure"


def test_cgroup_v2_unlimited_falls_to_v1_and_v1_unlimited_is_none(tmp_path: Path) -> None:
    root, proc = _cgroup(
        tmp_path,
        "4:memory:/task\n0::/\n",
        {
            "memory.max": "max\n",
            "memory/task/memory.limit_in_bytes": "1073741824\n",
            "memory/task/memory.usage_in_bytes": "600000000\n",
            "memory/task/memory.stat": "cache 1\ntotal_inactive_file 100000000\n",
        },
    )
    limit = cgroup_limit(root, proc)
    assert limit is not None and (limit.limit_bytes, limit.source) == (1 << 30, "cgroup v1")
    assert limit.usage() == 500_000_000
    (root / "memory/task/memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_limit(root, proc) is None


def test_a_configured_limit_measures_the_process_tree() -> None:
    limit = find_limit(256 * MIB)
    assert limit is not None and limit.source == "--memory-limit"
    used = limit.usage()
    assert used is not None and used > 10 * MIB
    assert abs(used - tree_pss_bytes(os.getpid())) < 50 * MIB


def test_the_option_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = VpSettings.from_env({"VP_MEMORY_LIMIT": "768M"})
    assert env.join_fields() == {"memory_limit": "768M"}
    args = build_parser().parse_args(["join", "https://x.zoom.us/j/1", "--memory-limit", "1G"])
    assert _join_config(args, env).memory_limit == 1 << 30
    args = build_parser().parse_args(["join", "https://x.zoom.us/j/1"])
    assert _join_config(args, env).memory_limit == 768 * MIB
    with pytest.raises(ValidationError, match="memory_limit"):
        JoinConfig(meeting_url="https://x.zoom.us/j/1", memory_limit="lots")


def test_the_ecs_task_limit_comes_from_the_metadata_endpoint() -> None:
    import http.server
    import threading

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"Limits": {"CPU": 0.25, "Memory": 512}}' if self.path == "/v4/task" else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert ecs_task_limit({"ECS_CONTAINER_METADATA_URI_V4": f"{base}/v4"}) == 512 * MIB
        assert ecs_task_limit({"ECS_CONTAINER_METADATA_URI_V4": f"{base}/gone"}) is None
        assert ecs_task_limit({}) is None
    finally:
        server.shutdown()
        server.server_close()
