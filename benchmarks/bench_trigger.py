"""Trigger emulator vs C simulation of the whole trigger project (10^6 events).

The default firmware model (``firmware.example.default_model``: 57-32-16-4-16-32-57 twice,
default QuantConfig types, random on-grid weights, thresholds at the 99 % background
quantile), its hls4ml trigger project (QKeras frontend, ``trigger_top`` wrapper, compiled
with g++ through ``firmware.project.CSim``), 10^6 toy events (hardware words) of which
2 % are edge words (empty, saturating pT, extreme). Prints events/s of the emulator on all
events and of the C simulation on a sample of the same events (fastest of --repeat timings,
wall and CPU time), their ratio (target >= 100x) and the mismatch count (must be 0).

    python benchmarks/bench_trigger.py [--events 1000000] [--csim-events 20000] [--repeat 3]

Writes ``benchmarks/results/bench_trigger.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
warnings.filterwarnings("ignore", category=UserWarning, module="tf_keras")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--csim-events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="time each side this often, keep the fastest")
    parser.add_argument("--workers", type=int, default=1, help="emulator threads")
    parser.add_argument("--project-dir", type=Path, default=None, help="write (or reuse) the trigger project here")
    args = parser.parse_args()

    from emulation import TriggerEmulator
    from firmware.example import default_model, edge_words, toy_words
    from firmware.project import CSim
    from firmware.trigger_csim import write_trigger_project

    spec, weights = default_model(seed=0)
    n_edge = max(8, args.events // 50)
    words = np.concatenate([edge_words(spec, np.random.default_rng(1), n_edge), toy_words(args.events - n_edge, 2)])
    with tempfile.TemporaryDirectory(prefix="bench_trigger_") as tmp:
        folder = args.project_dir or Path(tmp) / "trigger"
        start = time.perf_counter()
        if not (folder / "l1ad_firmware.json").exists():
            write_trigger_project(spec, weights, folder, words[:100])
        sim = CSim(folder, spec)
        print(f"trigger project written and compiled in {time.perf_counter() - start:.1f} s: {folder}")

        emulator = TriggerEmulator(spec, weights)
        emulator(words[:20_000])  # warm-up
        emu_wall, emu_cpu = [], []
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            result = emulator(words, workers=args.workers)
            emu_wall.append(time.perf_counter() - start)
            emu_cpu.append(time.process_time() - cpu)

        rng = np.random.default_rng(0)
        sample = np.unique(np.concatenate([
            np.arange(min(n_edge, 1000)),  # edge words first
            rng.choice(args.events, size=min(args.csim_events, args.events), replace=False),
        ]))[: args.csim_events]  # fmt: skip
        sim(words[sample[:100]])  # warm-up
        csim_wall, csim_cpu = [], []
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            expected = sim(words[sample])
            csim_wall.append(time.perf_counter() - start)
            csim_cpu.append(time.process_time() - cpu)

    sub = dict(r1=result.r1[sample], r2=result.r2[sample], regions=result.regions[sample], trigger=result.trigger[sample])
    mismatches = int(((sub["r1"] != expected.r1) | (sub["r2"] != expected.r2) | (sub["trigger"] != expected.trigger)
                      | (sub["regions"] != expected.regions).any(axis=1)).sum())
    emu_rate, csim_rate = args.events / min(emu_wall), len(sample) / min(csim_wall)
    emu_cpu_rate, csim_cpu_rate = args.events / min(emu_cpu), len(sample) / min(csim_cpu)
    print(f"emulator:      {args.events} events in {min(emu_wall):.2f} s = {emu_rate:,.0f} events/s"
          f" ({emu_cpu_rate:,.0f} per CPU-second)")
    print(f"C simulation:  {len(sample)} events in {min(csim_wall):.2f} s = {csim_rate:,.0f} events/s"
          f" ({csim_cpu_rate:,.0f} per CPU-second)")
    print(f"ratio:         {emu_rate / csim_rate:,.0f}x wall, {emu_cpu_rate / csim_cpu_rate:,.0f}x CPU (target >= 100x)")
    print(f"load average:  {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"mismatches:    {mismatches} of {len(sample)} compared events (must be 0)")
    print(f"fired:         {int(result.trigger.sum())} of {args.events} events")
    from offline.artifacts import write_json

    write_json(Path(__file__).resolve().parent / "results" / "bench_trigger.json", {
        "events": args.events, "workers": args.workers, "emulator_events_per_s": emu_rate, "emulator_events_per_cpu_s": emu_cpu_rate,
        "csim_events": len(sample), "csim_events_per_s": csim_rate, "csim_events_per_cpu_s": csim_cpu_rate,
        "ratio_wall": emu_rate / csim_rate, "ratio_cpu": emu_cpu_rate / csim_cpu_rate, "mismatches": mismatches,
        "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
    })  # fmt: skip


if __name__ == "__main__":
    main()
