"""Benchmark VPs in a real Janus room; prints JSON (medians over --runs).

One simulated speaker plays the tone signal into an AudioBridge room; the VPs join it and
stream to a real LMA-protocol WebSocket sink in this process. Everything is measured on the
VPs' whole process trees (Python, Playwright's node driver, every Chromium process): the
speaker's Chromium, Janus and the sink are not counted.

* ``--vps 1,3,8``: that many ``vp join`` processes at once; CPU cores and PSS per VP.
* ``--pool 4,8``: one ``vp pool`` process with that many meetings; per meeting, and the
  marginal cost of a meeting (slope between the two largest pool sizes).
* join latency: process start → JOINED on stdout, per VP.
* capture latency (``--latency-clicks N``): a VP in a room of its own; its page emits clicks
  (an AudioWorklet stamps ``Date.now()`` on the first sample of each), the sink stamps the
  arrival of the frame holding each click onset; same machine, same clock.
* memory growth (``--duration S``): one VP for S seconds, PSS sampled every
  ``--growth-interval`` s; growth = last minute vs the first minute after warm-up.
* video load (``--cameras 0,2,4``, instead of the Janus sizes): the ``--vps`` and ``--pool``
  sizes in a Zoom replica meeting whose page receives that many moving 1280×720 VP8 cameras,
  each with incoming video suppressed (the default, "after") and received
  (``VP_INCOMING_VIDEO=receive``, "before"), interleaved. The cameras are encoded by a sender
  page in the benchmark's own Chromium (Scenario.camera_sender="external"), not in the VP's
  browser, so the figures hold only what receiving the video costs the VPs; ``sender_fps`` is
  what the sender actually sent over the window (all streams, all VPs). ``--screen-share``
  adds a 1920×1080 5 fps VP8 screen share of slowly changing slides (Scenario.screen_share)
  to every case with cameras, from the same sender.
* no audio lost: audio seconds at the sink per wall second over the window, and the VPs' own
  counters (summary.json: silence filled, audio dropped in page / pipeline / transcriber).

CPU: utime+stime of the trees over the steady window (CPU-seconds consumed by the VPs
themselves, so less sensitive to other load than wall-clock figures; still noisy on a shared
machine — repeat with --runs). PSS: /proc/<pid>/smaps_rollup; ``pss_anon_mb`` is the anonymous
part (file-backed pages are shared with every process mapping them, also ones outside the VP).

    .venv/bin/python bench/bench_vp.py --runs 3 --vps 1,3 --pool 4,8 --latency-clicks 20
    .venv/bin/python bench/bench_vp.py --runs 1 --vps '' --pool '' --duration 1800
    nice .venv/bin/python bench/bench_vp.py --runs 3 --vps 1 --pool 2 --cameras 0,2,4 \
        --latency-clicks 0
    nice -n 19 .venv/bin/python bench/bench_vp.py --runs 3 --vps 1 --pool '' --cameras 2 \
        --screen-share --latency-clicks 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.proctree import cpu_s, pss_mb, role, tree_pids  # noqa: E402
from platforms.replicas.server import ParticipantSpec, ReplicaServer, Scenario  # noqa: E402
from vp.localmeeting.meeting import LocalMeeting  # noqa: E402
from vp.localmeeting.participant import SimulatedParticipant, tone_wav  # noqa: E402

BYTES_PER_SECOND = 64000  # 16 kHz, 2 channels, PCM16


# -- the sink (an LMA-protocol WebSocket server) ------------------------------------------------
@dataclass
class Call:
    call_id: str
    audio_bytes: int = 0
    frames: int = 0
    first: float | None = None
    ended: bool = False
    # capture latency: onsets of clicks in ch0 with the wall time their frame arrived
    onsets: list[tuple[int, float]] = field(default_factory=list)
    _samples: int = 0
    _quiet: int = 10_000

    def add(self, frame: bytes, wall: float, detect: bool) -> None:
        self.audio_bytes += len(frame)
        self.frames += 1
        self.first = self.first or time.monotonic()
        if not detect:
            return
        ch0 = np.frombuffer(frame, "<i2")[0::2]
        loud = np.abs(ch0.astype(np.int32)) > 8000
        for i, is_loud in enumerate(loud):
            if is_loud and self._quiet >= 1600:  # a new click after >= 100 ms of quiet
                self.onsets.append((self._samples + i, wall))
            self._quiet = 0 if is_loud else self._quiet + 1
        self._samples += len(ch0)


class Sink:
    def __init__(self, detect: bool = False) -> None:
        self.calls: dict[str, Call] = {}
        self.detect = detect

    async def handler(self, ws: ServerConnection) -> None:
        call: Call | None = None
        async for message in ws:
            if isinstance(message, bytes):
                if call is not None:
                    call.add(message, time.time(), self.detect)
                continue
            event = json.loads(message)
            if event.get("callEvent") == "START":
                call = self.calls.setdefault(event["callId"], Call(event["callId"]))
            elif event.get("callEvent") == "END" and call is not None:
                call.ended = True

    def audio_bytes(self) -> dict[str, int]:
        return {k: c.audio_bytes for k, c in self.calls.items()}


# -- one measured configuration ------------------------------------------------------------------
def pss_anon_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss_Anon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def anon_by_role(root: int) -> dict[str, float]:
    """Private (anonymous) PSS MB per process role, summed over the tree."""
    out: dict[str, float] = {}
    for pid in tree_pids(root):
        r = role(pid)
        out[r] = out.get(r, 0.0) + pss_anon_mb(pid)
    return out


def tree_stats(root: int) -> dict[str, float]:
    pids = tree_pids(root)
    return {
        "cpu_s": sum(cpu_s(p) for p in pids),
        "pss_mb": sum(pss_mb(p) for p in pids),
        "pss_anon_mb": sum(pss_anon_mb(p) for p in pids),
        "processes": len(pids),
        "chromium_processes": sum(1 for p in pids if role(p) not in ("python", "driver")),
    }


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    started: float
    out: Path
    vp_ids: list[str]
    joined: dict[str, float] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                status = json.loads(line)
            except ValueError:
                continue
            self.statuses.append(status)
            if status.get("status") == "JOINED":
                self.joined[status["vp_id"]] = time.monotonic()


async def launch(
    vp_cmd: list[str], args: list[str], env: dict[str, str], out: Path, vp_ids: list[str]
) -> Proc:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *vp_cmd,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    p = Proc(proc, started, out, vp_ids)
    p.reader = asyncio.create_task(p.read())
    return p


@dataclass(frozen=True)
class Room:
    """Where measured VPs join: its URL, the host to allow, its platform."""

    url: str
    allowed_host: str
    platform: str = "janus"


async def measure(
    meeting: LocalMeeting | Room,
    sink_url: str,
    sink: Sink,
    vp_cmd: list[str],
    *,
    vps: int,
    pool: bool,
    steady: float,
    warmup: float,
    tmp: Path,
    tag: str,
    extra_env: dict[str, str] | None = None,
    frames_sent: Callable[[], Awaitable[float]] | None = None,
) -> dict[str, Any]:
    """Start ``vps`` VPs (separate processes, or one pool), wait until all joined, measure.

    ``extra_env``: more variables for the VPs; ``frames_sent``: the external camera sender's
    frame counter, read at both ends of the window (reported as ``sender_fps``)."""
    env = {**os.environ, "VP_ALLOWED_HOSTS": meeting.allowed_host, **(extra_env or {})}
    platform = meeting.platform if isinstance(meeting, Room) else "janus"
    ids = [f"{tag}v{i}" for i in range(vps)]
    procs: list[Proc] = []
    if pool:
        out = tmp / f"{tag}-pool"
        out.mkdir()
        cfg = {
            "defaults": {"transcriber_url": sink_url, "platform": platform, "alone_timeout": 3600},
            "meetings": [
                {"meeting_url": meeting.url, "vp_id": i, "name": f"B{i}", "out_dir": str(out / i)}
                for i in ids
            ],
        }
        (out / "pool.json").write_text(json.dumps(cfg))
        procs.append(
            await launch(
                vp_cmd, ["pool", "--config", str(out / "pool.json"), "--json"], env, out, ids
            )
        )
    else:
        for i in ids:
            out = tmp / i
            args = ["join", meeting.url, "--platform", platform, "--name", f"B{i}", "--vp-id", i]
            args += ["--out", str(out), "--json", "--transcriber-url", sink_url]
            args += ["--alone-timeout", "3600"]
            procs.append(await launch(vp_cmd, args, env, out, [i]))
    try:
        deadline = time.monotonic() + 60 + 20 * vps
        while sum(len(p.joined) for p in procs) < vps:
            for p in procs:
                if p.proc.returncode is not None:
                    raise RuntimeError(f"a vp process exited early: {p.statuses[-1:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("not every VP joined in time")
            await asyncio.sleep(0.2)
        join_latency = [p.joined[i] - p.started for p in procs for i in p.vp_ids]
        await asyncio.sleep(warmup)
        before = [tree_stats(p.proc.pid) for p in procs]
        sent0 = await frames_sent() if frames_sent is not None else 0.0
        audio0, t0 = sink.audio_bytes(), time.monotonic()
        pss_samples: list[float] = []
        anon_samples: list[float] = []
        while time.monotonic() - t0 < steady:
            await asyncio.sleep(min(5.0, steady))
            now = [tree_stats(p.proc.pid) for p in procs]
            pss_samples.append(sum(s["pss_mb"] for s in now))
            anon_samples.append(sum(s["pss_anon_mb"] for s in now))
        after = [tree_stats(p.proc.pid) for p in procs]
        audio1, t1 = sink.audio_bytes(), time.monotonic()
        sent1 = await frames_sent() if frames_sent is not None else 0.0
    finally:
        for p in procs:
            if p.proc.returncode is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.wait_for(p.proc.wait(), 60)
            except TimeoutError:
                os.killpg(p.proc.pid, signal.SIGKILL)
                await p.proc.wait()
            if p.reader is not None:
                await p.reader
    wall = t1 - t0
    calls = {f"vp-{i}" for i in ids}
    per_call = [(audio1.get(c, 0) - audio0.get(c, 0)) / BYTES_PER_SECOND / wall for c in calls]
    lost = {"filled_s": 0.0, "pipeline_dropped_s": 0.0, "page_dropped_frames": 0}
    lost["transcriber_dropped_s"] = 0.0
    for i in ids:
        summary_path = next(p.out for p in procs if i in p.vp_ids) / (i if pool else "")
        summary = json.loads((summary_path / "summary.json").read_text())
        lost["filled_s"] += summary.get("pipeline", {}).get("filled_seconds", 0.0)
        lost["pipeline_dropped_s"] += summary.get("pipeline", {}).get("dropped_seconds", 0.0)
        lost["page_dropped_frames"] += summary.get("capture", {}).get("dropped_in_page", 0)
        lost["transcriber_dropped_s"] += summary.get("transcriber", {}).get("dropped_seconds", 0.0)
    finals = [
        s["status"] for p in procs for s in p.statuses if s["status"] in ("COMPLETED", "FAILED")
    ]
    cores = sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(after, before, strict=True)) / wall
    return {
        "vps": vps,
        "join_latency_s": statistics.median(join_latency),
        "cores_total": cores,
        "cores_per_vp": cores / vps,
        "pss_mb_total": statistics.median(pss_samples),
        "pss_mb_per_vp": statistics.median(pss_samples) / vps,
        "pss_anon_mb_per_vp": statistics.median(anon_samples) / vps,
        "processes": sum(a["processes"] for a in after),
        "chromium_processes": sum(a["chromium_processes"] for a in after),
        "audio_per_wall_min": min(per_call),
        "audio_per_wall_median": statistics.median(per_call),
        **lost,
        "completed": finals.count("COMPLETED"),
        "failed": finals.count("FAILED"),
        "sender_fps": (sent1 - sent0) / wall,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs (sums for loss counters, min for audio per wall)."""
    out: dict[str, Any] = {"runs": len(runs)}
    for key in runs[0]:
        values = [r[key] for r in runs]
        if key in ("audio_per_wall_min",):
            out[key] = round(min(values), 3)
        elif key in ("filled_s", "pipeline_dropped_s", "page_dropped_frames", "failed"):
            out[key] = round(sum(values), 3)
        else:
            out[key] = round(float(statistics.median(values)), 3)
    out["per_run_cores_per_vp"] = [round(r["cores_per_vp"], 3) for r in runs]
    out["per_run_pss_mb_per_vp"] = [round(r["pss_mb_per_vp"], 1) for r in runs]
    out["per_run_join_latency_s"] = [round(r["join_latency_s"], 3) for r in runs]
    return out


