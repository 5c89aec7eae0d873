"""The image's run-time layout, for real: a read-only root filesystem (as the task definition
sets it), one writable volume, the Dockerfile's environment — and Chromium still launches and
renders Latin, CJK and emoji text with the fonts the run-time package list installs.

No Docker engine runs here, so the container is made the way one is: a private mount
namespace (``unshare --mount``, as root — as CI runs) where ``/`` is remounted read-only and a
tmpfs stands in for the Fargate scratch volume at the Dockerfile's ``VOLUME``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.deploy.dockerfile import ROOT, parse

SCRIPT = ROOT / "scripts" / "install-system-packages.sh"
# Which run-time font package covers which script of the test page.
FONT_ROLES = {
    "latin": "fonts-liberation",
    "cjk": "fonts-wqy-zenhei",
    "emoji": "fonts-noto-color-emoji",
}

CHECK = r"""
import asyncio, json, os, sys
from vp.browser import BrowserHost

PAGE = '''<html><body>
<p id=latin style="font-family:sans-serif">Meeting notes, Zoë</p>
<p id=cjk style="font-family:sans-serif">会议记录 会議 회의</p>
<p id=emoji style="font-family:sans-serif">😀🎉</p></body></html>'''

async def main():
    out = {}
    try:
        open("/etc/vp-write-probe", "w")
        out["root_writable"] = True
    except OSError:
        out["root_writable"] = False
    async with BrowserHost() as host:
        ctx = await host.new_context()
        page = await ctx.new_page()
        await page.set_content(PAGE)
        cdp = await ctx.new_cdp_session(page)
        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        root = (await cdp.send("DOM.getDocument"))["root"]["nodeId"]
        fonts = {}
        for key in ("latin", "cjk", "emoji"):
            node = await cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#" + key})
            used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
            fonts[key] = [f["familyName"] for f in used["fonts"]]
        out["fonts"] = fonts
        out["tmpdir_entries"] = len(os.listdir(os.environ["TMPDIR"]))
        await ctx.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def _families(package: str) -> set[str]:
    """Font family names in a Debian package's font files, as fontconfig reads them."""
    files = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    fonts = [f for f in files.stdout.split() if f.endswith((".ttf", ".ttc", ".otf"))]
    assert fonts, f"{package} ships no font files"
    names: set[str] = set()
    for font in fonts:
        out = subprocess.run(["fc-scan", "--format", "%{family}\n", font], capture_output=True)
        for line in out.stdout.decode().splitlines():
            names.update(n.strip() for n in line.split(",") if n.strip())
    return names


def test_chromium_runs_on_a_read_only_root_with_the_image_fonts(tmp_path: Path) -> None:
    runtime = subprocess.run(
        ["bash", str(SCRIPT), "--list", "--runtime-only"], capture_output=True, text=True
    ).stdout.split()
    assert {p for p in runtime if p.startswith("fonts-")} == set(FONT_ROLES.values())

    _, stages = parse()
    final = stages[-1]
    env = final.env()
    (volume,) = final.all("VOLUME")[0].exec_form() or []
    parent = str(Path(volume).parent)
    assert Path(parent).is_dir(), f"the test mounts its tmpfs on {parent}"
    # The image's environment, with its venv's bin replaced by this test's interpreter's.
    env["PATH"] = env["PATH"].replace("/opt/venv/bin", str(Path(sys.executable).parent))
    env["PATH"] = env["PATH"].replace("$PATH", "/usr/bin:/bin")
    env["PYTHONPATH"] = str(ROOT)
    dirs = " ".join(sorted({volume, env["HOME"], env["TMPDIR"]}))
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    setup = f"""
        set -e
        mount --make-rprivate /
        mount -t tmpfs -o mode=0755,size=512m tmpfs {parent}
        install -d -m 0700 {dirs}
        mount -o remount,bind,ro /
        cd {volume}
        exec {sys.executable} {script}
    """
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", setup],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["root_writable"] is False  # the root really was read-only
    assert report["tmpdir_entries"] > 0  # Chromium's profile went to TMPDIR, in the volume
    for role, package in FONT_ROLES.items():
        used = set(report["fonts"][role])
        assert used & _families(package), f"{role}: rendered with {used}, not {package}"
