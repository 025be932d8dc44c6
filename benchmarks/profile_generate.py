"""Where the CPU time of event generation goes, per background process (cProfile on CPU time).

Usage: python benchmarks/profile_generate.py [--events 150] [--processes wlnu qcd zll]

Splits one task's CPU time into Pythia initialisation, Pythia event generation
(``nextBatch``: showers, MPI, hadronisation, decays and the conversion of the
event record to awkward arrays), the L1 response (of which FastJet) and the
rest, for the v1 generator and the current one. Also times Pythia alone
(``next()`` without the record conversion, and with ``HadronLevel:all = off``)
to show how much of Pythia is the parton level. Writes
``benchmarks/results/profile_generate.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

from offline.events.generate import _silence_fastjet_banner, make_tasks, run_task
from offline.events.processes import get_process

RESULTS = Path(__file__).resolve().parent / "results"
# profiled function names (substrings) of each part
PARTS = {
    "pythia_init": "pythia8mc.init>",
    "pythia_nextBatch": "pythia8mc.nextBatch>",
    "l1_response": "l1_objects",
    "fastjet": "fastjet._ext.interfacemulti>",
}


def _profile(process: str, events: int, baseline: bool) -> dict[str, float]:
    task = make_tasks(process, events, seed=99, task_size=events, baseline=baseline)[0]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    result = run_task(task)
    profiler.disable()
    cumulative: dict[str, float] = {}
    # Stats.stats (function -> timings) is not in typeshed; get_stats_profile would not sum same-named functions
    for (_, _, name), (_, _, _, cum, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        cumulative[name] = cumulative.get(name, 0.0) + cum
    total = cumulative["run_task"]
    shares = {
        part: sum(v for k, v in cumulative.items() if k.endswith(key)) / total
        for part, key in PARTS.items()
    }
    shares["other"] = 1 - shares["pythia_init"] - shares["pythia_nextBatch"] - shares["l1_response"]
    return {
        "cpu_seconds": total,
        "events": len(result.weights),
        "generated": result.tried,
        **shares,
    }


def _pythia_alone(process: str, events: int) -> dict[str, float]:
    import pythia8mc

    out = {}
    for name, extra in (("next_full", ()), ("next_parton_level_only", ("HadronLevel:all = off",))):
        pythia = pythia8mc.Pythia("", False)
        for line in (*get_process(process).pythia_settings(7), *extra):
            pythia.readString(line)
        pythia.init()
        started = time.process_time()
        for _ in range(events):
            pythia.next()
        out[name] = time.process_time() - started
    pythia = pythia8mc.Pythia("", False)
    for line in get_process(process).pythia_settings(7):
        pythia.readString(line)
    pythia.init()
    started = time.process_time()
    pythia.nextBatch(events)
    out["nextBatch_full"] = time.process_time() - started
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=150)
    parser.add_argument("--processes", nargs="+", default=["wlnu", "qcd", "zll"])
    args = parser.parse_args()
    _silence_fastjet_banner()  # imports awkward and fastjet: not counted in the first profile
    out = {}
    for process in args.processes:
        out[process] = {
            "old": _profile(process, args.events, True),
            "new": _profile(process, args.events, False),
            "pythia_alone_seconds_for_200_events": _pythia_alone(process, 200),
        }
        for name in ("old", "new"):
            p = out[process][name]
            print(
                f"{process:5s} {name}: {p['cpu_seconds']:6.1f} CPU s; init {p['pythia_init']:.0%}, "
                f"Pythia events {p['pythia_nextBatch']:.0%}, L1 response {p['l1_response']:.0%} "
                f"(FastJet {p['fastjet']:.0%}), other {p['other']:.0%}",
                flush=True,
            )
        alone = out[process]["pythia_alone_seconds_for_200_events"]
        print(
            f"{process:5s} Pythia alone (200 events): next() {alone['next_full']:.2f} s, parton level only "
            f"{alone['next_parton_level_only']:.2f} s, nextBatch {alone['nextBatch_full']:.2f} s",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile_generate.json").write_text(
        json.dumps(
            {
                "events_per_task": args.events,
                "shares_of_task_cpu": out,
                "timer": "time.process_time (cProfile), one process",
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
