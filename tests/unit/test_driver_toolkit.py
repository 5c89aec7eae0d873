"""The driver toolkit (platforms/toolkit.py) and the drivers' page scripts.

Every ``page.js`` must be valid JavaScript (``node --check``) whose value is an object holding
every function its driver calls; no driver keeps a long script inside a Python string.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from platforms.registry import REGISTRY, get_driver
from platforms.toolkit import AloneTimer, ChatLine, Debounce, PageScript, SeenChat
from vp.lifecycle import Reason

PLATFORMS = Path(__file__).resolve().parents[2] / "platforms"
DRIVER_DIRS = sorted(p.parent for p in PLATFORMS.glob("*/driver.py"))
NODE = shutil.which("node")
assert NODE, "node is needed to check the page scripts"


# -- Debounce -------------------------------------------------------------------------------
def test_debounce_needs_consecutive_polls_of_the_same_signal():
    debounce = Debounce[str](2)
    assert debounce.see("ended") is None
    assert debounce.see("ended") == "ended"
    assert debounce.see("removed") is None, "a different signal restarts"
    assert debounce.see(None) is None
    assert debounce.see("removed") is None
    assert debounce.see("removed") == "removed"


def test_debounce_key_makes_signals_the_same():
    debounce = Debounce[tuple[Reason, str]](3, key=lambda _s: "gone")
    assert debounce.see((Reason.REMOVED, "a")) is None
    assert debounce.see((Reason.HOST_ENDED, "b")) is None
    assert debounce.see((Reason.HOST_ENDED, "c")) == (Reason.HOST_ENDED, "c")


# -- AloneTimer -------------------------------------------------------------------------------
def test_alone_timer_with_an_injected_clock():
    now = [100.0]
    timer = AloneTimer(5, clock=lambda: now[0])
    assert timer.update(True) is False
    now[0] = 104.9
    assert timer.update(True) is False
    assert timer.update(None) is False, "unknown restarts the wait"
    now[0] = 109.8
    assert timer.update(True) is False
    now[0] = 114.8
    assert timer.update(True) is True
    assert timer.update(False) is False


def test_alone_timer_may_count_from_the_start():
    now = [0.0]
    timer = AloneTimer(3, alone_at_start=True, clock=lambda: now[0])
    now[0] = 3.0
    assert timer.update(True) is True


# -- SeenChat ---------------------------------------------------------------------------------
def line(key: str, text: str = "hi") -> ChatLine:
    return ChatLine(key=key, sender="Alice", text=text)


def test_seen_chat_reports_each_line_once_across_rerenders():
    seen = SeenChat()
    assert [x.key for x in seen.new_lines([line("1"), line("2")])] == ["1", "2"]
    assert seen.new_lines([line("1"), line("2")]) == []
    assert seen.new_lines([line("2")]) == [], "a windowed list drops old lines"
    assert [x.key for x in seen.new_lines([line("2"), line("3")])] == ["3"]


def test_seen_chat_counts_copies_of_a_key():
    """Without DOM ids the key is what a line shows: the same words twice are two lines."""
    seen = SeenChat()
    assert len(seen.new_lines([line("Alice|ok")])) == 1
    assert len(seen.new_lines([line("Alice|ok"), line("Alice|ok")])) == 1
    assert seen.new_lines([line("Alice|ok"), line("Alice|ok")]) == []


def test_seen_chat_is_bounded():
    seen = SeenChat(limit=3)
    seen.new_lines([line(str(i)) for i in range(10)])
    assert len(seen) == 3
    assert [x.key for x in seen.new_lines([line("9")])] == [], "recent keys are kept"
    assert [x.key for x in seen.new_lines([line("0")])] == ["0"], "old ones forgotten"


# -- page scripts -----------------------------------------------------------------------------
@pytest.mark.parametrize("folder", DRIVER_DIRS, ids=lambda p: p.name)
def test_page_js_is_valid_and_defines_what_the_driver_calls(folder):
    page_js = folder / "page.js"
    subprocess.run([NODE, "--check", str(page_js)], check=True, timeout=30)
    driver = get_driver(folder.name)
    # What the driver evaluates: page.js joined with platforms/page_prelude.js.
    listed = subprocess.run(
        [
            NODE,
            "-e",
            "const o = eval(require('fs').readFileSync(0, 'utf8'));"
            "console.log(JSON.stringify(Object.keys(o)))",
        ],
        input=driver.script.source,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    defined = set(json.loads(listed.stdout))
    source = (folder / "driver.py").read_text()
    called = set(re.findall(r"""(?:call|fn)\(\s*["'](\w+)["']""", source))
    if "read_join" not in source:
        called |= {"joinState"}
    if "read_meeting" not in source:
        called |= {"meetingState"}
    assert driver.__module__ == f"platforms.{folder.name}.driver"
    assert called and called <= defined, sorted(called - defined)


def test_every_registered_driver_has_a_page_script():
    for platform in REGISTRY:
        script = getattr(get_driver(platform), "script", None)
        assert isinstance(script, PageScript) and script.path.name == "page.js", platform


@pytest.mark.parametrize(
    "path", sorted(PLATFORMS.glob("*/*.py")) + sorted(PLATFORMS.glob("*.py")), ids=str
)
def test_no_long_javascript_in_python_strings(path):
    """JavaScript lives in .js files; Python keeps at most short snippets (25 lines)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if "=>" in text or "function" in text or "document." in text:
                assert text.count("\n") <= 25, f"{path.name}:{node.lineno}"


def test_page_scripts_ship_with_the_package():
    import tomllib

    pyproject = tomllib.loads((PLATFORMS.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["platforms"]
    shipped = {p for g in globs for p in PLATFORMS.glob(g) if p.suffix == ".js"}
    assert {d / "page.js" for d in DRIVER_DIRS} | {PLATFORMS / "page_prelude.js"} <= shipped


@pytest.mark.parametrize("folder", DRIVER_DIRS, ids=lambda p: p.name)
def test_each_driver_s_texts_load_and_ship_with_the_package(folder):
    """texts.toml: every pattern compiles, every refusal names a pattern and a contract
    REASON, the decisions use these very texts, and the package data ships the file."""
    import importlib

    from platforms.texts import load_texts

    texts = load_texts(str(folder / "decisions.py"))
    assert texts.patterns and texts.platform
    assert set(texts.refusals) <= set(texts.patterns)
    assert all(isinstance(row.reason, Reason) for row in texts.refusals.values())
    decisions = importlib.import_module(f"platforms.{folder.name}.decisions")
    assert texts == decisions.TEXTS
    driver = get_driver(folder.name)  # its rules, script and lobby text come from decisions
    assert driver.rules is decisions.RULES and driver.script.path == folder / "page.js"
    assert driver.lobby_said == texts.patterns.get("lobby")
    pyproject = tomllib.loads((PLATFORMS.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["platforms"]
    assert any(fnmatch.fnmatch(f"{folder.name}/texts.toml", g) for g in globs)


def test_a_refusal_text_maps_to_its_reason_and_quotes_the_platform(tmp_path):
    (tmp_path / "texts.toml").write_text(
        "platform = \"Acme\"\n[patterns]\ngone = '''\nno such\n|meeting'''\n"
        '[refusals]\ngone = { reason = "meeting-not-found", summary = "not found" }\n'
    )
    from platforms.texts import load_texts

    texts = load_texts(str(tmp_path / "decisions.py"))
    assert texts["gone"].pattern == "no such|meeting"
    refused = texts.refused("gone", "Welcome\nSorry: NO SUCH meeting here\n")
    assert refused is not None and refused.reason is Reason.MEETING_NOT_FOUND
    assert refused.detail == "not found; Acme says \u201cSorry: NO SUCH meeting here\u201d"
    assert texts.refused("gone", "all fine") is None
    (tmp_path / "texts.toml").write_text(
        'platform = "Acme"\n[refusals]\ngone = { reason = "denied", summary = "x" }\n'
    )
    with pytest.raises(ValueError, match="no pattern"):
        load_texts(str(tmp_path / "decisions.py"))


def test_the_prelude_is_valid_and_its_helpers_are_not_copied_into_drivers():
    subprocess.run([NODE, "--check", str(PLATFORMS / "page_prelude.js")], check=True, timeout=30)
    prelude = (PLATFORMS / "page_prelude.js").read_text()
    helpers = re.findall(r"^const (\w+) = ", prelude, re.M)
    assert {"vis", "visible", "q", "qa", "anyVisible"} <= set(helpers)
    for folder in DRIVER_DIRS:
        body = (folder / "page.js").read_text()
        for definition in re.findall(r"^const \w+ = .*$", prelude, re.M):
            assert definition.strip() not in {line.strip() for line in body.splitlines()}, (
                f"{folder.name}/page.js repeats the prelude's {definition}"
            )


# -- incoming video (vp/incoming_video.py) ----------------------------------------------------
def test_every_driver_chooses_its_incoming_video_suppression():
    """Each driver states its choice in its own class; only the audio-only room has none."""
    from vp.incoming_video import IncomingVideo

    for platform in REGISTRY:
        driver = get_driver(platform)
        assert "incoming_video" in vars(driver), f"{platform} states its choice"
        expected = IncomingVideo.NONE if platform == "janus" else IncomingVideo.NEGOTIATE_INACTIVE
        assert driver.incoming_video is expected, platform


def test_incoming_video_mode_follows_the_driver_and_the_switch():
    from vp.incoming_video import IncomingVideo, effective_mode

    assert effective_mode(IncomingVideo.NEGOTIATE_INACTIVE, None) == "inactive"
    assert effective_mode(IncomingVideo.NEGOTIATE_INACTIVE, "suppress") == "inactive"
    assert effective_mode(IncomingVideo.NEGOTIATE_INACTIVE, "receive") == "receive"
    assert effective_mode(IncomingVideo.NONE, "suppress") == "receive"


@pytest.mark.parametrize("mode", ["inactive", "receive"])
def test_incoming_video_script_is_valid_javascript_with_its_config(mode, tmp_path):
    from vp.incoming_video import incoming_video_script

    script = incoming_video_script(mode)  # type: ignore[arg-type]
    assert "__VP_INCOMING_VIDEO_CONFIG__" not in script
    assert json.dumps({"mode": mode}) in script
    path = tmp_path / "incoming_video.js"
    path.write_text(script)
    subprocess.run([NODE, "--check", str(path)], check=True)
    package_data = tomllib.loads((PLATFORMS.parent / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-data"]["vp"]
    assert any(fnmatch.fnmatch("incoming_video.js", g) for g in package_data), "shipped"
