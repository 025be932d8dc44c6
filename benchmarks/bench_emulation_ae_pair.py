"""Emulator vs hls4ml C simulation on the autoencoder pair, single-threaded, per CPU second.

Two QKeras dense/ReLU autoencoders of the firmware preset's shape (``PRESETS["firmware"]``,
57-16-4-16-57; random weights, seeds 0 and 1), each written and compiled by hls4ml (io_parallel, Latency) as its
own project. An event is both networks on the same 57 inputs: the emulator runs --events
events through both (BLAS on one thread), hls4ml's ``predict()`` (one thread) a sample
through both. Prints events per CPU second of the pair on both sides, the ratio (target >=
1000x) and the mismatch count (must be 0); writes ``benchmarks/results/bench_emulation_ae_pair.json``.

    python benchmarks/bench_emulation_ae_pair.py [--events 1000000] [--csim-events 10000] [--repeat 3]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from bench_emulation import csim_sample, fastest, parser, report, single_threaded, test_inputs

from offline.ad.model import PRESETS

SIZES = list(PRESETS["firmware"].widths)


def main() -> None:
    args = parser(__doc__, csim_events=10_000).parse_args()
    from emulation import emulate_project, load_hls_project
    from emulation.float_path import compile_project
    from firmware.csim import CSimulation, build_qkeras_dense, write_qkeras_project

    with tempfile.TemporaryDirectory(prefix="bench_ae_pair_") as tmp:
        root = args.project_dir or Path(tmp)
        start = time.perf_counter()
        sims = [write_qkeras_project(build_qkeras_dense(SIZES, seed=k), root / f"ae{k + 1}", project_name=f"ae{k + 1}")
                for k in range(2)]  # fmt: skip
        assert all(isinstance(sim, CSimulation) for sim in sims)  # compiled (compile=True)
        print(
            f"two hls4ml projects written and compiled in {time.perf_counter() - start:.1f} s: {root}"
        )
        projects = [load_hls_project(root / f"ae{k + 1}") for k in range(2)]
        for p in projects:
            print(f"{p.top}: float path per step {compile_project(p).dtypes}")
        x = test_inputs(args.events, SIZES[0])

        def emulate_pair():
            return [emulate_project(p, x) for p in projects]

        sample = csim_sample(args.events, args.csim_events)

        def predict_pair():
            return [sim.predict(x[sample]) for sim in sims if isinstance(sim, CSimulation)]

        with single_threaded():
            for p in projects:
                emulate_project(p, x[:10_000])  # warm-up
            results, emu_cpu, emu_wall = fastest(emulate_pair, args.repeat)
            for sim in sims:
                assert isinstance(sim, CSimulation)
                sim.predict(x[sample[:100]])  # warm-up
            expected, csim_cpu, csim_wall = fastest(predict_pair, args.repeat)
    bad = np.zeros(len(sample), dtype=bool)
    for want, got in zip(expected, results, strict=True):
        bad |= np.any(want != got.outputs[sample], axis=1)
    report("bench_emulation_ae_pair", 1000, args.events, emu_cpu, emu_wall, len(sample), csim_cpu, csim_wall,
           int(bad.sum()), len(sample), overflows=sum(r.overflows.total for r in results))  # fmt: skip


if __name__ == "__main__":
    main()