# -- capture latency ----------------------------------------------------------------------------
CLICKS_JS = """
async ([count, everyMs]) => {
  const code = `
    class Clicks extends AudioWorkletProcessor {
      constructor(o) {
        super();
        this.left = o.processorOptions.count;
        this.every = Math.round(sampleRate * o.processorOptions.everyMs / 1000);
        this.len = Math.round(sampleRate * 0.02);
        this.n = 0;
        this.done = false;
      }
      process(_in, outs) {
        const out = outs[0][0];
        for (let i = 0; i < out.length; i++, this.n++) {
          const k = this.n % this.every;
          if (k === 0 && this.n > 0) {
            if (this.left === 0) this.done = true;
            else { this.left--; this.port.postMessage(Date.now()); }
          }
          const on = !this.done && k < this.len;
          out[i] = on ? 0.8 * Math.sin((2 * Math.PI * 1000 * k) / sampleRate) : 0;
        }
        return !this.done;
      }
    }
    registerProcessor('bench-clicks', Clicks);`;
  const ctx = new AudioContext();
  const url = URL.createObjectURL(new Blob([code], {type: 'text/javascript'}));
  await ctx.audioWorklet.addModule(url);
  window.__benchClicks = [];
  const node = new AudioWorkletNode(ctx, 'bench-clicks', {processorOptions: {count, everyMs}});
  node.port.onmessage = (ev) => window.__benchClicks.push(ev.data);
  node.connect(ctx.destination);
  return ctx.sampleRate;
}
"""


