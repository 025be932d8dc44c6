"""Calibration of l1ad's firmware cost estimates against published Vivado figures.

Rebuilds the networks of ``firmware.calibration`` (architecture, precision, strategy, reuse
factor, part and clock as published; weights drawn, since they were not saved), estimates
each published figure and writes ``benchmarks/results/firmware_calibration.csv``
(network, source, metric, published, estimate, ratio, notes).

Rows "UltraScale+ -2 per-level delay" check the delay model against the cited per-level
figures (FloPoCo's Vivado-derived UltraScale+ -2 target model); no published post-route
latency of a distributed-arithmetic design could be rebuilt (``firmware.calibration``).

Rows of the hls4ml Latency model are the calibration (same implementation as published).
Rows of da4ml and Yosys describe the same network built as distributed arithmetic, a
different implementation: their ratio shows how far the DA estimate is from the Latency
design the user would synthesise, not an error of the DA estimate.

    python benchmarks/bench_firmware_calibration.py [--draws 20] [--no-yosys]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from firmware.calibration import (
    CALIBRATION_DRAWS,
    INSTANCE,
    PUBLISHED,
    calibration_rows,
    delay_check_rows,
    glorot_on_grid,
)

RESULT = Path(__file__).resolve().parent / "results" / "firmware_calibration.csv"
COLUMNS = ("network", "source", "metric", "published", "estimate", "ratio", "notes")


def da4ml_dense(
    seed: int, clock_period_ns: float, workdir: Path, use_yosys: bool
) -> dict[str, float]:
    """The test_report network (16->5, ReLU, ap_fixed<16,6>) as da4ml distributed arithmetic."""
    from da4ml.codegen import VerilogModel
    from da4ml.trace import FixedVariableArrayInput, comb_trace, to_pipeline

    from firmware.cost import adders_per_cycle, yosys_stat
    from firmware.trace import SOLVER_OPTIONS

    w = glorot_on_grid(np.random.default_rng(seed), 16, 5, fractional=10, integer=6)
    inp = FixedVariableArrayInput((16,), solver_options=dict(SOLVER_OPTIONS))
    x = inp.quantize(1, 5, 10, "WRAP", "TRN")
    y = np.maximum((x @ w).quantize(1, 5, 10, "WRAP", "TRN"), 0.0)
    comb = comb_trace(inp, y)
    cutoff = adders_per_cycle(clock_period_ns)
    pipe = to_pipeline(comb, cutoff, verbose=False)
    out = {"luts": float(comb.cost), "ffs": float(pipe.reg_bits), "dsps": 0.0,
           "latency_cycles": float(len(pipe.solutions))}  # fmt: skip
    if use_yosys:
        rtl_dir = workdir / f"rtl{seed}"
        VerilogModel(
            pipe, "trigger_rtl", rtl_dir, latency_cutoff=cutoff, print_latency=False
        ).write()
        counts = yosys_stat(rtl_dir, workdir / f"yosys{seed}.log")
        out.update({f"yosys_{k}": v for k, v in counts.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--draws", type=int, default=CALIBRATION_DRAWS, help="seeded weight draws per network"
    )
    parser.add_argument("--no-yosys", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()

    rows = [
        (
            r.network,
            r.source,
            r.metric,
            r.published,
            round(r.estimate, 2),
            round(r.ratio, 3),
            r.notes,
        )
        for r in calibration_rows(args.draws)
    ]
    use_yosys = not args.no_yosys and shutil.which("yosys") is not None
    with tempfile.TemporaryDirectory() as tmp:
        da = [
            da4ml_dense(seed, 5.0, Path(tmp), use_yosys and seed < 3) for seed in range(args.draws)
        ]
    for p in PUBLISHED:
        if (
            p.network != PUBLISHED[0].network
            or INSTANCE in p.source
            or ("post-synthesis" not in p.source and p.metric != "latency_cycles")
        ):  # da4ml_dense rebuilds the first network; its instance figures are the Latency design's
            continue
        est = np.array([d[p.metric] for d in da])
        rows.append((p.network, p.source, p.metric, p.value, round(float(est.mean()), 2), round(float(est.mean()) / p.value, 3),
                     f"estimate: da4ml distributed arithmetic of the same network (da4ml's 1 ns/level convention), mean of "
                     f"{args.draws} draws; a different implementation from the published Latency design"))  # fmt: skip
        key = f"yosys_{p.metric}"
        if key in da[0]:
            ys = np.array([d[key] for d in da if key in d])
            rows.append((p.network, p.source, p.metric, p.value, round(float(ys.mean()), 2),
                         round(float(ys.mean()) / p.value, 3),
                         f"estimate: yosys synth_xilinx -family xcup of da4ml's RTL, mean of {len(ys)} draws; "
                         "a different implementation (distributed arithmetic) from the published Latency design"))  # fmt: skip
    rows += [(r.network, r.source, r.metric, r.published, round(r.estimate, 4), round(r.ratio, 3), r.notes)
             for r in delay_check_rows()]  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    for row in rows:
        print(
            f"{row[2]:>15} published {row[3]:>8g} estimate {row[4]:>10g} ratio {row[5]:>6.3f}  {row[6][:70]}"
        )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
