"""Hardware cost without vendor tools (da4ml, Verilator, Yosys) and the budget check."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from emulation import emulate_trigger
from emulation.events import edge_words
from firmware.budget import BudgetError, check_budget, part_capacity
from firmware.cost import METRICS, CostReport, adders_per_cycle, estimate, parse_yosys_stat
from firmware.example import default_model, toy_words
from firmware.trace import breakdown, trace_trigger


@pytest.fixture(scope="module")
def small():
    """A small trigger (57-2-57, 4-bit weights, score over 4 features) that synthesises in seconds."""
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    return default_model(
        seed=1,
        n_fit=2000,
        quantile=0.9,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 1, 3, 27),
    )


def _words(spec, n):
    return np.concatenate([toy_words(n, 11), edge_words(spec, np.random.default_rng(12), n // 4)])


def _expected(spec, weights, words):
    ref = emulate_trigger(spec, weights, words)
    f1 = spec.autoencoders[0].score.score.fractional
    f2 = spec.autoencoders[1].score.score.fractional
    return np.column_stack(
        [
            np.ldexp(ref.r1.astype(float), -f1),
            np.ldexp(ref.r2.astype(float), -f2),
            ref.regions,
            ref.trigger,
        ]
    )


def test_da4ml_trace_of_whole_trigger_is_bit_exact(small):
    spec, weights = small
    words = _words(spec, 4000)
    comb = trace_trigger(spec, weights)
    got = comb.predict(words.astype(np.float64))
    expected = _expected(spec, weights, words)
    assert np.array_equal(got, expected)
    assert len(np.unique(expected[:, 0])) > 20 and 0 < expected[:, -1].mean() < 1
    assert comb.cost > 0 and comb.latency[1] > 0


def test_da4ml_trace_of_a_latent_norm_trigger_is_bit_exact():
    """R2 = sum of mu**2 of an encoder (rounded, saturating mu; a score that rounds its additions)."""
    from firmware.example import latent_norm_model
    from offline.ad.model import AEConfig

    spec, weights = latent_norm_model(
        seed=3, n_fit=1000, ae_config=AEConfig(hidden=(), latent=2), encoder_widths=(57, 3)
    )
    words = _words(spec, 2000)
    got = trace_trigger(spec, weights).predict(words.astype(np.float64))
    expected = _expected(spec, weights, words)
    assert np.array_equal(got, expected)
    assert len(np.unique(expected[:, 1])) > 20 and expected[:, 2:6].any(axis=0).all()
    assert [row[0] for row in breakdown(spec, weights)][-1] == "enc2 score (3 squares)"


def test_estimate_labels_every_figure_with_its_source(small, tmp_path):
    spec, weights = small
    report = estimate(spec, weights, 4.0, tmp_path, use_verilator=False, use_yosys=False)
    table = report.table()
    source = [c for c in table.columns if c.startswith("da4ml (estimate")]
    assert len(source) == 1
    assert set(METRICS) <= set(table.index)
    est = table[source[0]]
    # The pipeline cuts the adder tree into stages of adders_per_cycle levels each.
    assert est["adder_depth"] > 1 and est["luts"] > 0
    assert est["latency_cycles"] == math.ceil(est["adder_depth"] / adders_per_cycle(4.0))
    assert est["latency_ns"] == 4.0 * est["latency_cycles"]
    assert (tmp_path / "rtl" / "src" / "trigger_rtl.v").is_file()
    # Twice the clock period: twice the adder levels per stage, so fewer stages and pipeline
    # registers, and the same logic.
    slow = estimate(
        spec, weights, 8.0, tmp_path / "slow", use_verilator=False, use_yosys=False
    ).table()
    slow = slow[next(c for c in slow.columns if c.startswith("da4ml (estimate"))]
    assert (
        slow["latency_cycles"]
        == math.ceil(est["adder_depth"] / adders_per_cycle(8.0))
        < est["latency_cycles"]
    )
    assert slow["ffs"] < est["ffs"] and slow["luts"] == est["luts"]


def test_every_estimate_names_its_implementation_and_the_projects_is_the_headline(small, tmp_path):
    from firmware.cost import CostReport
    from firmware.latency_project import SOURCE

    spec, weights = small
    da = estimate(spec, weights, 4.0, tmp_path, use_verilator=False, use_yosys=False)
    sources = {f.source for f in da.figures}
    assert all(s.endswith(("[describes a distributed_arithmetic project]", "[describes a latency project]"))
               for s in sources), sources  # fmt: skip
    [latency_model] = [s for s in sources if s.startswith(SOURCE)]
    assert latency_model.endswith("[describes a latency project]")
    assert all(s.endswith("distributed_arithmetic project]") for s in sources - {latency_model})
    # the default project is distributed arithmetic: da4ml's figures are the headline, first column
    assert da.strategy == "distributed_arithmetic"
    assert da.best("luts")[1].startswith("da4ml") and da.best("dsps") == (0.0, da.best("luts")[1])
    # the delay model (the headline latency) and da4ml describe the same DA logic: first columns
    assert da.table().columns[0].startswith("delay model")
    assert da.best("latency_ns")[1].startswith("delay model")
    assert da.beside("luts")[1] == latency_model and any("headline" in n for n in da.notes)
    # a Latency project: the Latency model is the headline, da4ml's figures stand beside it
    lat = CostReport(4.0, da.figures, strategy="latency")
    assert lat.best("luts") == (da.get("luts", latency_model), latency_model)
    assert lat.best("latency_ns")[1] == latency_model and lat.table().columns[0] == latency_model
    assert lat.beside("luts") == da.best("luts")
    with pytest.raises(ValueError, match="strategy 'resource' is not one of"):
        estimate(spec, weights, 4.0, tmp_path, strategy="resource")


@pytest.mark.skipif(
    shutil.which("verilator") is None, reason="verilator not installed (apt-get install verilator)"
)
@pytest.mark.skipif(
    shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)"
)
def test_rtl_is_bit_exact_in_verilator_and_yosys_maps_it(small, tmp_path):
    spec, weights = small
    words = _words(spec, 2000)
    report = estimate(spec, weights, 4.0, tmp_path, check_words=words)
    assert report.rtl_events == len(words)
    assert report.rtl_mismatches == 0
    luts, source = report.best("luts")
    assert source.startswith("yosys synth_xilinx xcup") and luts is not None and luts > 0
    assert "0 mismatching events" in report.notes[0]


def test_parse_yosys_stat_counts_cells():
    text = """
   Number of cells:                 12
     CARRY4                          2
     DSP48E2                         1
     FDRE                            3
     LUT2                            4
     LUT6                            1
     RAMB18E2                        1
