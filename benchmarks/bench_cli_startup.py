"""Startup time of ``l1ad --help`` against ``import torch`` (what it would at least cost if torch loaded eagerly).

Each command runs in a fresh interpreter --repeat times; prints the median wall time of each and the ratio
(goal: ``l1ad --help`` under 1 s). Wall time depends on the machine's load, so the baseline is timed in
the same run. Writes ``benchmarks/results/bench_cli_startup.json``.

    python benchmarks/bench_cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout


def median_seconds(args: list[str], repeat: int) -> float:
    """Median wall time of ``python ARGS`` in a fresh interpreter with this checkout first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    help_s = median_seconds(["-m", "l1ad", "--help"], args.repeat)
    emulate_help_s = median_seconds(["-m", "l1ad", "emulate", "--help"], args.repeat)
    torch_s = median_seconds(["-c", "import torch"], args.repeat)
    load = os.getloadavg()[0]
    print(f"l1ad --help          {help_s:.3f} s (median of {args.repeat})")
    print(f"l1ad emulate --help  {emulate_help_s:.3f} s")
    print(f"import torch         {torch_s:.3f} s")
    print(f"ratio --help / torch {help_s / torch_s:.2f}")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs")

    from offline.artifacts import write_json

    write_json(
        ROOT / "benchmarks" / "results" / "bench_cli_startup.json",
        {
            "repeat": args.repeat,
            "help_s": help_s,
            "emulate_help_s": emulate_help_s,
            "import_torch_s": torch_s,
            "ratio_help_to_torch": help_s / torch_s,
            "cpus": os.cpu_count(),
            "load_average": load,
        },
    )


if __name__ == "__main__":
    main()