async def capture_latency(meeting: LocalMeeting, clicks: int, tmp: Path) -> dict[str, Any]:
    """A VP (in this process, real Chromium and real transcriber connection) alone in a room;
    its page emits ``clicks`` stamped clicks, 600 ms apart."""
    from vp.browser import BrowserHost
    from vp.config import JoinConfig
    from vp.runner import VirtualParticipant

    room = meeting.room_id + 1
    await meeting.janus.client.create_room(room)
    assert meeting.site is not None
    url = meeting.site.room_url(room)
    sink = Sink(detect=True)
    os.environ["VP_ALLOWED_HOSTS"] = meeting.allowed_host
    async with (
        serve(sink.handler, "127.0.0.1", 0, compression=None) as server,
        BrowserHost() as host,
    ):
        port = server.sockets[0].getsockname()[1]
        config = JoinConfig(
            meeting_url=url,
            platform="janus",
            name="Latency",
            out_dir=tmp / "latency",
            transcriber_url=f"ws://127.0.0.1:{port}/api/v1/ws",
            alone_timeout=3600,
        )
        vp = VirtualParticipant(config, browser=host)
        task = asyncio.create_task(vp.run())
        await asyncio.wait_for(vp.joined_event.wait(), 90)
        await asyncio.sleep(2)
        page = host.browser.contexts[0].pages[0]
        await page.evaluate(CLICKS_JS, [clicks, 600])
        await asyncio.sleep(clicks * 0.6 + 2)
        stamps = await page.evaluate("window.__benchClicks")
        vp.stop()
        await task
    (call,) = sink.calls.values()
    arrivals = [wall for _, wall in call.onsets]
    if len(arrivals) != len(stamps):
        return {"error": f"{len(stamps)} clicks emitted, {len(arrivals)} detected"}
    latencies_ms = [a * 1000 - s for a, s in zip(arrivals, stamps, strict=True)]
    return {
        "clicks": len(stamps),
        "median_ms": round(statistics.median(latencies_ms), 1),
        "p90_ms": round(float(np.percentile(latencies_ms, 90)), 1),
        "max_ms": round(max(latencies_ms), 1),
    }


