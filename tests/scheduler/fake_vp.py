"""A stand-in for `vp join --json` with scripted misbehaviour, run as a real subprocess by
the local launcher in test_local_launcher.py. FAKE_VP_MODE picks the script:

hold        INITIALIZING, JOINING, JOINED; on SIGTERM LEAVING, COMPLETED stopped, exit 0
crash       INITIALIZING, JOINING, JOINED, then exit 3 without a final status
stubborn    INITIALIZING, JOINING; ignores SIGTERM; sleeps (the launcher must SIGKILL)
noise       garbage lines, a huge line, a foreign vp_id, an illegal COMPLETED; exit 0

Every mode writes its argv and the VP_* environment it got to <out>/fake.json.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def arg(name: str) -> str:
    prefix = f"{name}="
    return next(a[len(prefix) :] for a in sys.argv if a.startswith(prefix))


VP_ID = arg("--vp-id")


def emit(status: str, reason: str | None = None, vp_id: str = VP_ID) -> None:
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = {"ts": ts, "vp_id": vp_id, "status": status, "reason": reason, "detail": None}
    print(json.dumps(line), flush=True)


def main() -> int:
    out = Path(arg("--out"))
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("VP_")}
    names = sorted(os.environ)
    (out / "fake.json").write_text(json.dumps({"argv": sys.argv, "env": env, "names": names}))
    mode = os.environ.get("FAKE_VP_MODE", "hold")
    if mode == "noise":
        emit("INITIALIZING")
        print("not json at all", flush=True)
        print("x" * 100_000, flush=True)
        emit("JOINING", vp_id="someone-else")
        emit("JOINING")
        emit("COMPLETED", "stopped")  # illegal: never JOINED
        return 0
    stopping = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
    emit("INITIALIZING")
    emit("JOINING")
    if mode == "stubborn":
        time.sleep(120)
        return 0
    emit("JOINED")
    if mode == "crash":
        return 3
    while not stopping:
        time.sleep(0.05)
    emit("LEAVING", "stopped")
    emit("COMPLETED", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
