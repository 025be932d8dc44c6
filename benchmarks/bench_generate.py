"""Event generation throughput: events/s (after the pre-selection) with 1 worker and with every core.

Usage: python benchmarks/bench_generate.py [--process wlnu] [--events 400] [--workers N]

Prints the rate of each configuration, the ratio (parallel speed-up), and the
per-process pre-selection efficiency. The same seed and task split is used for
both runs, so both generate identical events: the ratio measures parallelism only.
"""

from __future__ import annotations

import argparse
import os
import time

from offline.events.generate import generate


def _run(process: str, events: int, workers: int, task_size: int) -> tuple[float, dict]:
    started = time.perf_counter()
    result = generate(process, events, seed=2024, workers=workers, progress=False, task_size=task_size)
    return events / (time.perf_counter() - started), result.metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="wlnu")
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # enough tasks for every worker to have work
    task_size = max(1, args.events // (2 * args.workers))
    one, meta = _run(args.process, args.events, 1, task_size)
    many, _ = _run(args.process, args.events, args.workers, task_size)
    print(f"process {args.process}, {args.events} events, tasks of {task_size}, load {os.getloadavg()[0]:.1f}")
    for name, stats in meta["components"].items():
        print(f"  {name}: pre-selection efficiency {stats['preselection_efficiency']:.3f} "
              f"({stats['generated']} generated, {stats['prefilter_vetoed']} vetoed by the pre-filter), "
              f"{stats['events_per_cpu_s']:.1f} events per CPU second")
    print(f"1 worker : {one:8.1f} events/s")
    print(f"{args.workers} workers: {many:8.1f} events/s")
    print(f"ratio    : {many / one:8.2f}x (ideal {args.workers}x)")


if __name__ == "__main__":
    main()