# -- memory growth ------------------------------------------------------------------------------
async def growth(
    meeting: LocalMeeting,
    sink_url: str,
    sink: Sink,
    vp_cmd: list[str],
    *,
    duration: float,
    interval: float,
    warmup: float,
    tmp: Path,
) -> dict[str, Any]:
    env = {**os.environ, "VP_ALLOWED_HOSTS": meeting.allowed_host}
    out = tmp / "growth"
    args = ["join", meeting.url, "--platform", "janus", "--name", "Growth", "--vp-id", "growth"]
    args += ["--out", str(out), "--json", "--transcriber-url", sink_url, "--alone-timeout", "7200"]
    p = await launch(vp_cmd, args, env, out, ["growth"])
    try:
        while "growth" not in p.joined:
            if p.proc.returncode is not None:
                raise RuntimeError("vp exited before JOINED")
            await asyncio.sleep(0.2)
        await asyncio.sleep(warmup)
        t0 = time.monotonic()
        audio0 = sink.audio_bytes().get("vp-growth", 0)
        samples: list[tuple[float, float, float]] = []
        roles: list[dict[str, float]] = []
        while (elapsed := time.monotonic() - t0) < duration:
            stats = tree_stats(p.proc.pid)
            samples.append(
                (round(elapsed, 1), round(stats["pss_mb"], 1), round(stats["pss_anon_mb"], 1))
            )
            roles.append(anon_by_role(p.proc.pid))
            await asyncio.sleep(min(interval, max(0.0, duration - elapsed)))
        stats = tree_stats(p.proc.pid)
        samples.append(
            (
                round(time.monotonic() - t0, 1),
                round(stats["pss_mb"], 1),
                round(stats["pss_anon_mb"], 1),
            )
        )
        wall = time.monotonic() - t0
        audio = (sink.audio_bytes().get("vp-growth", 0) - audio0) / BYTES_PER_SECOND
    finally:
        if p.proc.returncode is None:
            p.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(p.proc.wait(), 60)
        if p.reader is not None:
            await p.reader
    window = max(1, int(60 / interval))
    first = statistics.median(s[1] for s in samples[:window])
    last = statistics.median(s[1] for s in samples[-window:])
    first_anon = statistics.median(s[2] for s in samples[:window])
    last_anon = statistics.median(s[2] for s in samples[-window:])
    summary = json.loads((out / "summary.json").read_text())
    # Where private memory grew: per role, median of the last minute minus the first.
    anon_growth_by_role = {
        r: round(
            statistics.median(x.get(r, 0.0) for x in roles[-window:])
            - statistics.median(x.get(r, 0.0) for x in roles[:window]),
            1,
        )
        for r in sorted({k for x in roles for k in x})
    }
    return {
        "duration_s": round(wall, 1),
        "pss_first_minute_mb": round(first, 1),
        "pss_last_minute_mb": round(last, 1),
        "growth_pct": round(100 * (last - first) / first, 2),
        "anon_growth_pct": round(100 * (last_anon - first_anon) / first_anon, 2),
        "anon_growth_mb_by_role": anon_growth_by_role,
        "audio_per_wall": round(audio / wall, 4),
        "pipeline": summary.get("pipeline"),
        "capture_dropped_in_page": summary.get("capture", {}).get("dropped_in_page"),
        "samples_s_pss_anon": samples,
    }


