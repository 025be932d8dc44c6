"""Vivado/Vitis reports in the tools' own formats (tests/data/vendor_reports) parse into their figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from firmware.cost import RATIO_COLUMN, CostReport, add_vendor_report
from firmware.reports import (
    CSYNTH_SOURCE,
    find_vendor_reports,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_utilization_rpt,
)
from offline.artifacts import FileFormatError

DATA = Path(__file__).parent / "data" / "vendor_reports"
VIVADO = DATA / "vivado_hls_2020_xcvu13p"
VITIS = DATA / "vitis_hls_2023_xc7z020"
REPORTS = VIVADO / "trigger_top_prj" / "solution1" / "syn" / "report"


def test_vivado_hls_csynth_xml_figures():
    r = parse_csynth_xml(REPORTS / "trigger_top_csynth.xml")
    assert (r.tool, r.part, r.top, r.source) == (
        "HLS 2020.1",
        "xcvu13p-flga2577-2-e",
        "trigger_top",
        CSYNTH_SOURCE,
    )
    assert r.figures == {
        "target_clock_ns": 5.0, "estimated_clock_ns": 4.312, "latency_cycles": 9, "worst_latency_cycles": 9,
        "ii_cycles": 1, "latency_ns": 45.0, "brams": 0, "dsps": 1024, "ffs": 18213, "luts": 61877, "urams": 0,
    }  # fmt: skip


def test_vitis_hls_csynth_xml_names_its_dsp_column_dsp():
    r = parse_csynth_xml(
        VITIS / "trigger_top_prj" / "solution1" / "syn" / "report" / "trigger_top_csynth.xml"
    )
    assert (r.tool, r.part) == ("HLS 2023.2", "xc7z020-clg400-1")
    assert r.figures["dsps"] == 73 and r.figures["brams"] == 2 and r.figures["luts"] == 25320
    assert (
        r.figures["latency_cycles"] == 12
        and r.figures["latency_ns"] == 48.0
        and r.figures["ii_cycles"] == 1
    )


def test_csynth_text_report_gives_the_same_figures_as_the_xml():
    rpt = parse_csynth_rpt(REPORTS / "trigger_top_csynth.rpt")
    xml = parse_csynth_xml(REPORTS / "trigger_top_csynth.xml")
    assert (rpt.tool, rpt.part, rpt.top) == (
        "Vivado HLS 2020.1",
        "xcvu13p-flga2577-2-e",
        "trigger_top",
    )
    assert rpt.figures == xml.figures


def test_ultrascale_utilisation_counts_block_ram_tiles_as_two_18k_blocks():
    r = parse_utilization_rpt(VIVADO / "vivado_synth.rpt")
    assert (r.source, r.tool, r.part, r.top) == ("vivado synthesis (reported)", "Vivado v.2020.1", "xcvu13pflga2577-2",
                                                 "trigger_top")  # fmt: skip
    assert r.figures == {"luts": 52340, "ffs": 16922, "brams": 3, "urams": 0, "dsps": 1018}


def test_7series_utilisation_report():
    r = parse_utilization_rpt(VITIS / "vivado_synth.rpt")
    assert r.tool == "Vivado v.2023.2" and r.part == "7z020clg400-1"
    assert r.figures == {"luts": 21526, "ffs": 6428, "brams": 1, "dsps": 66}


def test_routed_utilisation_is_labelled_implementation(tmp_path):
    text = (
        (VIVADO / "vivado_synth.rpt")
        .read_text()
        .replace("Design State : Synthesized", "Design State : Routed")
    )
    (tmp_path / "util.rpt").write_text(text)
    assert parse_utilization_rpt(tmp_path / "util.rpt").source == "vivado implementation (reported)"


def test_project_reports_are_the_tops_not_a_submodules():
    found = find_vendor_reports(VIVADO)
    assert [r.path.name for r in found] == ["trigger_top_csynth.xml", "vivado_synth.rpt"]
    assert found[0].figures["luts"] == 61877  # trigger_nets_csynth.xml beside it says 55012


def test_text_report_is_read_when_there_is_no_xml(tmp_path):
    shutil.copytree(VIVADO, tmp_path / "prj")
    (
        tmp_path
        / "prj"
        / "trigger_top_prj"
        / "solution1"
        / "syn"
        / "report"
        / "trigger_top_csynth.xml"
    ).unlink()
    found = find_vendor_reports(tmp_path / "prj")
    assert found[0].path.name == "trigger_top_csynth.rpt" and found[0].figures["dsps"] == 1024
    assert find_vendor_reports(tmp_path) == []  # no project.tcl, no reports: nothing


def test_cost_table_shows_estimates_beside_reported_figures_with_their_ratio():
    report = CostReport(5.0)
    report.add("luts", 51090.0, "da4ml (estimate)")
    report.add("latency_ns", 50.0, "da4ml (estimate)")
    report.add("ffs", 17162.0, "da4ml (estimate)")
    assert add_vendor_report(report, VIVADO)
    table = report.table()
    assert table.loc["luts", "vivado synthesis (reported)"] == 52340
    assert table.loc["luts", CSYNTH_SOURCE] == 61877
    assert table.loc["luts", RATIO_COLUMN] == pytest.approx(
        51090 / 52340
    )  # Vivado synthesis wins over csynth
    assert table.loc["latency_ns", RATIO_COLUMN] == pytest.approx(50 / 45)
    assert table.loc["ffs", RATIO_COLUMN] == pytest.approx(17162 / 16922)
    assert report.best("luts") == (52340, "vivado synthesis (reported)")
    assert any(
        "vivado_synth.rpt (Vivado v.2020.1, part xcvu13pflga2577-2)" in n for n in report.notes
    )
    assert (
        RATIO_COLUMN not in CostReport(5.0, report.figures[:3]).table()
    )  # no report: no ratio column


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("x_csynth.xml", "<profile><AreaEstimates>", "not a csynth XML report"),
        ("x_csynth.xml", "<profile><UserAssignments/></profile>", "no PerformanceEstimates"),
        (
            "x_csynth.rpt",
            "== Vivado HLS Report for 'x'\n",
            "no 'Timing:' section in the csynth report",
        ),
        ("x_csynth.rpt", "some other text", "not a Vivado/Vitis HLS csynth report"),
        (
            "util.rpt",
            "| Command : report_utilization\n| DSPs | 3 |\n",
            "no Slice LUTs / CLB LUTs row",
        ),
        ("util.rpt", "hello", "not a Vivado utilization report"),
    ],
)
def test_malformed_reports_name_the_file_and_the_problem(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    parse = {"xml": parse_csynth_xml, "rpt": parse_csynth_rpt}[name.rsplit(".", 1)[1]]
    if name == "util.rpt":
        parse = parse_utilization_rpt
    with pytest.raises(FileFormatError) as err:
        parse(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_an_unreadable_report_becomes_a_note_not_a_figure(tmp_path):
    shutil.copytree(VIVADO, tmp_path / "prj")
    (tmp_path / "prj" / "vivado_synth.rpt").write_text(
        "Utilization Design Information\nnothing here\n"
    )
    report = CostReport(5.0)
    assert not add_vendor_report(report, tmp_path / "prj")
    assert report.figures == [] and "vendor report not read" in report.notes[0]


def _project_with_estimates(root: Path) -> Path:
    """A project as l1ad firmware leaves it (cost/cost.csv, cost/summary.json), then built by the vendor tools."""
    import json

    project = root / "prj"
    shutil.copytree(VIVADO, project)
    estimate = CostReport(5.0)
    for metric, value in (("latency_ns", 50.0), ("luts", 51090.0), ("ffs", 17162.0), ("dsps", 0.0)):
        estimate.add(metric, value, "da4ml (estimate, 5 adder levels/cycle at 1 ns/adder)")
    (project / "cost").mkdir()
    estimate.table().to_csv(project / "cost" / "cost.csv")
    (project / "cost" / "summary.json").write_text(
        json.dumps({"clock_period_ns": 5.0, "luts": 51090.0})
    )
    return project


def test_firmware_reports_command_puts_the_reports_beside_the_estimates(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from l1ad.cli import app

    project = _project_with_estimates(tmp_path)
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["firmware-reports", str(project)])
    assert result.exit_code == 0, result.output
    assert "estimate / reported" in result.output and "vivado synthesis (reported)" in result.output
    table = pd.read_csv(project / "cost" / "cost.csv", index_col=0)
    assert table.loc["luts", "vivado synthesis (reported)"] == 52340
    assert table.loc["luts", "da4ml (estimate, 5 adder levels/cycle at 1 ns/adder)"] == 51090
    assert table.loc["luts", RATIO_COLUMN] == pytest.approx(51090 / 52340)
    summary = json.loads((project / "cost" / "summary.json").read_text())
    assert summary["estimate_vs_reported"]["latency_ns"] == pytest.approx(50 / 45)
    assert summary["estimate_vs_reported"]["dsps"] == 0  # distributed arithmetic against 1018 DSPs
    assert len(summary["vendor_reports"]) == 2
    # run again: the table does not grow duplicate vendor columns
    again = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["firmware-reports", str(project)])
    assert again.exit_code == 0
    assert list(pd.read_csv(project / "cost" / "cost.csv", index_col=0).columns) == list(
        table.columns
    )


def test_firmware_reports_without_reports_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from l1ad.cli import app

    project = _project_with_estimates(tmp_path)
    shutil.rmtree(project / "trigger_top_prj")
    (project / "vivado_synth.rpt").unlink()
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["firmware-reports", str(project)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {project}: no readable Vivado/Vitis report (run vitis_hls -f build_prj.tcl there first)"
    ]
    missing = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["firmware-reports", str(tmp_path / "nothing")]
    )
    assert missing.exit_code == 1 and "no cost summary; run l1ad firmware" in missing.output
