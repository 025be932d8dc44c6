"""Imports follow the package stack: a package imports only itself and the packages below it.

The check reads the source (``ast``), so every import counts: at module level, inside
functions (the lazy imports that keep ``l1ad --help`` light), under ``TYPE_CHECKING``, and
``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the package stack, top first (README, "Imports run one way"): the FirmwareSpec, the fixed-point
# arithmetic and the exact executor (emulation) sit below every package that uses them
STACK = ("l1ad", "firmware", "quantize", "emulation", "offline")


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    source: str  # importing package
    target: str  # imported module

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target}"


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            parts = module.split(".")
            base = parts if is_package else parts[:-1]
            base = base[: len(base) - (node.level - 1)]
            found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def stack_violations(root: Path, stack: tuple[str, ...]) -> list[Violation]:
    """Every import in the packages of ``stack`` (top first) of a package above the importer."""
    rank = {name: len(stack) - i for i, name in enumerate(stack)}
    violations = []
    for package in stack:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            is_package = path.name == "__init__.py"
            module = ".".join(rel.parent.parts if is_package else rel.with_suffix("").parts)
            tree = ast.parse(path.read_text(), filename=str(rel))
            for line, target in imported_modules(tree, module, is_package):
                top = target.split(".")[0]
                if top in rank and rank[top] > rank[package]:
                    violations.append(Violation(rel, line, package, target))
    return violations


def _report(violations: list[Violation], stack: tuple[str, ...]) -> str:
    pairs: dict[tuple[str, str], int] = {}
    for v in violations:
        key = (v.source, v.target.split(".")[0])
        pairs[key] = pairs.get(key, 0) + 1
    summary = ", ".join(f"{a} -> {b}: {n}" for (a, b), n in sorted(pairs.items()))
    return (
        f"{len(violations)} imports run against the stack {' -> '.join(stack)} ({summary}):\n"
        + "\n".join(map(str, violations))
    )


def test_imports_follow_the_stack():
    violations = stack_violations(ROOT, STACK)
    assert not violations, _report(violations, STACK)


def test_a_lazy_import_inside_a_function_against_the_stack_is_reported(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    (tmp_path / "low" / "__init__.py").write_text("")
    (tmp_path / "high" / "__init__.py").write_text("from . import util\n")
    (tmp_path / "high" / "util.py").write_text("import low.x\nfrom .sub import y\n")
    (tmp_path / "low" / "x.py").write_text(
        "import os\nfrom low import y\n\n\ndef f():\n    from high.util import z\n    return z\n"
    )
    (tmp_path / "low" / "y.py").write_text(
        "import importlib\nm = importlib.import_module('high')\n"
    )
    found = {str(v) for v in stack_violations(tmp_path, ("high", "low"))}
    assert found == {"low/x.py:6: low -> high.util", "low/y.py:2: low -> high"}
