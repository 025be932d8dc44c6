"""Delay model, hls4ml Latency counting model and the calibration table."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from firmware.calibration import (
    DELAY_CHECKS,
    PUBLISHED,
    calibration_rows,
    delay_check_rows,
    estimate_error,
)
from firmware.delay_model import (
    adder_delay_ns,
    fabric_for_part,
    path_delay,
    qint_width,
    stage_delays,
)
from firmware.latency_project import csd_digits, dense_cost

CSV = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "firmware_calibration.csv"


def _min_signed_powers(limit: int) -> dict[int, int]:
    """Oracle: fewest signed powers of two summing to each n < limit (breadth-first over sums)."""
    powers = [1 << k for k in range(limit.bit_length() + 1)]
    best = {0: 0}
    frontier = [0]
    for depth in range(1, 8):
        nxt = []
        for v in frontier:
            for p in powers:
                for s in (v + p, v - p):
                    if abs(s) < 4 * limit and s not in best:
                        best[s] = depth
                        nxt.append(s)
        frontier = nxt
    return best


def test_csd_digits_are_the_fewest_signed_powers_of_two():
    oracle = _min_signed_powers(600)
    for n in range(-511, 512):
        assert csd_digits(n) == oracle[n], n


def test_dense_count_of_a_hand_built_layer():
    # weights on the 2**-3 grid: column 0 = [0, 1/2 (power of two), 3/8 (2 CSD digits: 4-1), 7/8 (2: 8-1)],
    # column 1 = [5/8 (2: 4+1), 11/8 (3: 8+4-1), 13/8 (3: 16-4+1)... ]
    w = np.array([[0, 5 / 8], [1 / 2, 11 / 8], [3 / 8, 13 / 8], [7 / 8, 0]])
    c = dense_cost(
        w, 3, input_width=8, accumulator_width=12, result_width=8, clock_period_ns=5.0, relu=True
    )
    assert c.products == 6  # two zeros folded away
    assert c.dsps == 2  # 11 = 8+4-1 and 13 = 16-4+1 (3 digits)
    assert c.lut_products == 4
    # LUT adders of the 2-digit products (3, 7, 5): input width + the mantissa's bits
    lut_product_luts = (8 + 2) + (8 + 3) + (8 + 3)
    tree_luts = (3 - 1) * 12 + (3 - 1) * 12
    assert c.adders == 3 + 2 + 2
    assert c.luts == lut_product_luts + tree_luts + 2 * 8


# FloPoCo's VirtexUltrascalePlus.hpp constants (ns), written out here as the source gives them
_LUT2, _LUT_TO_CARRY, _INIT, _FINAL, _INTER_CLB, _CARRY8, _ROUTE = (
    0.050, 0.011, 0.115, 0.116, 0.026, 0.015, 0.180,
)  # fmt: skip


def _flopoco_adder(width: int) -> float:
    """FloPoCo's ``VirtexUltrascalePlus::adderDelay(width)`` plus its local routing delay."""
    clbs = (width - 1) // 8 + 1
    vertical = (clbs - 1) * _INTER_CLB if clbs > 1 else 0.0
    chain = (clbs - 2) * _CARRY8 if clbs > 2 else 0.0
    return vertical + chain + (_FINAL + _INIT + _LUT2 + _LUT_TO_CARRY) + _ROUTE


def test_adder_delay_is_flopocos_ultrascale_plus_formula():
    for width in (1, 4, 8, 9, 16, 17, 23, 24, 25, 32, 64):
        assert adder_delay_ns(width) == pytest.approx(_flopoco_adder(width)), width
    assert adder_delay_ns(8) == pytest.approx(0.472)  # one CARRY8
    assert adder_delay_ns(17) > adder_delay_ns(16) == adder_delay_ns(9)


def test_qint_width_matches_the_fixed_point_type():
    from da4ml.trace import FixedVariableArrayInput

    for k, i, f in [(1, 5, 10), (0, 8, 0), (1, 0, 4)]:
        v = FixedVariableArrayInput((1,)).quantize(k, i, f, "WRAP", "TRN")._vars[0]
        assert qint_width(v.qint) == k + i + f


def test_path_delay_of_a_hand_built_chain_reproduces_the_cited_adder_delays():
    from da4ml.trace import FixedVariableArrayInput, comb_trace, to_pipeline

    inp = FixedVariableArrayInput((4,))
    x = inp.quantize(1, 7, 0, "WRAP", "TRN")
    chain = x[0:1] + x[1:2]
    chain = chain + x[2:3]
    chain = chain + x[3:4]
    comb = comb_trace(inp, chain)
    # three dependent adders of 9, 10 and 10 bits (8-bit operands growing by one bit each): two
    # CARRY8 each, by hand 0.050 + 0.011 + 0.115 + 0.116 + 0.026 + route 0.180 = 0.498 ns apiece
    got = path_delay(comb, 100.0)
    assert got.critical_ns == pytest.approx(3 * 0.498)
    assert got.stages == 1
    # a 0.95 ns clock leaves 0.95 - 0.150 (clock to Q) = 0.80 ns: one adder per cycle
    assert path_delay(comb, 0.95).stages == 3
    # da4ml's own pipeline at one level per stage: each stage is one adder
    stages = stage_delays(to_pipeline(comb, 1, verbose=False))
    assert sum(stages) == pytest.approx(3 * 0.498) and max(stages) == pytest.approx(0.498)