# -- main ---------------------------------------------------------------------------------------
async def video_load(
    cameras: list[int],
    vps: list[int],
    pools: list[int],
    runs: int,
    sink: Sink,
    sink_url: str,
    vp_cmd: list[str],
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    """Per camera count: separate VPs (``vps`` sizes) and pools (``pools`` sizes), each with
    incoming video suppressed ("after", the default) and received (``VP_INCOMING_VIDEO=receive``,
    "before"); medians of ``runs`` interleaved measurements (the order of before/after flips
    every run) in a Zoom replica meeting. The cameras are moving 1280×720 VP8 canvases encoded
    by a sender page in the benchmark's OWN Chromium (Scenario.camera_sender="external"), so
    the figures hold the VPs' receiving, decoding and rendering only; with ``--screen-share``
    every case with cameras also carries the screen share (Scenario.screen_share)."""
    from playwright.async_api import async_playwright

    from vp.browser import find_chromium

    modes = ("receive", "suppress")
    configs: list[tuple[int, str, int, bool]] = []  # (cameras, mode, size, pool)
    for c in cameras:
        for mode in modes if c else ("suppress",):  # no video: the modes are the same
            configs += [(c, mode, n, False) for n in vps]
            configs += [(c, mode, n, True) for n in pools]
    results: dict[tuple[int, str, int, bool], list[dict[str, Any]]] = {k: [] for k in configs}
    with ReplicaServer("zoom") as replica:
        for c in cameras:
            replica.add_meeting(
                Scenario(
                    meeting_id=f"bench-cam{c}",
                    participants=[ParticipantSpec(name="Speaker")],
                    camera_streams=c,
                    camera_sender="external",
                    screen_share=bool(c and args.screen_share),
                )
            )
        async with async_playwright() as pw:
            sender_browser = await pw.chromium.launch(executable_path=find_chromium(True))
            senders = {}
            for c in cameras:
                if c:
                    page = await sender_browser.new_page()
                    await page.goto(f"{replica.base_url}/__replica/camera-sender?m=bench-cam{c}")
                    senders[c] = page
            try:
                for r in range(runs):
                    order = configs if r % 2 == 0 else configs[::-1]  # no position bias
                    for c, mode, n, pool in order:
                        url = f"{replica.base_url}/wc/bench-cam{c}/join"
                        room = Room(url, replica.allowed_host, "zoom")
                        sender = senders.get(c)

                        async def frames_sent(sender: Any = sender) -> float:
                            if sender is None:
                                return 0.0
                            stats = await sender.evaluate("() => window.senderStats()")
                            return float(stats["framesEncoded"])

                        kind = "p" if pool else "s"
                        results[(c, mode, n, pool)].append(
                            await measure(
                                room,
                                sink_url,
                                sink,
                                vp_cmd,
                                vps=n,
                                pool=pool,
                                steady=args.steady,
                                warmup=args.warmup,
                                tmp=tmp,
                                tag=f"r{r}c{c}{mode[0]}{kind}{n}",
                                extra_env={"VP_INCOMING_VIDEO": mode},
                                frames_sent=frames_sent,
                            )
                        )
                        if sender is not None:
                            await sender.evaluate("() => window.closeAll()")
            finally:
                await sender_browser.close()
    out: dict[str, Any] = {
        "camera_sender": "external (the benchmark's own Chromium)",
        "screen_share": "1920x1080 5 fps VP8, with the cameras" if args.screen_share else None,
    }
    for c, mode, n, pool in configs:
        key = "before" if mode == "receive" and c else "after"
        section = out.setdefault(f"{'pool' if pool else 'separate'}", {})
        section.setdefault(str(n), {}).setdefault(str(c), {})[key] = summarize(
            results[(c, mode, n, pool)]
        )
    return out


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--vps", type=_sizes, default=[1, 3], help="separate processes, e.g. 1,3,8")
    parser.add_argument("--pool", type=_sizes, default=[4, 8], help="pool sizes, e.g. 4,8")
    parser.add_argument("--latency-clicks", type=int, default=20, help="0 = skip")
    parser.add_argument("--duration", type=float, default=0.0, help="memory growth run, seconds")
    parser.add_argument("--growth-interval", type=float, default=30.0)
    parser.add_argument(
        "--cameras",
        type=_sizes,
        default=[],
        help="video load: incoming 720p cameras per VP in a Zoom replica, e.g. 0,2,4",
    )
    parser.add_argument(
        "--screen-share",
        action="store_true",
        help="video load: a 1080p 5 fps screen share too in every case with cameras",
    )
    parser.add_argument(
        "--vp-cmd",
        default=str(REPO / ".venv" / "bin" / "vp"),
        help="the vp command (e.g. another checkout: 'env PYTHONPATH=DIR python -m vp.cli')",
    )
    parser.add_argument(
        "--baseline-cmd",
        default=None,
        help="another vp command measured in the same runs (separate VPs and pools), "
        "interleaved with this one, e.g. an older checkout",
    )
    args = parser.parse_args()
    from vp import log as vplog

    vplog.configure("WARNING")  # the in-process VP (capture latency) logs to stderr, not stdout
    vp_cmd = shlex.split(args.vp_cmd)
    baseline_cmd = shlex.split(args.baseline_cmd) if args.baseline_cmd else None
    result: dict[str, Any] = {
        "benchmark": "vp-janus",
        "vp_cmd": args.vp_cmd,
        "chromium_args": os.environ.get("VP_CHROMIUM_ARGS", ""),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "steady_s": args.steady,
        "warmup_s": args.warmup,
    }
    sink = Sink()
    with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp_name:
        tmp = Path(tmp_name)
        async with (
            LocalMeeting(tmp / "janus") as meeting,
            serve(sink.handler, "127.0.0.1", 0, compression=None) as server,
        ):
            sink_url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/v1/ws"
            wav = tone_wav(tmp / "tones.wav")
            async with SimulatedParticipant(meeting.url, "Speaker", wav):
                configs = [(n, False, False) for n in args.vps]
                if baseline_cmd:
                    configs += [(n, False, True) for n in args.vps]
                configs += [(n, True, False) for n in args.pool]
                if baseline_cmd:
                    configs += [(n, True, True) for n in args.pool]
                if args.cameras:  # the video sizes are measured in the replica instead
                    configs = []
                runs: dict[tuple[int, bool, bool], list[dict[str, Any]]] = {c: [] for c in configs}
                for r in range(args.runs):  # interleaved: each run visits every configuration
                    for n, pool, base in configs:
                        tag = f"r{r}{'p' if pool else 's'}{'b' if base else ''}{n}"
                        runs[(n, pool, base)].append(
                            await measure(
                                meeting,
                                sink_url,
                                sink,
                                baseline_cmd if base and baseline_cmd else vp_cmd,
                                vps=n,
                                pool=pool,
                                steady=args.steady,
                                warmup=args.warmup,
                                tmp=tmp,
                                tag=tag,
                            )
                        )
                if args.vps and configs:
                    result["separate"] = {
                        str(n): summarize(runs[(n, False, False)]) for n in args.vps
                    }
                if baseline_cmd and configs:
                    result["baseline"] = {
                        "vp_cmd": args.baseline_cmd,
                        "separate": {str(n): summarize(runs[(n, False, True)]) for n in args.vps},
                        "pool": {str(n): summarize(runs[(n, True, True)]) for n in args.pool},
                    }
                if args.pool and configs:
                    result["pool"] = {str(n): summarize(runs[(n, True, False)]) for n in args.pool}
                    if len(args.pool) >= 2:
                        a, b = sorted(args.pool)[-2:]
                        pa, pb = result["pool"][str(a)], result["pool"][str(b)]
                        result["pool"]["marginal_per_meeting"] = {
                            "between": [a, b],
                            "cores": round((pb["cores_total"] - pa["cores_total"]) / (b - a), 3),
                            "pss_mb": round((pb["pss_mb_total"] - pa["pss_mb_total"]) / (b - a), 1),
                        }
                if args.duration > 0:
                    result["growth"] = await growth(
                        meeting,
                        sink_url,
                        sink,
                        vp_cmd,
                        duration=args.duration,
                        interval=args.growth_interval,
                        warmup=args.warmup,
                        tmp=tmp,
                    )
            if args.cameras:  # while the sink serves
                result["video"] = await video_load(
                    args.cameras,
                    args.vps,
                    args.pool,
                    args.runs,
                    sink,
                    sink_url,
                    vp_cmd,
                    args,
                    tmp,
                )
            if args.latency_clicks > 0:
                result["capture_latency"] = await capture_latency(meeting, args.latency_clicks, tmp)
    result["loadavg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
