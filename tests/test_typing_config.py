"""mypy's strict list in pyproject.toml covers the public API: every package's ``__init__`` and
every module an ``__init__`` exports names from (directly, under ``TYPE_CHECKING``, or through
its lazy-export table)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("l1ad", "offline", "quantize", "firmware", "emulation")


def public_modules(root: Path) -> set[str]:
    found = set()
    for package in PACKAGES:
        for init in (root / package).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(root).parts))
            for node in ast.walk(ast.parse(init.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    name = node.module
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    name = node.value  # a lazy-export table's module name
                else:
                    continue
                if name.split(".")[0] in PACKAGES and name.replace(".", "").isidentifier():
                    found.add(name)
    return found


def strict_modules(pyproject: Path) -> set[str]:
    overrides = tomllib.loads(pyproject.read_text())["tool"]["mypy"]["overrides"]
    strict = [o for o in overrides if o.get("disallow_untyped_defs")]
    assert len(strict) == 1, "one strict override block"
    return set(strict[0]["module"])


def test_the_strict_list_is_every_module_the_packages_export_from():
    public, strict = public_modules(ROOT), strict_modules(ROOT / "pyproject.toml")
    assert public - strict == set(), "exported from but not strict: add them to the strict block"
    assert strict - public == set(), "strict but no longer exported from: remove them"


def test_a_lazily_exported_module_counts_as_public(tmp_path):
    (tmp_path / "offline" / "sub").mkdir(parents=True)
    (tmp_path / "offline" / "__init__.py").write_text("")
    (tmp_path / "offline" / "sub" / "__init__.py").write_text(
        "from offline.sub.a import f\n_EXPORTS = {'g': 'offline.sub.b', 'doc': 'not a module'}\n"
    )
    assert public_modules(tmp_path) == {"offline", "offline.sub", "offline.sub.a", "offline.sub.b"}