def test_delay_checks_are_the_cited_figures():
    rows = delay_check_rows()
    assert len(rows) == len(DELAY_CHECKS) >= 4
    by_name = {name: value for name, value, _ in DELAY_CHECKS}
    assert by_name["LUT6 level + local route (logicDelay(6))"] == pytest.approx(0.148 + _ROUTE)
    for width in (8, 16, 32):
        assert by_name[f"{width}-bit adder + local route (adderDelay({width}))"] == pytest.approx(
            _flopoco_adder(width), abs=5e-4
        )
    for r in rows:
        assert r.ratio == pytest.approx(r.estimate / r.published) == pytest.approx(1.0, abs=2e-3)


def test_calibration_ratios_and_committed_table_agree():
    rows = calibration_rows(draws=5)
    assert {(r.source, r.metric) for r in rows} == {(p.source, p.metric) for p in PUBLISHED}
    for r in rows:
        assert r.ratio == pytest.approx(r.estimate / r.published)
    err = estimate_error(rows)
    assert set(err["hls4ml_latency_model"]) >= {"luts", "ffs", "dsps", "latency_cycles"}
    assert "not calibrated" in err["da4ml"]
    assert err["delay_model"]["latency_ns"]["designs"] == 0
    assert err["delay_model"]["latency_ns"]["per_level_checks"] == len(DELAY_CHECKS)
    with open(CSV) as fh:
        table = list(csv.DictReader(fh))
    assert set(table[0]) == {
        "network",
        "source",
        "metric",
        "published",
        "estimate",
        "ratio",
        "notes",
    }
    for row in table:
        assert math.isclose(
            float(row["ratio"]),
            float(row["estimate"]) / float(row["published"]),
            rel_tol=2e-3,
            abs_tol=1e-3,
        )
        assert row["notes"].startswith("estimate: ")
        assert row["source"].strip() and row["network"].strip()  # every row names its source
    published = {(p.network, p.source, p.metric): p.value for p in PUBLISHED}
    published |= {(r.network, r.source, r.metric): r.published for r in delay_check_rows()}
    assert any(row["network"].startswith("UltraScale+ -2 per-level") for row in table)
    for row in table:
        assert published[(row["network"], row["source"], row["metric"])] == float(row["published"])


def test_cost_table_has_each_implementation_with_its_assumption(tmp_path):
    from firmware.cost import estimate
    from firmware.example import default_model
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig
    from quantize.spec import weight_key

    spec, weights = default_model(
        seed=3,
        n_fit=500,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(8),
        score_outputs=(0, 1, 3, 27),
    )
    table = estimate(spec, weights, 5.0, tmp_path, use_verilator=False, use_yosys=False).table()
    [da4ml] = [
        c
        for c in table.columns
        if c.startswith("da4ml (estimate of its distributed-arithmetic RTL")
    ]
    [delay] = [
        c for c in table.columns if c.startswith("delay model (da4ml logic; Virtex UltraScale+ -2")
    ]
    [hls] = [c for c in table.columns if c.startswith("hls4ml Latency model")]
    assert "convention" in da4ml and "uncalibrated" in da4ml
    assert "FloPoCo" in delay and "not measured" in delay
    assert "estimate/published on the calibration set: luts x" in hls
    # DSPs of the Latency project: products whose weight needs 3+ signed digits (oracle: fewest signed powers of 2)
    oracle = _min_signed_powers(1 << 10)
    dsps = 0
    for a, ae in enumerate(spec.autoencoders):
        for k, d in enumerate(ae.layers):
            mant = np.rint(
                np.ldexp(weights[weight_key(a, k, "weight")], d.weight.fractional)
            ).astype(int)
            dsps += sum(oracle[int(m)] > 2 for m in mant.ravel() if m != 0)
        dsps += len(ae.score.outputs)  # one DSP per square
    assert (
        table.loc["dsps", hls] == dsps > 2 * len(spec.autoencoders[0].score.outputs)
    )  # some weights need DSPs
    assert table.loc["latency_ns", delay] == 5.0 * table.loc["latency_cycles", delay]
    assert table.loc["critical_path_ns", delay] > 0
    assert table.loc["rtl_slowest_stage_ns", delay] > 0


@pytest.mark.parametrize(
    ("part", "adder_16_bit_ns", "clock_to_q_ns"),
    [
        # FloPoCo VirtexUltrascalePlus: LUT2 0.050 + 0.011 + CARRY8 0.115 + one further 8 bits 0.026
        # + sum out 0.116 + local route 0.180
        ("xczu9eg-2", 0.050 + 0.011 + 0.115 + 0.026 + 0.116 + 0.180, 0.150),
        # prjxray Artix-7 -1: LUT 0.642 + CARRY4 0.508 + 3 more CARRY4 0.114 + sum out 0.313 + 0.4 net
        ("xc7z020clg400-1", 0.642 + 0.508 + 3 * 0.114 + 0.313 + 0.4, 0.303),
    ],
)
def test_the_latency_model_times_an_adder_tree_with_the_parts_own_family_delays(
    part, adder_16_bit_ns, clock_to_q_ns
):
    # 98 inputs and a bias: a 7-level tree of 16-bit adders (the dnd_hls4ml first layer)
    weights = np.full((98, 1), 0.375)
    cost = dense_cost(weights, 3, input_width=16, accumulator_width=16, result_width=6,
                      clock_period_ns=5.0, bias=True, fabric=fabric_for_part(part))  # fmt: skip
    per_cycle = math.floor((5.0 - clock_to_q_ns) / adder_16_bit_ns)
    assert (
        cost.latency_cycles == 1 + math.ceil(7 / per_cycle) + 1
    )  # products, tree, output register


def test_a_part_of_an_unknown_family_is_named():
    with pytest.raises(ValueError, match=r"part 'ep4sgx230': no cited delays for its family"):
        fabric_for_part("ep4sgx230")
