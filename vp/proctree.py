"""A process and all its descendants, from /proc (Linux only): who they are and how much
memory they hold. The memory guard (vp.memory_guard) measures the VP's tree with it, and the
benchmarks (bench/proctree.py) build their CPU and per-role accounting on it.
"""

from __future__ import annotations

import os
from collections import defaultdict


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (field 3 onwards), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None:
                children[int(fields[1])].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def pss_kib(pid: int) -> int:
    """The proportional set size of ``pid`` in KiB (0 when it is gone or unreadable):
    shared pages count once across the tree, so the sum over a tree is what it costs."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_mb(pid: int) -> float:
    return pss_kib(pid) / 1024


def tree_pss_bytes(root: int) -> int:
    """The PSS of ``root`` and all its descendants, in bytes."""
    return sum(pss_kib(pid) for pid in tree_pids(root)) * 1024
