"""The latency budget: over it, the blocks past it along each autoencoder's chain are named."""

from __future__ import annotations

import math

import pytest

from firmware.budget import BudgetError, check_budget
from firmware.cost import CostReport

SOURCE = "da4ml (estimate, 5 adder levels/cycle at 1 ns/adder)"


def _report(cycles: int) -> CostReport:
    report = CostReport(5.0, levels_per_cycle=5)
    for metric, value in (("latency_cycles", cycles), ("latency_ns", 5.0 * cycles), ("ii_cycles", 1), ("luts", 5e4),
                          ("ffs", 2e4), ("dsps", 0), ("brams", 0)):  # fmt: skip
        report.add(metric, float(value), SOURCE)
    return report


# (block, LUTs, adder levels) in chain order, as firmware.trace.breakdown gives them
BLOCKS = [
    ("preprocessing", 300.0, 2.0),
    ("ae1 ae1_dense0 (57x32)", 20000.0, 14.0),
    ("ae1 ae1_dense1 (32x57)", 15000.0, 12.0),
    ("ae1 score (57 squares)", 5000.0, 20.0),
    ("ae2 ae2_dense0 (57x4)", 3000.0, 9.0),
    ("ae2 ae2_dense1 (4x57)", 2500.0, 6.0),
    ("ae2 score (57 squares)", 5000.0, 20.0),
]


def test_one_bunch_crossing_budget_names_the_blocks_past_it():
    # 25 ns at 5 ns = 5 cycles of 5 levels = 25 levels. ae1: 2, 16, 28 (> 25 from dense1 on), 48;
    # ae2: 2, 11, 17, 37 (only the score ends past 25)
    verdict = check_budget(_report(10), 25.0, "xcvu13p", contributors=BLOCKS)
    assert not verdict.within_budget
    assert verdict.blocks_over_latency() == {
        "ae1": [("ae1 ae1_dense1 (32x57)", 17, 28), ("ae1 score (57 squares)", 29, 48)],
        "ae2": [("ae2 score (57 squares)", 18, 37)],
    }
    with pytest.raises(BudgetError) as err:
        verdict.raise_if_over()
    msg = str(err.value)
    assert "latency (ns) 50 exceeds 25" in msg
    assert "blocks past the latency budget (25 ns = 5 cycles of 5 ns = 25 adder levels)" in msg
    assert (
        "  - ae1: ae1 ae1_dense1 (32x57) (levels 17-28), ae1 score (57 squares) (levels 29-48)"
        in msg
    )
    assert "  - ae2: ae2 score (57 squares) (levels 18-37)" in msg


def test_a_budget_that_is_met_names_no_blocks():
    verdict = check_budget(_report(5), 25.0, "xcvu13p", contributors=BLOCKS[:3])
    assert verdict.within_budget and "blocks past" not in verdict.error_message()
    verdict.raise_if_over()


def test_resources_over_the_part_do_not_list_latency_blocks():
    report = _report(4)
    report.figures = [f for f in report.figures if f.metric != "luts"]
    report.add("luts", 2e6, SOURCE)  # more than an xcvu13p holds
    verdict = check_budget(report, 50.0, "xcvu13p", contributors=BLOCKS)
    assert not verdict.within_budget
    assert (
        "LUTs 2e+06 exceeds" in verdict.error_message()
        and "blocks past" not in verdict.error_message()
    )


def _traced(ae_hidden: tuple[int, ...], latent: int):
    from firmware.example import default_model
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    return default_model(seed=5, n_fit=500, ae_config=AEConfig(hidden=ae_hidden, latent=latent, bias=True),
                         quant_config=QuantConfig().uniform(4))  # fmt: skip


def test_one_bunch_crossing_on_traced_designs_meets_or_names_the_blocks_past_it(tmp_path):
    from firmware.cost import estimate
    from firmware.trace import breakdown

    # a 57-2-57 pair fits in 25 ns: within budget, nothing listed
    spec, weights = _traced((), 2)
    small = estimate(spec, weights, 5.0, tmp_path / "small", use_verilator=False, use_yosys=False)
    verdict = check_budget(small, 25.0, "xcvu13p")
    assert verdict.within_budget, verdict.summary()
    assert small.best("latency_ns")[0] <= 25.0

    # a 57-16-4-16-57 pair does not: the message lists, per chain, every block whose levels end past
    # 5 cycles x 5 levels = 25, as the cumulative sum of the blocks' own depths gives them
    spec, weights = _traced((16,), 4)
    big = estimate(spec, weights, 5.0, tmp_path / "big", use_verilator=False, use_yosys=False)
    blocks = breakdown(spec, weights)
    verdict = check_budget(big, 25.0, "xcvu13p", contributors=blocks)
    assert not verdict.within_budget
    message = verdict.error_message()
    pre = blocks[0][2]
    for chain in ("ae1", "ae2"):
        level, expected = pre, []
        for name, _, depth in [b for b in blocks if b[0].startswith(f"{chain} ")]:
            if level + depth > 25:
                expected.append(f"{name} (levels {level + 1:.0f}-{level + depth:.0f})")
            level += depth
        assert expected, "the deeper design must run past 25 levels"
        assert f"  - {chain}: {', '.join(expected)}" in message
    with pytest.raises(BudgetError, match=r"latency \(ns\) \d+ exceeds 25"):
        verdict.raise_if_over()


def test_default_trigger_is_estimated_within_the_40ns_margin(tmp_path):
    """The default architecture (``PRESETS["firmware"]`` at ``QuantConfig()``, on-grid weights) meets
    40 ns, 10 ns under the 50 ns global-trigger slot, by the delay model's headline (cited
    UltraScale+ -2 delays); the previous default (57-32-16-4) needs more cycles."""
    from firmware.cost import da4ml_latency, estimate
    from firmware.example import default_model
    from firmware.trace import trace_trigger
    from offline.ad.model import AEConfig

    spec, weights = default_model()
    report = estimate(spec, weights, 5.0, tmp_path, use_verilator=False, use_yosys=False)
    verdict = check_budget(report, 40.0, "xcvu13p")
    assert verdict.within_budget, verdict.summary()
    latency, source = report.best("latency_ns")
    assert source.startswith("delay model") and "FloPoCo" in source
    assert latency is not None and latency <= 40.0
    # the headline is da4ml's stages timed by the delay model: each fits the 4.85 ns a 5 ns
    # clock leaves after the cited 0.150 ns clock-to-Q, so it is one cycle per stage, and the
    # timing-driven registers (min_latency_ns) could do with fewer, never fewer than the critical
    # path needs
    cycles = report.get("latency_cycles", source)
    assert latency == 5.0 * cycles
    assert report.get("rtl_slowest_stage_ns", source) <= 4.85
    assert cycles == math.ceil(trace_trigger(spec, weights).latency[1] / 5)  # da4ml's stages
    assert report.get("min_latency_ns", source) <= latency
    assert report.get("min_latency_ns", source) >= 5.0 * math.ceil(
        report.get("critical_path_ns", source) / 4.85
    )
    wide = default_model(ae_config=AEConfig(hidden=(32, 16), latent=4, bias=True))
    assert da4ml_latency(*wide, 5.0).latency_ns > 40.0, "the test must tell the two apart"
