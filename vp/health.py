"""``vp health``: the container health check (Dockerfile HEALTHCHECK, ECS task healthCheck).

A VP container is healthy while a ``vp`` process that hosts meetings (``vp run``, ``vp join``,
``vp pool``) is alive in its PID namespace: present in /proc and neither a zombie nor stopped.
The check reads /proc only, so it costs a few milliseconds and never touches the VP's event
loop, the browser or the network (a health probe must not be able to hurt the meeting).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The subcommands whose process is the VP itself (not helpers such as `vp health`).
HOSTING_COMMANDS = frozenset({"run", "join", "pool"})
# /proc/PID/stat states that mean "not making progress": zombie, dead, stopped, traced.
DEAD_STATES = frozenset({"Z", "X", "x", "T", "t"})
_ENTRY_NAMES = frozenset({"vp", "vp.cli"})


@dataclass(frozen=True, slots=True)
class VpProcess:
    pid: int
    command: str
    state: str

    @property
    def alive(self) -> bool:
        return self.state not in DEAD_STATES


@dataclass(frozen=True, slots=True)
class HealthReport:
    healthy: bool
    processes: tuple[VpProcess, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "healthy": self.healthy,
                "processes": [
                    {"pid": p.pid, "command": p.command, "state": p.state} for p in self.processes
                ],
            }
        )


def hosting_command(argv: list[str]) -> str | None:
    """The hosting subcommand of a ``vp`` command line, or None.

    Matches ``vp run``, ``/opt/venv/bin/vp join URL``, ``python /x/bin/vp --log-level D run``
    and ``python -m vp.cli pool``: the first hosting subcommand after the ``vp`` entry point.
    """
    for index, token in enumerate(argv):
        if os.path.basename(token) in _ENTRY_NAMES:
            for later in argv[index + 1 :]:
                if later in HOSTING_COMMANDS:
                    return later
            return None
    return None


def _state(stat: str) -> str:
    # The command name (field 2) is in parentheses and may contain spaces or ")".
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0]


def vp_processes(proc: Path = Path("/proc")) -> Iterator[VpProcess]:
    """Every process under ``proc`` whose command line is a hosting ``vp`` command."""
    own = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked, or not ours to read
        argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        command = hosting_command(argv)
        if command is not None:
            yield VpProcess(pid=int(entry.name), command=command, state=_state(stat))


def check(proc: Path = Path("/proc")) -> HealthReport:
    """Healthy when at least one hosting ``vp`` process is alive."""
    processes = tuple(sorted(vp_processes(proc), key=lambda p: p.pid))
    return HealthReport(healthy=any(p.alive for p in processes), processes=processes)


def main() -> int:
    """Print the report as one JSON line; exit 0 when healthy, 1 when not (Docker's codes)."""
    report = check()
    print(report.to_json())
    return 0 if report.healthy else 1


if __name__ == "__main__":
    # `python -m vp.health` is what HEALTHCHECK runs: it skips the CLI's imports (pydantic,
    # structlog), so a probe costs ~0.1 CPU-second instead of ~0.8 on a small Fargate task.
    raise SystemExit(main())
