"""Figures from the vendor tools' own reports, read the way ``hls4ml.report`` reads them.

After ``vitis_hls -f build_prj.tcl`` (``vivado_hls`` for Vivado) a project holds:

- ``<top>_prj/<solution>/syn/report/<top>_csynth.xml`` and ``<top>_csynth.rpt``: the HLS
  synthesis estimate (latency and interval in cycles, estimated clock, LUT/FF/DSP/BRAM/URAM).
  Vivado HLS calls the DSP column ``DSP48E``, Vitis HLS ``DSP``. The same directory holds one
  report per sub-module; only the top's is read.
- ``vivado_synth.rpt`` (``vsynth=1``): Vivado's ``report_utilization`` after ``synth_design``
  (7-series parts: "Slice LUTs", "Slice Registers"; UltraScale+: "CLB LUTs", "CLB
  Registers", a "Prohibited" column). "Block RAM Tile" counts 36 Kb tiles (a RAMB18 is half
  a tile); BRAMs are reported here in 18 Kb blocks, like the HLS report.

Each parser returns a :class:`VendorReport` (figures under ``firmware.cost``'s metric names)
and raises :class:`~offline.artifacts.FileFormatError` naming the file when it is not what
the tool writes.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from offline.artifacts import FileFormatError

__all__ = [
    "CSYNTH_SOURCE",
    "VendorReport",
    "find_vendor_reports",
    "parse_csynth_rpt",
    "parse_csynth_xml",
    "parse_utilization_rpt",
]

CSYNTH_SOURCE = "vivado/vitis HLS csynth (reported)"
SYNTH_SOURCE = "vivado synthesis (reported)"
IMPL_SOURCE = "vivado implementation (reported)"


@dataclass
class VendorReport:
    """One report: what wrote it, for which part, and its figures by metric name."""

    path: Path
    source: str
    tool: str | None = None
    part: str | None = None
    top: str | None = None
    figures: dict[str, float] = field(default_factory=dict)


def _number(text: str | None) -> float | None:
    """A reported count or time (``"7969"``, ``"1.5"``, ``"50.000 ns"``); None for ``-``, ``undef``, ``N/A``."""
    if text is None:
        return None
    m = re.fullmatch(
        r"\s*<?\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(ns|us)?\s*", text.replace(",", "")
    )
    if m is None:
        return None
    value = float(m.group(1))
    return value * 1000.0 if m.group(2) == "us" else value


def _text(root: ET.Element, path: str) -> str | None:
    node = root.find(path)
    return None if node is None or node.text is None else node.text.strip()


# csynth resource names -> metric
_RESOURCES = {"LUT": "luts", "FF": "ffs", "DSP48E": "dsps", "DSP": "dsps", "DSP58E": "dsps", "BRAM_18K": "brams",
              "URAM": "urams"}  # fmt: skip


def parse_csynth_xml(path: str | os.PathLike[str]) -> VendorReport:
    """``<top>_csynth.xml`` of Vivado HLS or Vitis HLS."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise FileFormatError(path, f"not a csynth XML report ({err})") from None
    except OSError as err:
        raise FileFormatError(path, f"cannot read the report ({err.strerror})") from None
    latency = root.find("./PerformanceEstimates/SummaryOfOverallLatency")
    resources = root.find("./AreaEstimates/Resources")
    if root.tag != "profile" or latency is None or resources is None:
        raise FileFormatError(path, "not a csynth XML report (no PerformanceEstimates/SummaryOfOverallLatency "
                                    "or AreaEstimates/Resources)")  # fmt: skip
    version = _text(root, "./ReportVersion/Version")
    report = VendorReport(path, CSYNTH_SOURCE, f"HLS {version}" if version else None,
                          _text(root, "./UserAssignments/Part"), _text(root, "./UserAssignments/TopModelName"))  # fmt: skip
    fig = report.figures
    target = _number(_text(root, "./UserAssignments/TargetClockPeriod"))
    for metric, value in (
        ("target_clock_ns", target),
        (
            "estimated_clock_ns",
            _number(
                _text(root, "./PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")
            ),
        ),
        ("latency_cycles", _number(_text(latency, "./Best-caseLatency"))),
        ("worst_latency_cycles", _number(_text(latency, "./Worst-caseLatency"))),
        ("ii_cycles", _number(_text(latency, "./Interval-min"))),
    ):
        if value is not None:
            fig[metric] = value
    real = _number(_text(latency, "./Best-caseRealTimeLatency"))
    if real is not None:
        fig["latency_ns"] = real
    elif "latency_cycles" in fig and target is not None:
        fig["latency_ns"] = fig["latency_cycles"] * target
    for node in resources:
        if node.tag in _RESOURCES and (value := _number(node.text)) is not None:
            fig[_RESOURCES[node.tag]] = value
    return report


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_rows(lines: list[str], start: int) -> tuple[list[str], list[list[str]]]:
    """The column names and data rows of the first ``+---+`` framed table at or after line ``start``."""
    i = start
    while i < len(lines) and not lines[i].strip().startswith("+-"):
        i += 1
    header: list[str] = []
    rows: list[list[str]] = []
    borders = 0
    for line in lines[i:]:
        s = line.strip()
        if s.startswith("+-"):
            borders += 1
            continue
        if not s.startswith("|"):
            break
        if borders == 1:
            header = _cells(s)  # of a two-line header, the second (the columns) wins
        else:
            rows.append(_cells(s))
    return header, rows


