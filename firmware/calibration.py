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
2. ``dnd_hls4ml QKeras MLP 98->20->1``: thaarres/dnd_hls4ml's ``synthesize.py`` (``buildQKeras``) and the
   Vivado HLS 2020.1 csynth and Vivado 2020.1 post-synthesis reports committed beside it: 4-bit weights,
   ``ap_fixed<16,6>`` inputs, ReLU to ``ap_ufixed<6,0>`` (the report's registers), accumulators assumed
   hls4ml's default ``ap_fixed<16,6>``, reuse 1, io_parallel, xczu9eg-2 (UltraScale+), 5 ns. The report
   names the first layer's instance ``dense_latency``: the Latency implementation. Its trained weights
   were not published: drawn as for 1.

No published post-route figure of a distributed-arithmetic (da4ml) design came with its weights
and exact configuration in a form this project could read: the da4ml paper's artifact
(github.com/calad0i/da4ml-ae) ships the trained HGQ models and random matrices with their
Vivado flow, but its post-route tables (arXiv 2507.04535, Tables 3-4 and 10-13) were not
readable here, and rebuilding the HGQ models would need hgq2. So da4ml's estimate is not
calibrated, and the delay model (:mod:`firmware.delay_model`) is checked on its per-level
delays alone (:data:`DELAY_CHECKS`): each cited UltraScale+ -2 figure, as FloPoCo's
``VirtexUltrascalePlus`` target computes it from its Vivado-reported constants, against the
delay model's figure for the same construct. That shows the model carries the cited delays;
it measures nothing about placement, routing congestion or fan-out, which only an implemented
design can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware import delay_model
from firmware.delay_model import fabric_for_part
from firmware.latency_project import INPUT_REGISTER_CYCLES, dense_cost
from firmware.latency_project import SOURCE as LATENCY_SOURCE

CALIBRATION_DRAWS = 20


@dataclass(frozen=True)
class Published:
    network: str
    source: str
    metric: str
    value: float


_TEST_REPORT = (
    "hls4ml test_report dense 16->5 relu (ap_fixed<16,6>, Latency, RF1, io_stream, xc7z020-1, 5 ns)"
)
_CSYNTH = (
    "hls4ml repo test/pytest/test_report/Vivado/myproject_csynth.rpt (Vivado HLS 2020.1 csynth)"
)
_VSYNTH = (
    "hls4ml repo test/pytest/test_report/Vivado/vivado_synth.rpt (Vivado 2020.1 post-synthesis)"
)
# the same csynth report's per-instance detail: the dense layer alone, without the io_stream ReLU
# instance (2 cycles, 256 LUTs, 84 FFs) and the dataflow handshake around them
_CSYNTH_DENSE = (
    "hls4ml repo test/pytest/test_report/Vivado/myproject_csynth.rpt, instance "
    "dense_array_array_ap_fixed_16_6_5_3_0_5u_config2_U0 (Vivado HLS 2020.1 csynth)"
)

_TEST_REPORT_FIGURES = (
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
INSTANCE = (
    "instance"  # in a source: a per-instance figure of the report, compared with the layer alone
)

# 2. a QKeras MLP 98 -> 20 (relu) -> 1 (sigmoid) built by thaarres/dnd_hls4ml's synthesize.py (buildQKeras):
#    kernels and biases quantized_bits(4, 0) (ap_fixed<4,1>), inputs ap_fixed<16,6>, ReLU to ap_ufixed<6,0>,
#    accumulators (assumed) ap_fixed<16,6>, Latency, reuse 1, io_parallel, Vivado backend, xczu9eg-ffvb1156-2-e, 5 ns;
#    its Vivado HLS 2020.1 csynth and Vivado 2020.1 post-synthesis reports are committed beside the script.
#    The trained weights (4bitMLPmodel.h5) are not: drawn as for 1. The sigmoid (a 1-BRAM table, 2 cycles) is
#    not modelled, so only the two dense layers' figures and the first layer's instance are compared; both
#    reports give 0 DSPs, as does the model (every 4-bit weight has at most 2 signed digits).
_DND = "dnd_hls4ml QKeras MLP 98->20 relu->1 (4-bit weights, ap_fixed<16,6> in/acc, Latency, RF1, xczu9eg-2, 5 ns)"
_DND_CSYNTH = "thaarres/dnd_hls4ml myproject_csynth.rpt (Vivado HLS 2020.1 csynth)"
_DND_VSYNTH = "thaarres/dnd_hls4ml vivado_synth.rpt (Vivado 2020.1 post-synthesis)"
_DND_FC1 = (
    "thaarres/dnd_hls4ml myproject_csynth.rpt, instance grp_dense_latency_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_fu_77 "
    "(fc1, Vivado HLS 2020.1 csynth)"
)
_DND_FIGURES = (
    Published(_DND, _DND_VSYNTH, "luts", 31277),
    Published(_DND, _DND_VSYNTH, "ffs", 4555),
    Published(_DND, _DND_CSYNTH, "luts", 59561),
    Published(_DND, _DND_CSYNTH, "ffs", 4561),
    Published(_DND, _DND_FC1, "luts", 58323),
    Published(_DND, _DND_FC1, "ffs", 2815),
    Published(_DND, _DND_FC1, "latency_cycles", 1),
)
PUBLISHED: tuple[Published, ...] = (*_TEST_REPORT_FIGURES, *_DND_FIGURES)


def glorot_on_grid(
    rng: np.random.Generator, n_in: int, n_out: int, fractional: int, integer: int
) -> np.ndarray:
    """Keras' default kernel initialiser, rounded onto an ``ap_fixed`` grid (saturated to its range)."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    w = rng.uniform(-limit, limit, (n_in, n_out))
    lsb = 2.0**-fractional
    return np.clip(np.round(w / lsb) * lsb, -(2.0 ** (integer - 1)), 2.0 ** (integer - 1) - lsb)


def estimate_test_report(seed: int) -> dict[str, float]:
    w = glorot_on_grid(np.random.default_rng(seed), 16, 5, fractional=10, integer=6)
    c = dense_cost(
        w,
        10,
        input_width=16,
        accumulator_width=16,
        result_width=16,
        clock_period_ns=5.0,
        bias=False,
        relu=True,
        fabric=fabric_for_part("xc7z020clg400-1"),
    )  # fmt: skip  (Keras' bias starts at zero: folded away)
    cycles = float(c.latency_cycles + INPUT_REGISTER_CYCLES)
    whole = {"luts": c.luts, "ffs": c.ffs, "dsps": float(c.dsps), "latency_cycles": cycles}
    # the dense layer alone: without the ReLU's LUTs (one per result bit); the model has no cycle of its own
    # for the ReLU, so the layer's latency is the whole one
    dense = {**whole, "luts": c.luts - 5 * 16}
    return {**whole, **{f"{INSTANCE} {k}": v for k, v in dense.items()}}


def estimate_dnd_mlp(seed: int) -> dict[str, float]:
    """Network 2: both dense layers (the sigmoid is not modelled); the instance is fc1 alone, without the
    top-level input register (io_parallel: the inputs are registered outside the layer's instance)."""
    rng = np.random.default_rng(seed)
    w1 = glorot_on_grid(rng, 98, 20, fractional=3, integer=1)
    w2 = glorot_on_grid(rng, 20, 1, fractional=3, integer=1)
    fabric = fabric_for_part("xczu9eg-2")
    fc1 = dense_cost(w1, 3, input_width=16, accumulator_width=16, result_width=6, clock_period_ns=5.0,
                     bias=True, relu=True, fabric=fabric)  # fmt: skip
    out = dense_cost(w2, 3, input_width=6, accumulator_width=16, result_width=16, clock_period_ns=5.0,
                     bias=True, fabric=fabric)  # fmt: skip
    return {
        "luts": fc1.luts + out.luts, "ffs": fc1.ffs + out.ffs, "dsps": float(fc1.dsps + out.dsps),
        f"{INSTANCE} luts": fc1.luts - 20 * 6, f"{INSTANCE} ffs": fc1.ffs,
        f"{INSTANCE} latency_cycles": float(fc1.latency_cycles),
    }  # fmt: skip


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
    estimators = {_TEST_REPORT: estimate_test_report, _DND: estimate_dnd_mlp}
    runs = {network: [f(seed) for seed in range(draws)] for network, f in estimators.items()}
    rows = []
    for p in PUBLISHED:
        key = f"{INSTANCE} {p.metric}" if INSTANCE in p.source else p.metric
        values = np.array([r[key] for r in runs[p.network]])
        mean = float(values.mean())
        notes = (
            f"estimate: {LATENCY_SOURCE}; mean of {draws} seeded Glorot-uniform weight draws "
            f"(std {values.std():.3g}, min {values.min():g}, max {values.max():g}); published weights not saved"
        )
        rows.append(
            CalibrationRow(p.network, p.source, p.metric, p.value, mean, mean / p.value, notes)
        )
    return rows


def ratio_ranges(rows: list[CalibrationRow] | None = None) -> dict[str, dict[str, float]]:
    """Measured estimate / published of the hls4ml Latency model, per metric: ``min``, ``max`` over every
    published figure of the calibration set (csynth and post-synthesis, all networks; ``*_dense_instance``:
    a dense layer's instance alone) and the number of ``figures``."""
    rows = calibration_rows() if rows is None else rows
    ratios: dict[str, list[float]] = {}
    for r in rows:
        ratios.setdefault(
            f"{r.metric}_dense_instance" if INSTANCE in r.source else r.metric, []
        ).append(r.ratio)
    return {
        k: {"min": round(min(v), 3), "max": round(max(v), 3), "figures": len(v)}
        for k, v in ratios.items()
    }


_FLOPOCO = (
    "FloPoCo src/Targets/VirtexUltrascalePlus.hpp (xcvu3p-2, constants from Vivado timing reports; "
    "mirrored at github.com/kammoh/flopoco)"
)
_PER_LEVEL = "UltraScale+ -2 per-level delay"
# (construct, published figure in ns as FloPoCo's formula gives it from its constants, our function)
DELAY_CHECKS: tuple[tuple[str, float, str], ...] = (
    # logicDelay(6) = lut6Delay_ + typicalLocalRoutingDelay_ = 0.148 + 0.180
    ("LUT6 level + local route (logicDelay(6))", 0.328, "lut"),
    # adderDelay(w) + routing = lut2 0.050 + lut->carry 0.011 + init 0.115 + final 0.116
    #   + (clbs - 1) * inter-CLB 0.026 + max(clbs - 2, 0) * carry8 0.015 + route 0.180
    ("8-bit adder + local route (adderDelay(8))", 0.472, "adder8"),
    ("16-bit adder + local route (adderDelay(16))", 0.498, "adder16"),
    ("32-bit adder + local route (adderDelay(32))", 0.580, "adder32"),
)


def delay_check_rows() -> list[CalibrationRow]:
    """The delay model's figure for each construct of :data:`DELAY_CHECKS`, over FloPoCo's."""
    ours = {
        "lut": delay_model.lut_delay_ns(),
        "adder8": delay_model.adder_delay_ns(8),
        "adder16": delay_model.adder_delay_ns(16),
        "adder32": delay_model.adder_delay_ns(32),
    }
    notes = (
        f"estimate: firmware.delay_model ({delay_model.DEFAULT_FABRIC.name}); a check that the model "
        "carries the cited per-level delays, not a measured error on an implemented design"
    )
    return [
        CalibrationRow(
            f"{_PER_LEVEL}: {name}",
            _FLOPOCO,
            "latency_ns",
            value,
            ours[key],
            ours[key] / value,
            notes,
        )
        for name, value, key in DELAY_CHECKS
    ]


def delay_model_error(rows: list[CalibrationRow] | None = None) -> str:
    """The delay model's stated error, for its column in the cost table."""
    rows = delay_check_rows() if rows is None else rows
    ratios = [r.ratio for r in rows]
    return (
        f"per-level delays x{min(ratios):.3f}-{max(ratios):.3f} of the cited figures on {len(rows)} "
        "checks; error on an implemented design not measured (0 published designs rebuilt)"
    )


def estimate_error(rows: list[CalibrationRow] | None = None) -> dict[str, object]:
    """The calibration of each estimate, for summary.json: the hls4ml Latency model's :func:`ratio_ranges`
    (and the networks they come from); da4ml and the delay model are not calibrated."""
    rows = calibration_rows() if rows is None else rows
    latency_model: dict[str, object] = dict(ratio_ranges(rows))
    latency_model["calibration_set"] = sorted({r.network for r in rows})
    checks = delay_check_rows()
    ratios = [r.ratio for r in checks]
    return {
        "hls4ml_latency_model": latency_model,
        "da4ml": "not calibrated: no published distributed-arithmetic design could be rebuilt exactly",
        "delay_model": {
            "latency_ns": {
                "designs": 0,
                "per_level_checks": len(checks),
                "per_level_ratio": {"min": round(min(ratios), 3), "max": round(max(ratios), 3)},
                "statement": delay_model_error(checks),
            },
            "delays": delay_model.DEFAULT_FABRIC.source,
        },
    }
