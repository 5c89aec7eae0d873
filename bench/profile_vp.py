"""Where one VP's cycles and bytes go: per-process-role CPU and PSS of a ``vp join`` process
tree in a real Janus room (one simulated speaker), printed as JSON.

    .venv/bin/python bench/profile_vp.py --steady 30 [--repeat 3] [--py-spy out.txt]
    .venv/bin/python bench/profile_vp.py --variant '' --variant 'VP_CAPTURE_TRANSPORT=binding'

``--py-spy`` needs py-spy (``.venv/bin/pip install py-spy``; not a project dependency).
Variants ('K=V|K2=V2') run interleaved in one room, so they see the same machine load.

Extra Chromium flags for experiments: ``VP_CHROMIUM_ARGS="--flag --other"`` (read by
vp.browser). The bench's own processes, Janus and the speaker's Chromium are not counted.
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

from bench.proctree import by_role, sample, thread_cpu  # noqa: E402
from vp.localmeeting.meeting import LocalMeeting  # noqa: E402
from vp.localmeeting.participant import SimulatedParticipant, tone_wav  # noqa: E402


async def _sink(ws: ServerConnection) -> None:
    async for _ in ws:
        pass


async def profile_once(
    meeting: LocalMeeting, port: int, steady: float, py_spy: str | None, extra: dict[str, str]
) -> Any:
    with tempfile.TemporaryDirectory(prefix="vp-prof-") as tmp:
        env = {
            **os.environ,
            **extra,
            "VP_ALLOWED_HOSTS": meeting.allowed_host,
            "VP_TRANSCRIBER_URL": f"ws://127.0.0.1:{port}/api/v1/ws",
        }
        proc = await asyncio.create_subprocess_exec(
            str(REPO / ".venv" / "bin" / "vp"),
            "join",
            meeting.url,
            "--platform",
            "janus",
            "--name",
            "Prof",
            "--out",
            tmp,
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            if not line:
                raise RuntimeError("vp exited before JOINED")
            if json.loads(line)["status"] == "JOINED":
                break
        await asyncio.sleep(5)
        spy = None
        if py_spy:
            spy = await asyncio.create_subprocess_exec(
                str(REPO / ".venv" / "bin" / "py-spy"),
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(int(steady)),
                "--format",
                "raw" if py_spy.endswith(".txt") else "flamegraph",
                "--output",
                py_spy,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        before, t0 = sample(proc.pid, with_pss=False), time.monotonic()
        threads0 = {s.pid: (s.role, thread_cpu(s.pid)) for s in before}
        await asyncio.sleep(steady)
        after, t1 = sample(proc.pid), time.monotonic()
        threads: dict[str, float] = {}
        for s in after:
            if s.pid not in threads0:
                continue
            r, t_before = threads0[s.pid]
            for name, cpu in thread_cpu(s.pid).items():
                used = (cpu - t_before.get(name, 0.0)) / (t1 - t0)
                if used >= 0.002:
                    threads[f"{r}/{name}"] = round(threads.get(f"{r}/{name}", 0.0) + used, 3)
        if spy is not None:
            await spy.wait()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    roles = by_role(before, after, t1 - t0)
    return {
        "total_cores": round(sum(r["cores"] for r in roles.values()), 3),
        "total_pss_mb": round(sum(r["pss_mb"] for r in roles.values()), 1),
        "roles": roles,
        "threads": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        "pipeline": summary.get("pipeline"),
        "capture": summary.get("capture"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steady", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--py-spy", default=None, help="write a py-spy profile here")
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="environment of one variant, 'K=V|K2=V2' ('' = as is); runs interleave variants",
    )
    args = parser.parse_args()
    variants = args.variant or [""]
    results: dict[str, list[Any]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="vp-prof-janus-") as tmp:
        async with (
            LocalMeeting(Path(tmp) / "janus") as meeting,
            serve(_sink, "127.0.0.1", 0, compression=None) as server,
        ):
            port = server.sockets[0].getsockname()[1]
            wav = tone_wav(Path(tmp) / "tones.wav")
            async with SimulatedParticipant(meeting.url, "Speaker", wav):
                for _ in range(args.repeat):
                    for v in variants:
                        extra = dict(kv.split("=", 1) for kv in v.split("|") if kv)
                        results[v].append(
                            await profile_once(meeting, port, args.steady, args.py_spy, extra)
                        )
    print(
        json.dumps(
            [
                {
                    "variant": v,
                    "median_cores": statistics.median(r["total_cores"] for r in rs),
                    "median_pss_mb": statistics.median(r["total_pss_mb"] for r in rs),
                    "runs": rs,
                }
                for v, rs in results.items()
            ],
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
