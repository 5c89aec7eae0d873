"""Process-tree accounting for the benchmarks: CPU seconds and PSS of a process and all its
descendants, from /proc (Linux only), with each process labelled by its role.

Roles: ``python`` (the vp process), ``driver`` (Playwright's node driver), ``browser`` (the
Chromium browser process), ``renderer``, ``gpu``, ``zygote``, ``utility:<service>``
(network, audio, storage, ...), ``crashpad`` and ``other``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

# The tree walk and PSS reading are the memory guard's (vp.proctree); re-exported here.
from vp.proctree import pss_mb as pss_mb
from vp.proctree import stat_fields as _stat_fields
from vp.proctree import tree_pids as tree_pids

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    pid: int
    role: str
    cpu_s: float
    """utime + stime so far, in seconds."""
    pss_mb: float


def role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "gone"
    args = [a.decode(errors="replace") for a in argv if a]
    if len(args) == 1:  # zygote children rewrite their title as one space-separated string
        args = args[0].split()
    if not args:
        return "other"
    exe = os.path.basename(args[0])
    joined = " ".join(args)
    if "python" in exe or exe == "vp" or (len(args) > 1 and args[1].endswith("/vp")):
        return "python"
    if exe == "node" or ("playwright" in joined and "cli.js" in joined):
        return "driver"
    if "crashpad" in exe:
        return "crashpad"
    if "chrom" in exe or "headless_shell" in exe or "chrome" in joined:
        kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), None)
        if kind is None:
            return "browser"
        if kind == "utility":
            sub = next(
                (a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), ""
            )
            return "utility:" + sub.rsplit(".", 1)[-1].replace("Service", "").lower()
        if kind == "gpu-process":
            return "gpu"
        return kind
    return "other"


def cpu_s(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sample(root: int, *, with_pss: bool = True) -> list[ProcSample]:
    return [
        ProcSample(pid, role(pid), cpu_s(pid), pss_mb(pid) if with_pss else 0.0)
        for pid in tree_pids(root)
    ]


def tree_cpu_s(root: int) -> float:
    return sum(cpu_s(pid) for pid in tree_pids(root))


def tree_pss_mb(root: int) -> float:
    return sum(pss_mb(pid) for pid in tree_pids(root))


def by_role(
    before: list[ProcSample], after: list[ProcSample], seconds: float
) -> dict[str, dict[str, float]]:
    """Per role: processes, CPU cores over the window, PSS MB at its end.

    A process that appears only in ``after`` counts from zero; one that vanished is ignored.
    """
    start = {s.pid: s.cpu_s for s in before}
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "cores": 0.0, "pss_mb": 0.0})
    for s in after:
        r = out[s.role]
        r["n"] += 1
        r["cores"] += (s.cpu_s - start.get(s.pid, 0.0)) / seconds
        r["pss_mb"] += s.pss_mb
    return {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in sorted(out.items())}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far per thread name of ``pid`` (threads with one name are summed)."""
    out: dict[str, float] = defaultdict(float)
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[name] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return dict(out)
