"""Generation speed: accepted background events per CPU second, old (v1) and new generator, same run.

Usage: python benchmarks/bench_generate.py [--events 300] [--seed 2024] [--repeats 1]

Runs one task per background component (W, QCD, Z, tt) in this process, with
the v1 generator (full L1 response of every event, then the pre-selection) and
the current one, on the same seeds, and measures the CPU time of this process
(``time.process_time``: the load of other jobs on the machine does not count).
The mixture's rate is that of the ADC2021 fractions: 1 / sum_i(f_i / rate_i).
Writes ``benchmarks/results/bench_generate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from offline.events.generate import make_tasks, run_task
from offline.events.processes import MIX_FRACTIONS, mixture_cpu_seconds_per_event

RESULTS = Path(__file__).resolve().parent / "results"


def _rate(process: str, events: int, seed: int, baseline: bool) -> dict[str, float]:
    task = make_tasks(process, events, seed, task_size=events, baseline=baseline)[0]
    started = time.process_time()
    result = run_task(task)
    seconds = time.process_time() - started
    return {
        "events": len(result.weights),
        "generated": result.tried,
        "cpu_seconds": seconds,
        "events_per_cpu_s": len(result.weights) / seconds,
    }


def mixture_rate(rates: dict[str, float]) -> float:
    return 1.0 / mixture_cpu_seconds_per_event({p: 1.0 / r for p, r in rates.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=300, help="accepted events per process and generator"
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--repeats", type=int, default=1, help="seeds per process (seed, seed+1, ...)"
    )
    args = parser.parse_args()
    per_process: dict[str, dict[str, dict[str, float]]] = {}
    for process in MIX_FRACTIONS:
        sums = {"old": [0.0, 0.0], "new": [0.0, 0.0]}
        for r in range(args.repeats):
            # alternate the order, so that a drift of the machine's speed favours neither
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for name in order:
                m = _rate(process, args.events, args.seed + r, baseline=name == "old")
                sums[name][0] += m["events"]
                sums[name][1] += m["cpu_seconds"]
        per_process[process] = {
            name: {"events": e, "cpu_seconds": s, "events_per_cpu_s": e / s}
            for name, (e, s) in sums.items()
        }
        old, new = (per_process[process][k]["events_per_cpu_s"] for k in ("old", "new"))
        print(
            f"{process:6s}: old {old:7.1f}  new {new:7.1f}  events per CPU s  ({new / old:.2f}x)",
            flush=True,
        )
    old = mixture_rate({p: v["old"]["events_per_cpu_s"] for p, v in per_process.items()})
    new = mixture_rate({p: v["new"]["events_per_cpu_s"] for p, v in per_process.items()})
    print(
        f"background mixture: old {old:.1f}, new {new:.1f} accepted events per CPU second, ratio {new / old:.2f}"
    )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "events_per_cpu_s_old": old,
        "events_per_cpu_s_new": new,
        "ratio": new / old,
        "per_process": per_process,
        "mix_fractions": MIX_FRACTIONS,
        "events_per_process": args.events * args.repeats,
        "seed": args.seed,
        "load_average": os.getloadavg()[0],
        "measure": "time.process_time of one process, Pythia init included, one task per process and generator",
    }
    (RESULTS / "bench_generate.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS / 'bench_generate.json'}")


if __name__ == "__main__":
    main()
