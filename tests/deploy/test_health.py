"""`vp health` / `python -m vp.health`: the container health check, on real processes.

Each check runs in a fresh PID namespace (``unshare --pid --mount-proc``, as root — as CI
runs), which is what a container is: only that namespace's processes are visible, so other
VPs running on this machine cannot make the check pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vp.health import HOSTING_COMMANDS, hosting_command

ROOT = Path(__file__).resolve().parents[2]


# Wait (bounded by the subprocess timeout) until $pid has exec'd the fake vp script.
WAIT_EXEC = 'until grep -q "bin/vp" /proc/$pid/cmdline 2>/dev/null; do sleep 0.05; done'


def _fake_vp(tmp_path: Path) -> Path:
    """A process whose command line is a hosting ``vp`` (a script named vp that sleeps)."""
    script = tmp_path / "bin" / "vp"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(0o755)
    return script


def _in_pid_namespace(shell: str) -> list[dict[str, object]]:
    """Run ``shell`` (which calls ``$HEALTH`` some times) in a new PID namespace; the reports."""
    health = f"{sys.executable} -m vp.health"
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", shell],
        env={"HEALTH": health, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    reports = []
    for line in result.stdout.splitlines():
        report, _, code = line.rpartition(" rc=")
        reports.append({**json.loads(report), "rc": int(code)})
    return reports


def test_healthy_only_while_a_hosting_vp_process_runs(tmp_path: Path) -> None:
    vp = _fake_vp(tmp_path)
    reports = _in_pid_namespace(
        f"""
        check() {{ out=$($HEALTH); echo "$out rc=$?"; }}
        check
        {vp} run & pid=$!
        {WAIT_EXEC}; check
        kill -STOP $pid; sleep 0.3; check
        kill -CONT $pid; sleep 0.3; check
        kill $pid; wait $pid; check
        """
    )
    assert [r["healthy"] for r in reports] == [False, True, False, True, False]
    assert [r["rc"] for r in reports] == [1, 0, 1, 0, 1]
    running = reports[1]["processes"]
    assert isinstance(running, list) and len(running) == 1
    assert running[0]["command"] == "run"
    stopped = reports[2]["processes"]
    assert isinstance(stopped, list) and stopped[0]["state"] == "T"
    assert reports[4]["processes"] == []


def test_other_vp_commands_do_not_count(tmp_path: Path) -> None:
    vp = _fake_vp(tmp_path)
    reports = _in_pid_namespace(
        f"""
        {vp} transcriber & pid=$!
        {WAIT_EXEC}; a=$pid
        {vp} health & pid=$!
        {WAIT_EXEC}; b=$pid
        out=$($HEALTH); echo "$out rc=$?"
        kill $a $b
        """
    )
    assert reports == [{"healthy": False, "processes": [], "rc": 1}]


def test_the_cli_subcommand_gives_the_same_answer(tmp_path: Path) -> None:
    vp = _fake_vp(tmp_path)
    result = subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            f"{vp} join https://example.com/x & pid=$!; {WAIT_EXEC}; "
            f"{sys.executable} -m vp.cli health; echo rc=$?; kill $pid",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines[-1] == "rc=0"
    assert json.loads(lines[-2])["processes"][0]["command"] == "join"


def test_hosting_command_parsing() -> None:
    assert hosting_command(["vp", "run"]) == "run"
    assert hosting_command(["/opt/venv/bin/python", "/opt/venv/bin/vp", "run"]) == "run"
    assert hosting_command(["python", "/x/bin/vp", "--log-level", "DEBUG", "join", "U"]) == "join"
    assert hosting_command(["python", "-m", "vp.cli", "pool"]) == "pool"
    assert hosting_command(["vp", "health"]) is None
    assert hosting_command(["vp", "serve"]) is None
    assert hosting_command(["python", "run"]) is None  # not vp at all
    assert hosting_command(["vpx", "run"]) is None
    assert hosting_command([]) is None
    assert {"run", "join", "pool"} == HOSTING_COMMANDS