"""
    assert parse_yosys_stat(text) == {
        "luts": 5.0,
        "ffs": 3.0,
        "carry": 2.0,
        "dsps": 1.0,
        "brams": 1.0,
    }


def test_unmeetable_budget_fails_with_what_exceeds_what_and_contributors(small):
    spec, weights = small
    report = CostReport(5.0)
    report.add("latency_cycles", 20.0, "da4ml (estimate)")
    report.add("latency_ns", 100.0, "da4ml (estimate)")
    report.add("ii_cycles", 1.0, "da4ml (estimate)")
    report.add("luts", 500_000.0, "da4ml (estimate)")
    report.add("ffs", 1000.0, "da4ml (estimate)")
    ok = check_budget(report, latency_budget_ns=200.0, part="xcvu13p-flga2577-2-e")
    assert ok.within_budget
    ok.raise_if_over()
    verdict = check_budget(
        report, 50.0, "xc7vx690t-ffg1927-2", contributors=breakdown(spec, weights)
    )
    assert not verdict.within_budget
    with pytest.raises(BudgetError) as err:
        verdict.raise_if_over()
    msg = str(err.value)
    assert "latency (ns) 100 exceeds 50" in msg
    assert "LUTs 500000 exceeds 433200" in msg
    assert "FFs" not in msg.split("largest contributors")[0]  # FFs fit: not listed as an excess
    assert "largest contributors" in msg and "ae1_dense0" in msg


def test_budget_rejects_unknown_parts_and_counts_ii_per_bunch_crossing():
    with pytest.raises(ValueError, match="not in the capacity table"):
        part_capacity("xc9zz999")
    report = CostReport(4.0)
    report.add("latency_ns", 20.0, "da4ml")
    report.add("ii_cycles", 7.0, "da4ml")
    verdict = check_budget(report, 50.0, "xcvu9p")
    assert not verdict.within_budget  # 25 ns / 4 ns = 6 cycles per bunch crossing
    assert "II (cycles) 7 exceeds 6" in verdict.error_message()


def test_vendor_reports_are_shown_beside_estimates(tmp_path):
    from firmware.cost import add_vendor_report

    (tmp_path / "project.tcl").write_text('set project_name "trigger_top"\nset backend "vitis"\n')
    prj = tmp_path / "trigger_top_prj"
    (prj / "solution1" / "syn" / "report").mkdir(parents=True)
    (prj / "hls.app").write_text(
        '<project><solutions><solution name="solution1"/></solutions></project>'
    )
    (prj / "solution1" / "syn" / "report" / "trigger_top_csynth.xml").write_text(
        "<profile><UserAssignments><TargetClockPeriod>4.0</TargetClockPeriod></UserAssignments>"
        "<PerformanceEstimates><SummaryOfTimingAnalysis><EstimatedClockPeriod>3.5</EstimatedClockPeriod>"
        "</SummaryOfTimingAnalysis><SummaryOfOverallLatency><Best-caseLatency>9</Best-caseLatency>"
        "<Worst-caseLatency>9</Worst-caseLatency><Interval-min>1</Interval-min><Interval-max>1</Interval-max>"
        "</SummaryOfOverallLatency></PerformanceEstimates><AreaEstimates><Resources><BRAM_18K>0</BRAM_18K>"
        "<DSP>120</DSP><FF>15000</FF><LUT>40000</LUT><URAM>0</URAM></Resources><AvailableResources>"
        "<BRAM_18K>5376</BRAM_18K><DSP>12288</DSP><FF>3456000</FF><LUT>1728000</LUT><URAM>1280</URAM>"
        "</AvailableResources></AreaEstimates></profile>"
    )
    report = CostReport(4.0)
    report.add("luts", 30000.0, "da4ml (estimate)")
    assert add_vendor_report(report, tmp_path)
    table = report.table()
    assert table.loc["luts", "vivado/vitis HLS csynth (reported)"] == 40000
    assert table.loc["luts", "da4ml (estimate)"] == 30000
    assert table.loc["latency_ns", "vivado/vitis HLS csynth (reported)"] == 36.0
    assert report.best("dsps") == (120.0, "vivado/vitis HLS csynth (reported)")


def test_reuse_factor_must_keep_one_event_per_bunch_crossing():
    from firmware.convert import ConversionSettings

    settings = ConversionSettings(clock_period_ns=5.0, reuse_factor=5, strategy="latency")
    assert settings.max_reuse_factor == 5
    with pytest.raises(ValueError, match="must fit one bunch crossing"):
        ConversionSettings(clock_period_ns=5.0, reuse_factor=6, strategy="latency")
    with pytest.raises(ValueError, match="backend"):
        ConversionSettings(backend="Quartus")
    # distributed arithmetic builds every product in logic: no multiplier to share
    assert ConversionSettings().strategy == "distributed_arithmetic"
    with pytest.raises(ValueError, match="reuse factor 2: the distributed_arithmetic strategy"):
        ConversionSettings(reuse_factor=2)
    with pytest.raises(
        ValueError, match="strategy 'Latency' is not one of distributed_arithmetic, latency"
    ):
        ConversionSettings(strategy="Latency")
