"""The shape of the code (the structure issue's limits), read from the AST; no imports run.

No class over 350 lines and no function over 100 lines in vp/, platforms/ (drivers, toolkit,
registry and the replicas' server) and scheduler/; no JavaScript over 25 lines inside a Python
string: it lives in .js files that node checks.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vp", "platforms", "scheduler")
MAX_CLASS_LINES = 350
MAX_FUNCTION_LINES = 100
MAX_JS_LINES = 25
# What makes a string JavaScript: an arrow, a function or a declaration, and code punctuation.
_JS_WORDS = re.compile(r"=>|\bfunction\s*\(|\b(?:const|let|var)\s+\w+\s*=|\bdocument\.")
_JS_PUNCTUATION = re.compile(r"[;{}]")


def python_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants (prose, whatever words they use)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def looks_like_javascript(text: str) -> bool:
    return bool(_JS_WORDS.search(text)) and len(_JS_PUNCTUATION.findall(text)) >= 3


def shape_problems(path: Path, root: Path = ROOT) -> list[str]:
    """What in ``path`` breaks the limits, one line each."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = _docstrings(tree)
    where = path.relative_to(root)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if lines > limit:
                problems.append(f"{where}:{node.lineno} {node.name}: {lines} lines > {limit}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and node.value.count("\n") + 1 > MAX_JS_LINES
            and looks_like_javascript(node.value)
        ):
            lines = node.value.count("\n") + 1
            problems.append(f"{where}:{node.lineno} JavaScript in a string: {lines} lines")
    return problems


def test_no_long_class_function_or_inline_javascript() -> None:
    files = python_files()
    assert len(files) > 100 and any(p.name == "runner.py" for p in files)
    problems = [problem for path in files for problem in shape_problems(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("class Big:\n" + "    x = 1\n" * 350, ["Big: 351 lines > 350"]),
        ("class Fits:\n" + "    x = 1\n" * 349, []),
        ("def long():\n" + "    x = 1\n" * 100, ["long: 101 lines > 100"]),
        ("async def fits():\n" + "    x = 1\n" * 99, []),
        ("JS = '''\n" + "const a = () => { go(); };\n" * 25 + "'''\n", ["JavaScript in a string"]),
        ("JS = '''\n" + "const a = () => { go(); };\n" * 23 + "'''\n", []),
        ("SQL = '''\n" + "CREATE TABLE t (a TEXT);\n" * 30 + "'''\n", []),
        ('def f():\n    """' + "a function (x) => y; {z}\n" * 30 + '"""\n', []),
    ],
    ids=["class", "class-fits", "function", "function-fits", "js", "js-fits", "sql", "doc"],
)
def test_the_check_finds_what_it_should(tmp_path: Path, source: str, expected: list[str]) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    found = shape_problems(path, root=tmp_path)
    assert len(found) == len(expected), found
    for problem, part in zip(found, expected, strict=True):
        assert part in problem
