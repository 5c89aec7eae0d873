"""Build ``build/lambda/``: the control plane's Lambda bundle, for ``aws cloudformation package``.

    python deploy/build_lambda.py [--out build/lambda]

Only what ``scheduler.aws_lambda`` imports goes in: this project's packages (from a wheel
built from pyproject.toml) and :data:`LAMBDA_DEPENDENCIES`, with the version ranges
pyproject.toml gives them, as manylinux wheels for the Lambda runtime (Python 3.11, x86_64).
boto3/botocore are the runtime's own. tests/deploy/test_lambda_bundle.py checks that the
handler imports with nothing else importable, lazy imports included.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Distributions (pyproject.toml names) the handler's import closure needs.
LAMBDA_DEPENDENCIES = (
    "pydantic",
    "pydantic-settings",
    "pyjwt",
    "starlette",
    "fastapi",
    "sse-starlette",
    "mangum",
    "structlog",
    "playwright",
)
# Shipped by the Lambda Python runtime itself (and large: botocore alone is ~80 MB).
RUNTIME_PROVIDED = ("boto3",)
# platforms/base.py imports playwright for a type annotation only; the Lambda never starts a
# browser, so the Node driver (~110 MB, most of the 250 MB Lambda limit) is left out.
STRIPPED = ("playwright/driver",)
LAMBDA_PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp")
LAMBDA_PYTHON = "3.11"


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """pyproject.toml's requirement strings for :data:`LAMBDA_DEPENDENCIES`, in that order."""
    project = tomllib.loads(pyproject.read_text())["project"]
    by_name = {_name(r): r for r in project["dependencies"]}
    missing = [d for d in LAMBDA_DEPENDENCIES if _name(d) not in by_name]
    if missing:
        raise SystemExit(f"not in pyproject.toml's dependencies: {', '.join(missing)}")
    return [by_name[_name(d)] for d in LAMBDA_DEPENDENCIES]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def build(out: Path) -> Path:
    """Build the bundle into ``out`` (replaced if it exists); return ``out``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as wheels:
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, str(ROOT))
        (wheel,) = Path(wheels).glob("vp-*.whl")
        _pip("install", "--quiet", "--no-deps", "--no-compile", "--target", str(out), str(wheel))
    _pip(
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        str(out),
        *LAMBDA_PLATFORM,
        "--python-version",
        LAMBDA_PYTHON,
        "--only-binary=:all:",
        *requirements(),
    )
    for relative in (*STRIPPED, "bin"):  # console scripts are of no use in a Lambda
        shutil.rmtree(out / relative, ignore_errors=True)
    for cache in out.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    args = parser.parse_args(argv)
    out = build(args.out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 1e6:.1f} MB unzipped (Lambda's limit: 250 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