def parse_csynth_rpt(path: str | os.PathLike[str]) -> VendorReport:
    """``<top>_csynth.rpt``, the text form of the same report (read when no XML is there)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise FileFormatError(path, f"cannot read the report ({err.strerror})") from None
    head = re.search(r"== (Vivado|Vitis) HLS Report for '(\w+)'", text)
    if head is None:
        raise FileFormatError(
            path, 'not a Vivado/Vitis HLS csynth report (no "== ... HLS Report for" header)'
        )
    lines = text.splitlines()
    version = re.search(r"^\* Version:\s*(\S+)", text, re.MULTILINE)
    device = re.search(r"^\* Target device:\s*(\S+)", text, re.MULTILINE)
    report = VendorReport(path, CSYNTH_SOURCE, f"{head.group(1)} HLS {version.group(1)}" if version else None,
                          device.group(1) if device else None, head.group(2))  # fmt: skip
    fig = report.figures

    def index(section: str) -> int:
        for k, line in enumerate(lines):
            if line.startswith(section):
                return k
        raise FileFormatError(path, f"no {section.strip('=+ ')!r} section in the csynth report")

    _, rows = _table_rows(lines, index("+ Timing:"))
    clock = next((r for r in rows if r and r[0] == "ap_clk"), None)
    if clock is not None and len(clock) >= 3:
        for metric, cell in (("target_clock_ns", clock[1]), ("estimated_clock_ns", clock[2])):
            if (value := _number(cell)) is not None:
                fig[metric] = value
    _, rows = _table_rows(lines, index("+ Latency:"))
    if not rows or len(rows[0]) < 6:
        raise FileFormatError(path, "the latency summary table has no data row")
    row = rows[
        0
    ]  # min, max latency (cycles), min, max (absolute), interval min, max, pipeline type
    for metric, cell in (("latency_cycles", row[0]), ("worst_latency_cycles", row[1]), ("latency_ns", row[2]),
                         ("ii_cycles", row[4])):  # fmt: skip
        if (value := _number(cell)) is not None:
            fig[metric] = value
    header, rows = _table_rows(lines, index("== Utilization Estimates"))
    total = next((r for r in rows if r and r[0] == "Total"), None)
    if total is None:
        raise FileFormatError(path, "the utilization summary has no Total row")
    for name, cell in zip(header, total, strict=False):
        if name in _RESOURCES and (value := _number(cell)) is not None:
            fig[_RESOURCES[name]] = value
    return report


# report_utilization rows (first match of the row label wins) -> metric, scale
_UTILISATION = {
    "Slice LUTs": ("luts", 1.0),
    "CLB LUTs": ("luts", 1.0),
    "Slice Registers": ("ffs", 1.0),
    "CLB Registers": ("ffs", 1.0),
    "DSPs": ("dsps", 1.0),
    "Block RAM Tile": ("brams", 2.0),  # 36 Kb tiles -> 18 Kb blocks
    "URAM": ("urams", 1.0),
}


def parse_utilization_rpt(path: str | os.PathLike[str]) -> VendorReport:
    """Vivado ``report_utilization`` (``vivado_synth.rpt``): LUTs, registers, DSPs, BRAM (18 Kb), URAM."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise FileFormatError(path, f"cannot read the report ({err.strerror})") from None
    if "report_utilization" not in text and "Utilization Design Information" not in text:
        raise FileFormatError(
            path, "not a Vivado utilization report (no report_utilization header)"
        )
    state = re.search(r"^\|\s*Design State\s*:\s*(.+?)\s*$", text, re.MULTILINE)
    version = re.search(r"^\|\s*Tool Version\s*:\s*(Vivado v\.\S+)", text, re.MULTILINE)
    device = re.search(r"^\|\s*Device\s*:\s*(\S+)", text, re.MULTILINE)
    design = re.search(r"^\|\s*Design\s*:\s*(\S+)", text, re.MULTILINE)
    placed = state is not None and any(w in state.group(1) for w in ("Routed", "Placed"))
    report = VendorReport(path, IMPL_SOURCE if placed else SYNTH_SOURCE, version.group(1) if version else None,
                          device.group(1) if device else None, design.group(1) if design else None)  # fmt: skip
    for line in text.splitlines():
        if not line.startswith("| "):
            continue
        cells = _cells(line)
        label = cells[0].rstrip("*").strip()
        if label in _UTILISATION and len(cells) > 1:
            metric, scale = _UTILISATION[label]
            if metric not in report.figures and (value := _number(cells[1])) is not None:
                report.figures[metric] = value * scale
    if "luts" not in report.figures:
        raise FileFormatError(path, "no Slice LUTs / CLB LUTs row in the utilization report")
    return report


def _top_name(project: Path) -> str | None:
    tcl = project / "project.tcl"
    if tcl.is_file():
        m = re.search(r'set project_name "(\w+)"', tcl.read_text())
        if m:
            return m.group(1)
    return None


def find_vendor_reports(
    project: str | os.PathLike[str], top: str | None = None
) -> list[VendorReport]:
    """Every report the vendor tools left in an hls4ml project (none when they were never run):
    the top's csynth report (XML, else text) of the first solution, then ``vivado_synth.rpt``."""
    project = Path(project)
    top = top or _top_name(project)
    found: list[VendorReport] = []
    if top is not None:
        for solution in sorted((project / f"{top}_prj").glob("*/syn/report")):
            xml, rpt = solution / f"{top}_csynth.xml", solution / f"{top}_csynth.rpt"
            if xml.is_file():
                found.append(parse_csynth_xml(xml))
                break
            if rpt.is_file():
                found.append(parse_csynth_rpt(rpt))
                break
    if (project / "vivado_synth.rpt").is_file():
        found.append(parse_utilization_rpt(project / "vivado_synth.rpt"))
    return found
