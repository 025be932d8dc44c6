"""Emulator vs hls4ml C simulation on a plain dense network project (10^6 events).

Builds a QKeras 57-32-16-4-16-32-57 dense/ReLU network (the trigger autoencoder's
shape, random weights), writes and compiles it with hls4ml (io_parallel, Latency),
emulates 10^6 events and runs hls4ml's C simulation on a sample of the same events.
Prints events/s of both (fastest of --repeat timings; wall and CPU time, since the
machine may be shared), their ratio (target >= 100x) and the mismatch count (0).

    python benchmarks/bench_emulation.py [--events 1000000] [--csim-events 20000] [--repeat 3]
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
warnings.filterwarnings("ignore", category=UserWarning, module="tf_keras")  # QKeras serialisation noise

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--csim-events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="time each side this often, keep the fastest")
    parser.add_argument("--project-dir", type=Path, default=None, help="keep the hls4ml project here")
    args = parser.parse_args()

    from emulation import (
        emulate_project,
        load_hls_project,
    )
    from firmware.csim import CSimulation, build_qkeras_dense, write_qkeras_project

    sizes = [57, 32, 16, 4, 16, 32, 57]
    with tempfile.TemporaryDirectory(prefix="bench_emulation_") as tmp:
        folder = args.project_dir or Path(tmp) / "prj"
        start = time.perf_counter()
        sim = write_qkeras_project(build_qkeras_dense(sizes, seed=0), folder, project_name="bench_ae")
        assert isinstance(sim, CSimulation)  # compiled (compile=True)
        print(f"hls4ml project written and compiled in {time.perf_counter() - start:.1f} s: {folder}")
        project = load_hls_project(folder)
        print(project.describe())

        rng = np.random.default_rng(0)
        x = rng.normal(0, 4, (args.events, sizes[0]))
        x[: args.events // 100] = 0.0  # empty events
        x[args.events // 100 : args.events // 50] *= 100  # saturating / wrapping inputs

        emulate_project(project, x[:10_000])  # warm-up
        # The machine may be shared: each side is timed --repeat times, the fastest counts.
        emu_seconds, emu_cpu = [], []
        for _ in range(args.repeat):
            cpu = time.process_time()
            result = emulate_project(project, x)
            emu_cpu.append(time.process_time() - cpu)
            emu_seconds.append(result.seconds)
        emu_rate = args.events / min(emu_seconds)

        # C simulation on a sample spread over the same events
        sample = np.sort(rng.choice(args.events, size=min(args.csim_events, args.events), replace=False))
        sample[: min(500, len(sample))] = np.arange(min(500, len(sample)))  # include empty/saturating ones
        sample = np.unique(sample)
        sim.predict(x[sample[:100]])  # warm-up
        csim_wall, csim_cpu = [], []
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            expected = sim.predict(x[sample])
            csim_wall.append(time.perf_counter() - start)
            csim_cpu.append(time.process_time() - cpu)
        csim_seconds = min(csim_wall)
        csim_rate = len(sample) / csim_seconds
        mismatches = int(np.any(expected != result.outputs[sample], axis=1).sum())

    # On a shared machine wall time depends on the load; CPU time (all threads) less so.
    emu_cpu_rate, csim_cpu_rate = args.events / min(emu_cpu), len(sample) / min(csim_cpu)
    print(f"emulator:      {args.events} events in {min(emu_seconds):.2f} s = {emu_rate:,.0f} events/s"
          f" ({emu_cpu_rate:,.0f} per CPU-second)")
    print(f"C simulation:  {len(sample)} events in {csim_seconds:.2f} s = {csim_rate:,.0f} events/s"
          f" ({csim_cpu_rate:,.0f} per CPU-second)")
    print(f"ratio:         {emu_rate / csim_rate:,.0f}x wall, {emu_cpu_rate / csim_cpu_rate:,.0f}x CPU (target >= 100x)")
    print(f"load average:  {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"mismatches:    {mismatches} of {len(sample)} compared events (must be 0)")
    print(f"overflows:     {result.overflows.total} values wrapped or saturated (all casts)")

if __name__ == "__main__":
    main()
