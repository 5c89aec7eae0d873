"""The Lambda bundle (deploy/build_lambda.py) holds everything the handler imports.

Two checks, so a new import anywhere on the handler's path cannot break the deployed API
unnoticed: a static one over every import statement reachable from scheduler.aws_lambda in
this project's packages (lazy, function-level imports included), and a run of the handler in
a subprocess where importing anything outside the bundle's distributions (and the runtime's
boto3) raises ModuleNotFoundError — as it would in Lambda.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
OWN = ("vp", "platforms", "scheduler")


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_lambda", ROOT / "deploy/build_lambda.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _builder()


def _distribution_closure(names: tuple[str, ...]) -> set[str]:
    """The distributions pip installs for ``names`` here (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = Requirement(todo.pop()).name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for raw in importlib.metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _import_names(distributions: set[str]) -> set[str]:
    names = {
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in distributions for d in dists)
    }
    return names


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    return None


def _static_third_party_imports(entry: str) -> dict[str, set[str]]:
    """Third-party top-level names imported anywhere in modules reachable from ``entry``."""
    seen: set[str] = set()
    found: dict[str, set[str]] = {}
    todo = [entry]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        type_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                top = target.split(".")[0]
                if top in OWN:
                    parts = target.split(".")
                    todo += [".".join(parts[: i + 1]) for i in range(len(parts))]
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(module)
    return found


def test_dependencies_are_pyprojects_with_its_version_ranges() -> None:
    reqs = BUILD.requirements()
    assert [Requirement(r).name for r in reqs] == list(BUILD.LAMBDA_DEPENDENCIES)
    assert all(Requirement(r).specifier for r in reqs), "version ranges come from pyproject"


def test_every_import_on_the_handlers_path_is_in_the_bundle() -> None:
    allowed = _import_names(
        _distribution_closure((*BUILD.LAMBDA_DEPENDENCIES, *BUILD.RUNTIME_PROVIDED))
    )
    imports = _static_third_party_imports("scheduler.aws_lambda")
    assert "starlette" in imports and "boto3" in imports  # the walk does reach the handler's
    outside = {name: sorted(mods) for name, mods in imports.items() if name not in allowed}
    assert not outside, f"imported on the Lambda's path but not bundled: {outside}"
    # The ticket and broker Lambdas run from the same bundle (scheduler.broker's handlers),
    # so do the webhook and calendar Lambdas (scheduler.aws_hooks).
    for module in ("scheduler.broker", "scheduler.aws_hooks"):
        found = _static_third_party_imports(module)
        assert "boto3" in found
        outside = {name: sorted(mods) for name, mods in found.items() if name not in allowed}
        assert not outside, f"imported on {module}'s path but not bundled: {outside}"
    # The walk is no rubber stamp: the VP runtime's own imports are outside the bundle.
    runner = _static_third_party_imports("vp.runner")
    assert {"numpy"} & set(runner) and not {"numpy"} & allowed


HANDLER_RUN = r"""
import importlib.abc, json, sys, sysconfig

ALLOWED = set(json.loads(sys.argv[1]))
STDLIB = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")})

class OnlyTheBundle(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ALLOWED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            origin = spec.origin or ""
            # the interpreter's own modules (private ones such as _sysconfigdata_* too)
            if origin in ("built-in", "frozen") or (
                origin.startswith(STDLIB) and "site-packages" not in origin
            ):
                return None
            break
        raise ModuleNotFoundError(f"No module named {name!r} (not in the Lambda bundle)")

sys.meta_path.insert(0, OnlyTheBundle())
from scheduler import aws_lambda

# On AWS the key comes from Secrets Manager (tests/aws/test_lambda.py covers that path).
aws_lambda.fingerprint_key_from_env = lambda: b"k" * 32

def event(path, claims=None):
    ctx = {"http": {"method": "GET", "path": path, "sourceIp": "198.51.100.1"}, "stage": "$default"}
    if claims:
        ctx["authorizer"] = {"jwt": {"claims": claims}}
    return {"version": "2.0", "rawPath": path, "rawQueryString": "", "headers": {},
            "requestContext": ctx, "isBase64Encoded": False}

results = [aws_lambda.handler(event("/nope"), None)["statusCode"],
           aws_lambda.handler(event("/v1/vps"), None)["statusCode"]]
heavy = sorted(m for m in ("numpy", "soundfile", "pocketsphinx", "websockets") if m in sys.modules)
print(json.dumps({"status": results, "heavy": heavy}))
"""


def test_the_handler_serves_with_only_the_bundle_importable() -> None:
    distributions = _distribution_closure((*BUILD.LAMBDA_DEPENDENCIES, *BUILD.RUNTIME_PROVIDED))
    allowed = sorted(_import_names(distributions) | set(sys.stdlib_module_names) | set(OWN))
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "VP_TABLE_NAME": "vp-table",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:vp",
        "VP_PASSCODE_KMS_KEY_ID": "arn:aws:kms:us-east-1:123456789012:key/abc",
    }
    result = subprocess.run(
        [sys.executable, "-c", HANDLER_RUN, json.dumps(allowed)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # 404 for an unknown route, 401 without verified claims: both served end to end.
    assert report == {"status": [404, 401], "heavy": []}


def test_the_template_packages_the_bundle_the_builder_writes() -> None:
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "deploy" / "template.yaml"))
    code = template["Resources"]["ApiFunction"]["Properties"]["Code"]
    assert (ROOT / "deploy" / code).resolve() == (ROOT / "build" / "lambda").resolve()
    assert "build/" in (ROOT / ".gitignore").read_text().split()
