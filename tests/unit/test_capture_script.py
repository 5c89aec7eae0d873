"""capture.js, kept in parts (vp/capture_js/), joins into one script that parses."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from vp.capture import capture_script, capture_script_parts


def test_the_joined_script_passes_node_check(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is part of the dev machine (scripts/install-system-packages)"
    script = tmp_path / "capture.js"
    script.write_text(capture_script(), encoding="utf-8")
    checked = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # A part is a fragment of one closure, so node would refuse it alone: only the whole
    # script is a program, and every part is in it, in name order.
    names = [part.name for part in capture_script_parts()]
    assert names == sorted(names) and names[0] == "00-prelude.js" and len(names) >= 4
    assert capture_script().startswith("/*\n * vp in-page audio capture")
    assert capture_script().rstrip().endswith("})();")


def test_natives_are_taken_once() -> None:
    natives = re.findall(
        r"^\s*const \w+ = ([A-Za-z_.]+(?:\.prototype)?\.\w+)(?:\.bind\(W\))?;$",
        capture_script(),
        flags=re.MULTILINE,
    )
    assert len(natives) > 20
    twice = [name for name, count in Counter(natives).items() if count > 1]
    assert not twice, twice
