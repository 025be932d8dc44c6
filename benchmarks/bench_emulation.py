"""Emulator vs hls4ml C simulation on a plain dense network project, single-threaded, per CPU second.

Builds a QKeras dense/ReLU network of the firmware preset's shape
(``PRESETS["firmware"]``, 57-16-4-16-57; random weights), writes and compiles it with hls4ml (io_parallel, Latency),
emulates --events events (BLAS limited to one thread) and runs hls4ml's ``predict()`` (one
thread) on a sample of the same events. Prints events per CPU second of both (fastest of
--repeat timings), their ratio (target >= 100x) and the mismatch count (0); writes
``benchmarks/results/bench_emulation.json``.

    python benchmarks/bench_emulation.py [--events 1000000] [--csim-events 20000] [--repeat 3]

The helpers here (inputs, timing, the report) are shared by ``bench_emulation_conv2d.py`` and
``bench_emulation_ae_pair.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
warnings.filterwarnings(
    "ignore", category=UserWarning, module="tf_keras"
)  # QKeras serialisation noise

RESULTS = Path(__file__).resolve().parent / "results"


def parser(doc: str, events: int = 1_000_000, csim_events: int = 20_000) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--events", type=int, default=events, help="events the emulator runs")
    p.add_argument(
        "--csim-events",
        type=int,
        default=csim_events,
        help="of which hls4ml predict() runs a sample",
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="time each side this often, keep the fastest"
    )
    p.add_argument("--project-dir", type=Path, default=None, help="keep the hls4ml project(s) here")
    return p


def test_inputs(n: int, n_in: int, seed: int = 0, scale: float = 4.0) -> np.ndarray:
    """Gaussian inputs, 1 % empty (zeros) and 1 % saturating (x100) events first."""
    x = np.random.default_rng(seed).normal(0, scale, (n, n_in))
    x[: n // 100] = 0.0
    x[n // 100 : n // 50] *= 100
    return x


def csim_sample(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Indices of the C-simulated events: the first 500 (empty, saturating) and a random spread."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(size, n), replace=False))
    sample[: min(500, len(sample))] = np.arange(min(500, len(sample)))
    return np.unique(sample)


def fastest(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, float]:
    """(result of the last run, fastest CPU seconds, fastest wall seconds) of ``repeat`` runs."""
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return result, min(cpu), min(wall)


def single_threaded():
    """BLAS (numpy's and torch's) on one thread: the C simulation runs on one too."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def report(name: str, target: float, emu_events: int, emu_cpu: float, emu_wall: float, csim_events: int,
           csim_cpu: float, csim_wall: float, mismatches: int, compared: int, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """Print the figures and write ``benchmarks/results/{name}.json``."""
    emu_rate, csim_rate = emu_events / emu_cpu, csim_events / csim_cpu
    ratio = emu_rate / csim_rate
    load = os.getloadavg()[0]
    print(f"emulator:      {emu_events} events in {emu_cpu:.2f} CPU-s = {emu_rate:,.0f} events/CPU-s"
          f" ({emu_events / emu_wall:,.0f} events/s wall)")  # fmt: skip
    print(f"C simulation:  {csim_events} events in {csim_cpu:.2f} CPU-s = {csim_rate:,.0f} events/CPU-s"
          f" ({csim_events / csim_wall:,.0f} events/s wall)")  # fmt: skip
    print(f"ratio:         {ratio:,.0f}x per CPU second, both single-threaded (target >= {target:,.0f}x)"
          f"{'' if ratio >= target else '  -- TARGET NOT MET'}")  # fmt: skip
    print(f"mismatches:    {mismatches} of {compared} compared events (must be 0)")
    print(f"load average:  {load:.1f} on {os.cpu_count()} CPUs")
    record = {
        "events": emu_events, "emulator_cpu_s": emu_cpu, "emulator_events_per_cpu_s": emu_rate,
        "emulator_events_per_s": emu_events / emu_wall, "csim_events": csim_events, "csim_cpu_s": csim_cpu,
        "csim_events_per_cpu_s": csim_rate, "csim_events_per_s": csim_events / csim_wall, "ratio_cpu": ratio,
        "target": target, "threads": 1, "mismatches": mismatches, "compared_events": compared,
        "load_average": load, "cpus": os.cpu_count(), **extra,
    }  # fmt: skip
    from offline.artifacts import write_json

    write_json(RESULTS / f"{name}.json", record)
    print(f"wrote {RESULTS / f'{name}.json'}")
    return record


def main() -> None:
    args = parser(__doc__).parse_args()
    from emulation import (
        emulate_project,
        load_hls_project,
    )
    from emulation.float_path import compile_project
    from firmware.csim import CSimulation, build_qkeras_dense, write_qkeras_project
    from offline.ad.model import PRESETS

    sizes = list(PRESETS["firmware"].widths)
    with tempfile.TemporaryDirectory(prefix="bench_emulation_") as tmp:
        folder = args.project_dir or Path(tmp) / "prj"
        start = time.perf_counter()
        sim = write_qkeras_project(
            build_qkeras_dense(sizes, seed=0), folder, project_name="bench_ae"
        )
        assert isinstance(sim, CSimulation)  # compiled (compile=True)
        print(
            f"hls4ml project written and compiled in {time.perf_counter() - start:.1f} s: {folder}"
        )
        project = load_hls_project(folder)
        print(project.describe())
        print(f"float path per layer: {compile_project(project).dtypes}")
        x = test_inputs(args.events, sizes[0])
        with single_threaded():
            emulate_project(project, x[:10_000])  # warm-up
            result, emu_cpu, emu_wall = fastest(lambda: emulate_project(project, x), args.repeat)
            sample = csim_sample(args.events, args.csim_events)
            sim.predict(x[sample[:100]])  # warm-up
            expected, csim_cpu, csim_wall = fastest(lambda: sim.predict(x[sample]), args.repeat)
    mismatches = int(np.any(expected != result.outputs[sample], axis=1).sum())
    report("bench_emulation", 100, args.events, emu_cpu, emu_wall, len(sample), csim_cpu, csim_wall, mismatches,
           len(sample), overflows=result.overflows.total)  # fmt: skip


if __name__ == "__main__":
    main()
