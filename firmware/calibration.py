"""The calibration set: published Vivado figures of networks rebuilt here, and our estimates of them.

Only networks whose architecture, precision, strategy, reuse factor, part and clock are
published can be rebuilt; their weights usually are not, and the cost of both implementations
depends on the weights (which products are zero or powers of two, how many CSD digits each has).
Each entry says what it fixes and what it draws.

1. ``hls4ml test_report dense 16->5``: the network of hls4ml's ``test/pytest/test_report.py``
   (fastmachinelearning/hls4ml, Apache-2.0): ``Dense(5, input_shape=(16,), activation='relu')``,
   hls4ml's default ``ap_fixed<16,6>`` everywhere, Latency strategy, reuse factor 1, ``io_stream``,
   part xc7z020clg400-1, 5 ns clock. Its Vivado HLS 2020.1 csynth report and Vivado 2020.1
   post-synthesis utilisation ship as ``test/pytest/test_report/Vivado/myproject_csynth.rpt`` and
   ``vivado_synth.rpt``. The Keras weights were Glorot-uniform draws that were not saved: we draw
   ``CALIBRATION_DRAWS`` seeded Glorot-uniform matrices on the ``ap_fixed<16,6>`` grid and report the
   mean estimate (the spread is in the notes).

No published post-route figure of a distributed-arithmetic (da4ml) design came with its weights
and exact configuration in a form this project could read, so da4ml's own estimate and the
delay model stay uncalibrated and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware.latency_project import INPUT_REGISTER_CYCLES, dense_cost
from firmware.latency_project import SOURCE as LATENCY_SOURCE

CALIBRATION_DRAWS = 20


@dataclass(frozen=True)
class Published:
    network: str
    source: str
    metric: str
    value: float


_TEST_REPORT = "hls4ml test_report dense 16->5 relu (ap_fixed<16,6>, Latency, RF1, io_stream, xc7z020-1, 5 ns)"
_CSYNTH = "hls4ml repo test/pytest/test_report/Vivado/myproject_csynth.rpt (Vivado HLS 2020.1 csynth)"
_VSYNTH = "hls4ml repo test/pytest/test_report/Vivado/vivado_synth.rpt (Vivado 2020.1 post-synthesis)"
# the same csynth report's per-instance detail: the dense layer alone, without the io_stream ReLU
# instance (2 cycles, 256 LUTs, 84 FFs) and the dataflow handshake around them
_CSYNTH_DENSE = (
    "hls4ml repo test/pytest/test_report/Vivado/myproject_csynth.rpt, instance "
    "dense_array_array_ap_fixed_16_6_5_3_0_5u_config2_U0 (Vivado HLS 2020.1 csynth)"
)

PUBLISHED: tuple[Published, ...] = (
    Published(_TEST_REPORT, _VSYNTH, "luts", 1526),
    Published(_TEST_REPORT, _VSYNTH, "ffs", 2428),
    Published(_TEST_REPORT, _VSYNTH, "dsps", 66),
    Published(_TEST_REPORT, _CSYNTH, "luts", 2532),
    Published(_TEST_REPORT, _CSYNTH, "ffs", 7969),
    Published(_TEST_REPORT, _CSYNTH, "dsps", 73),
    Published(_TEST_REPORT, _CSYNTH, "latency_cycles", 10),
    Published(_TEST_REPORT, _CSYNTH_DENSE, "luts", 2134),
    Published(_TEST_REPORT, _CSYNTH_DENSE, "ffs", 7860),
    Published(_TEST_REPORT, _CSYNTH_DENSE, "dsps", 73),
    Published(_TEST_REPORT, _CSYNTH_DENSE, "latency_cycles", 7),
)
INSTANCE = "instance"  # in a source: a per-instance figure of the report, compared with the layer alone


def glorot_on_grid(rng: np.random.Generator, n_in: int, n_out: int, fractional: int, integer: int) -> np.ndarray:
    """Keras' default kernel initialiser, rounded onto an ``ap_fixed`` grid (saturated to its range)."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    w = rng.uniform(-limit, limit, (n_in, n_out))
    lsb = 2.0**-fractional
    return np.clip(np.round(w / lsb) * lsb, -(2.0 ** (integer - 1)), 2.0 ** (integer - 1) - lsb)


def estimate_test_report(seed: int) -> dict[str, float]:
    w = glorot_on_grid(np.random.default_rng(seed), 16, 5, fractional=10, integer=6)
    c = dense_cost(w, 10, input_width=16, accumulator_width=16, result_width=16, clock_period_ns=5.0,
                   bias=False, relu=True)  # fmt: skip  (Keras' bias starts at zero: folded away)
    cycles = float(c.latency_cycles + INPUT_REGISTER_CYCLES)
    whole = {"luts": c.luts, "ffs": c.ffs, "dsps": float(c.dsps), "latency_cycles": cycles}
    # the dense layer alone: without the ReLU's LUTs (one per result bit); the model has no cycle of its own
    # for the ReLU, so the layer's latency is the whole one
    dense = {**whole, "luts": c.luts - 5 * 16}
    return {**whole, **{f"{INSTANCE} {k}": v for k, v in dense.items()}}


@dataclass(frozen=True)
class CalibrationRow:
    network: str
    source: str
    metric: str
    published: float
    estimate: float
    ratio: float
    notes: str


def calibration_rows(draws: int = CALIBRATION_DRAWS) -> list[CalibrationRow]:
    """Our estimate of every published figure, with estimate / published."""
    runs = [estimate_test_report(seed) for seed in range(draws)]
    rows = []
    for p in PUBLISHED:
        key = f"{INSTANCE} {p.metric}" if INSTANCE in p.source else p.metric
        values = np.array([r[key] for r in runs])
        mean = float(values.mean())
        notes = (
            f"estimate: {LATENCY_SOURCE}; mean of {draws} seeded Glorot-uniform weight draws "
            f"(std {values.std():.3g}, min {values.min():g}, max {values.max():g}); published weights not saved"
        )
        rows.append(CalibrationRow(p.network, p.source, p.metric, p.value, mean, mean / p.value, notes))
    return rows


def estimate_error(rows: list[CalibrationRow] | None = None) -> dict[str, object]:
    """Measured estimate / published per metric and source (post-synthesis preferred), for summary.json."""
    rows = calibration_rows() if rows is None else rows
    latency_model: dict[str, object] = {}
    for r in rows:
        if INSTANCE in r.source:
            latency_model[f"{r.metric}_dense_instance"] = round(r.ratio, 3)
        elif r.metric not in latency_model or "post-synthesis" in r.source:
            latency_model[r.metric] = round(r.ratio, 3)
    latency_model["calibration_set"] = sorted({r.network for r in rows})
    return {
        "hls4ml_latency_model": latency_model,
        "da4ml": "not calibrated: no published distributed-arithmetic design could be rebuilt exactly",
        "delay_model": "not calibrated: Artix-7 -1 cell delays (prjxray-db) + an assumed net delay; an upper bound",
    }
