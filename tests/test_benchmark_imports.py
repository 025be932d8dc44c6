"""The benchmark scripts (not run by the test suite) still import only names our packages have.

A benchmark rots silently when a name it imports moves (``CSimulation`` left
``emulation`` for ``firmware.csim`` and ``bench_emulation_ae_pair.py`` stopped running). Every
``from <package> import <name>`` of the scripts, also those inside functions, is checked here
against the package itself.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("offline", "quantize", "firmware", "emulation", "l1ad")
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def _our_imports(script: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import of our packages in ``script``; name None for ``import m``."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(script.read_text(), str(script))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in OURS:
                found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] in OURS
            ]
    return found


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 10 and all(
        _our_imports(s) for s in SCRIPTS if s.name.startswith("bench_")
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_name_a_benchmark_imports_from_our_packages_exists(script):
    missing = []
    for line, module_name, name in _our_imports(script):
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            missing.append(f"{script.name}:{line}: import {module_name}: {err}")
            continue
        if name is None or hasattr(module, name):
            continue
        try:  # a submodule imported by name (from offline.ad import train)
            importlib.import_module(f"{module_name}.{name}")
        except ImportError:
            missing.append(f"{script.name}:{line}: {module_name} has no {name}")
    assert not missing, "\n".join(missing)
