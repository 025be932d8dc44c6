"""The CLI registers its commands without loading the heavy libraries (startup speed: benchmarks/bench_cli_startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "tensorflow",
    "hls4ml",
    "sklearn",
    "brevitas",
    "qkeras",
    "da4ml",
    "pythia8",
    "fastjet",
    "matplotlib",
    "pandas",
    "dask",
    "scipy",
)
COMMANDS = (
    "generate",
    "train",
    "score",
    "abcd",
    "quantize",
    "firmware",
    "emulate",
    "inspect",
    "unfold",
    "run",
)


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import l1ad.cli, sys; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_help_lists_every_command():
    done = _python("-m", "l1ad", "--help")
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout


def test_emulate_help_shows_its_options():
    done = _python("-m", "l1ad", "emulate", "--help")
    assert done.returncode == 0, done.stderr
    assert "--chunk-size" in done.stdout and "--events" in done.stdout
