"""Trigger emulator vs C simulation of the whole trigger project, single-threaded, per CPU second.

The default firmware model (``firmware.example.default_model``: ``PRESETS["firmware"]`` twice,
57-16-4-16-57; default QuantConfig types, random on-grid weights, thresholds at the 99 % background
quantile), its hls4ml trigger project (QKeras frontend, ``trigger_top`` wrapper, compiled
with g++ through ``firmware.project.CSim``, which runs a batch in one ctypes call),
--events toy events (hardware words) of which 2 % are edge words (empty, saturating pT,
extreme). The emulator (BLAS limited to one thread) runs all events, the C simulation (one
thread) a sample of them; each side is timed --repeat times and the fastest counts. Prints
events per CPU second of both, their ratio (target >= 100x) and the mismatch count (must
be 0); writes ``benchmarks/results/bench_trigger.json``.

    python benchmarks/bench_trigger.py [--events 1000000] [--csim-events 20000] [--repeat 3]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from bench_emulation import fastest, parser, report, single_threaded


def main() -> None:
    args = parser(__doc__).parse_args()
    from emulation import TriggerEmulator
    from emulation.events import edge_words
    from firmware.example import default_model, toy_words
    from firmware.project import CSim
    from firmware.trigger_csim import write_trigger_project

    spec, weights = default_model(seed=0)
    n_edge = max(8, args.events // 50)
    words = np.concatenate(
        [edge_words(spec, np.random.default_rng(1), n_edge), toy_words(args.events - n_edge, 2)]
    )
    with tempfile.TemporaryDirectory(prefix="bench_trigger_") as tmp:
        folder = args.project_dir or Path(tmp) / "trigger"
        start = time.perf_counter()
        if not (folder / "l1ad_firmware.json").exists():
            write_trigger_project(spec, weights, folder, words[:100])
        sim = CSim(folder, spec)
        print(
            f"trigger project written and compiled in {time.perf_counter() - start:.1f} s: {folder}"
        )
        emulator = TriggerEmulator(spec, weights)
        print(
            f"float path per step: {[p.dtypes for p in emulator.programs]}, scores {emulator.score_dtypes}"
        )
        rng = np.random.default_rng(0)
        sample = np.unique(np.concatenate([
            np.arange(min(n_edge, 1000)),  # edge words first
            rng.choice(args.events, size=min(args.csim_events, args.events), replace=False),
        ]))[: args.csim_events]  # fmt: skip
        with single_threaded():
            emulator(words[:20_000])  # warm-up
            result, emu_cpu, emu_wall = fastest(lambda: emulator(words), args.repeat)
            sim(words[sample[:100]])  # warm-up
            expected, csim_cpu, csim_wall = fastest(lambda: sim(words[sample]), args.repeat)
    sub = dict(
        r1=result.r1[sample],
        r2=result.r2[sample],
        regions=result.regions[sample],
        trigger=result.trigger[sample],
    )
    mismatches = int(((sub["r1"] != expected.r1) | (sub["r2"] != expected.r2) | (sub["trigger"] != expected.trigger)
                      | (sub["regions"] != expected.regions).any(axis=1)).sum())  # fmt: skip
    print(f"fired:         {int(result.trigger.sum())} of {args.events} events")
    report("bench_trigger", 100, args.events, emu_cpu, emu_wall, len(sample), csim_cpu, csim_wall, mismatches,
           len(sample), fired=int(result.trigger.sum()))  # fmt: skip


if __name__ == "__main__":
    main()
