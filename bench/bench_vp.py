"""Benchmark one VP in a real Janus room; prints JSON (medians over --runs).

Measures, for the VP's whole process tree (Python, Playwright's driver, every Chromium
process): join latency (process start → JOINED on stdout), CPU cores and PSS MB over a
steady window after joining, and the audio delivered to an LMA-protocol sink (seconds of
audio per wall second). The room has one simulated speaker playing the tone signal; the
transcriber is an external sink in this process, so its cost is not counted as the VP's.

    .venv/bin/python bench/bench_vp.py --runs 3 --steady 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vp.localmeeting.meeting import LocalMeeting  # noqa: E402
from vp.localmeeting.participant import SimulatedParticipant, tone_wav  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / CLK_TCK


def pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            pass
    return total_kb / 1024


class Sink:
    """Counts audio bytes per call; the LMA server stand-in."""

    def __init__(self) -> None:
        self.audio_bytes = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handler(self, ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                self.audio_bytes += len(message)


async def one_run(meeting: LocalMeeting, steady: float, warmup: float) -> dict[str, Any]:
    sink = Sink()
    async with serve(sink.handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp:
            env = {
                **os.environ,
                "VP_ALLOWED_HOSTS": meeting.allowed_host,
                "VP_TRANSCRIBER_URL": f"ws://127.0.0.1:{port}/api/v1/ws",
            }
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                str(REPO / ".venv" / "bin" / "vp"),
                "join",
                meeting.url,
                "--platform",
                "janus",
                "--name",
                "Bench",
                "--out",
                tmp,
                "--json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdout is not None
            joined_at = None
            while joined_at is None:
                line = await asyncio.wait_for(proc.stdout.readline(), 120)
                if not line:
                    raise RuntimeError("vp exited before JOINED")
                if json.loads(line)["status"] == "JOINED":
                    joined_at = time.monotonic()
            await asyncio.sleep(warmup)
            pids = tree_pids(proc.pid)
            cpu0, t0 = cpu_seconds(pids), time.monotonic()
            audio0 = sink.audio_bytes
            pss_samples = []
            while time.monotonic() - t0 < steady:
                await asyncio.sleep(min(5.0, steady))
                pss_samples.append(pss_mb(tree_pids(proc.pid)))
            pids = tree_pids(proc.pid)
            cpu1, t1 = cpu_seconds(pids), time.monotonic()
            audio1 = sink.audio_bytes
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    return {
        "join_latency_s": joined_at - started,
        "cpu_cores": (cpu1 - cpu0) / (t1 - t0),
        "pss_mb": statistics.median(pss_samples),
        "processes": len(pids),
        "audio_per_wall": (audio1 - audio0) / 64000 / (t1 - t0),
        "exit_code": proc.returncode,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="vp-bench-janus-") as tmp:
        async with LocalMeeting(Path(tmp) / "janus") as meeting:
            wav = tone_wav(Path(tmp) / "tones.wav")
            async with SimulatedParticipant(meeting.url, "Speaker", wav):
                for _ in range(args.runs):
                    runs.append(await one_run(meeting, args.steady, args.warmup))

    def med(key: str) -> float:
        return round(float(statistics.median(float(r[key]) for r in runs)), 3)

    print(
        json.dumps(
            {
                "benchmark": "vp-janus-single",
                "runs": args.runs,
                "steady_s": args.steady,
                "join_latency_s": med("join_latency_s"),
                "cpu_cores": med("cpu_cores"),
                "pss_mb": med("pss_mb"),
                "audio_per_wall": med("audio_per_wall"),
                "per_run": [{k: round(v, 3) for k, v in r.items()} for r in runs],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
