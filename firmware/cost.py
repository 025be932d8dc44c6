"""Hardware cost of the trigger without Vivado/Vitis: da4ml, Verilator, Yosys; vendor reports when present.

hls4ml gives no latency or resource figure without the vendor tools, so:

1. **da4ml** traces the whole trigger (:mod:`firmware.trace`) as integer logic:
   constant-weight products become shift-and-add trees (distributed arithmetic, no
   DSPs, no BRAM), giving a LUT estimate and the adder depth. The logic is cut into
   pipeline stages of ``adders_per_cycle`` adder levels, where
   ``adders_per_cycle = floor(clock_period / ADDER_DELAY_NS)``; ``ADDER_DELAY_NS`` is an
   assumption (one carry-chain adder plus routing on an UltraScale+ -2 part), stated in
   every table. Stages give the latency in cycles; pipeline registers give the FF count;
   a fully pipelined design takes one event per clock (II = 1). da4ml counts every adder
   as one level whatever its width (``carry_size=-1``), a variable product of W-bit operands
   as W levels and a ROM of a B-bit input as ``max(B - 6, 1)``; the constant matrices are
   solved for minimal depth (``firmware.trace.SOLVER_OPTIONS``). 1 ns per level is da4ml's own
   convention (its paper's artifact, calad0i/da4ml-ae ``convert.sh``, sets the latency cutoff in
   levels to the clock period in ns), not a measurement; it places the RTL's registers.
   The headline latency, which the budget check uses, is the **delay model**'s
   (:mod:`firmware.delay_model`): the same logic's critical path from cited Virtex UltraScale+ -2
   cell and net delays (FloPoCo's Vivado-derived target model; width-aware), with which it times
   each of da4ml's stages (``rtl_slowest_stage_ns``; a stage longer than the clock counts the
   cycles it needs), and the fewest cycles timing-driven registers would need
   (``min_latency_ns``). Its error on an implemented design is not measured (see
   :mod:`firmware.calibration`), and its column says so. Beside them, the **hls4ml Latency model** (:mod:`firmware.latency_project`), the cost of the HLS
   project written with hls4ml's Latency strategy, counted from its products and adder trees, whose
   error on published Vivado figures is measured in :mod:`firmware.calibration`.
   Every source label ends with the implementation its figures describe: da4ml, the delay model
   and Yosys describe a ``distributed_arithmetic`` project (the default strategy, whose dense
   layers are da4ml's solutions), the Latency model a ``latency`` project. The estimates of the
   project's own strategy are the headline (``CostReport.best``: summary and budget check).
2. **Verilator** (when on PATH) compiles da4ml's Verilog and the simulated RTL is
   checked bit for bit against the integer trigger emulator (:class:`emulation.TriggerEmulator`).
3. **Yosys** (when on PATH) synthesises the same Verilog with
   ``synth_xilinx -family xcup -flatten -noiopad`` and ``stat`` counts LUTs, FFs,
   carry cells, DSP48E2 and BRAM (technology mapping only: no placement, no timing).
4. **Vivado/Vitis reports** (:mod:`firmware.reports`) when the user ran ``build_prj.tcl``: shown
   beside the estimates, with the ratio estimate / reported per metric.

Every figure carries its source; without Verilator/Yosys the da4ml estimate stands
alone and the table says so.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emulation.spec import FirmwareSpec
from emulation.trigger import TriggerBits, TriggerEmulator, TriggerOutputs, mismatching_events
from firmware.defaults import DEFAULT_PART, DEFAULT_STRATEGY
from firmware.delay_model import DEFAULT_FABRIC, FabricDelays, fabric_for_part
from firmware.trace import OUTPUTS, trace_trigger

ADDER_DELAY_NS = 1.0
RTL_NAME = "trigger_rtl"
METRICS = ("latency_cycles", "latency_ns", "ii_cycles", "luts", "ffs", "dsps", "brams")
# sources, best first: what the vendor tools reported, then our estimates
REPORTED = ("vivado implementation", "vivado synthesis", "vivado/vitis hls")
# the delay model before da4ml: its latency (cited delays) is the headline; it gives no resources
ESTIMATED = ("yosys", "delay model", "da4ml")
RATIO_COLUMN = "estimate / reported"
# which implementation each estimate describes (the project's strategy, firmware.convert): da4ml,
# its delay model and Yosys describe the distributed-arithmetic logic, the Latency model hls4ml's
# Latency strategy; the estimates of the project's own strategy come first (the headline)
LATENCY_MODEL = "hls4ml latency model"
DESCRIBES = {"distributed_arithmetic": ESTIMATED, "latency": (LATENCY_MODEL,)}


def tag(strategy: str) -> str:
    """What a source label appends to say which implementation its figures describe."""
    return f"[describes a {strategy} project]"


@dataclass
class CostFigure:
    metric: str
    value: float | None
    source: str
    note: str = ""


@dataclass
class CostReport:
    """All figures found, each with its source; ``best`` picks one per metric for summaries."""

    clock_period_ns: float
    figures: list[CostFigure] = field(default_factory=list)
    rtl_events: int = 0
    rtl_mismatches: int | None = None
    notes: list[str] = field(default_factory=list)
    levels_per_cycle: int | None = None  # da4ml's pipelining: adder levels per clock cycle
    strategy: str = DEFAULT_STRATEGY  # the project's implementation: its estimates are the headline

    @property
    def estimated(self) -> tuple[str, ...]:
        """Estimate sources, best first: those describing the project's strategy, then the other's."""
        other = tuple(p for s, ps in DESCRIBES.items() if s != self.strategy for p in ps)
        return DESCRIBES[self.strategy] + other

    @property
    def other_strategy(self) -> str:
        return next(s for s in DESCRIBES if s != self.strategy)

    def add(self, metric: str, value: float | None, source: str, note: str = "") -> None:
        self.figures.append(CostFigure(metric, value, source, note))

    def get(self, metric: str, source: str) -> float | None:
        for f in self.figures:
            if f.metric == metric and f.source == source:
                return f.value
        return None

    def best(
        self, metric: str, prefixes: tuple[str, ...] | None = None
    ) -> tuple[float | None, str]:
        """The first figure of ``metric`` by source, in the order of ``prefixes``: by default Vivado
        implementation, Vivado synthesis, the HLS report, then the estimates of the project's
        strategy (distributed_arithmetic: Yosys, then da4ml; latency: the hls4ml Latency model),
        then the other strategy's."""
        for prefix in REPORTED + self.estimated if prefixes is None else prefixes:
            for f in self.figures:
                if (
                    f.metric == metric
                    and f.source.lower().startswith(prefix)
                    and f.value is not None
                ):
                    return f.value, f.source
        return None, "none"

    def beside(self, metric: str) -> tuple[float | None, str]:
        """The estimate of ``metric`` for the other strategy's project (shown beside the headline)."""
        return self.best(metric, DESCRIBES[self.other_strategy])

    def table(self) -> Any:
        """pandas DataFrame: one row per metric, one column per source, the headline estimate's
        column (the project's strategy) first."""
        import pandas as pd

        frame = pd.DataFrame(
            [(f.metric, f.source, f.value) for f in self.figures],
            columns=["metric", "source", "value"],
        )
        if frame.empty:
            return frame
        wide = frame.pivot_table(index="metric", columns="source", values="value", aggfunc="first")
        order = [m for m in METRICS if m in wide.index] + [
            m for m in wide.index if m not in METRICS
        ]
        wide = wide.loc[order]
        rank = {p: i for i, p in enumerate(REPORTED + self.estimated)}

        def first(source: str) -> int:
            low = source.lower()
            return min((i for p, i in rank.items() if low.startswith(p)), default=len(rank))

        wide = wide[sorted(wide.columns, key=first)]
        if any(f.source.lower().startswith(REPORTED) for f in self.figures):
            wide[RATIO_COLUMN] = [self.estimate_error(m) for m in wide.index]
        return wide

    def estimate_error(self, metric: str) -> float | None:
        """Our best estimate (Yosys, else da4ml) over the best vendor figure, when both exist."""
        estimated, _ = self.best(metric, self.estimated)
        reported, _ = self.best(metric, REPORTED)
        if estimated is None or reported is None or reported == 0:
            return None
        return estimated / reported


def adders_per_cycle(clock_period_ns: float, adder_delay_ns: float = ADDER_DELAY_NS) -> int:
    return max(1, math.floor(clock_period_ns / adder_delay_ns + 1e-9))


@dataclass(frozen=True)
class Da4mlLatency:
    """da4ml's latency of the traced trigger: adder levels, pipeline stages at the clock, LUT estimate."""

    adder_levels: float
    cycles: int
    latency_ns: float
    luts: float
    levels_per_cycle: int


def da4ml_pipeline(spec: FirmwareSpec, weights: dict[str, np.ndarray], clock_period_ns: float,
                   adder_delay_ns: float = ADDER_DELAY_NS) -> tuple[Any, Any, Da4mlLatency]:  # fmt: skip
    """The traced trigger (``CombLogic``), its pipeline (``adders_per_cycle`` levels per stage) and its latency."""
    from da4ml.trace import to_pipeline

    cutoff = adders_per_cycle(clock_period_ns, adder_delay_ns)
    comb = trace_trigger(spec, weights)
    pipe = to_pipeline(comb, cutoff, verbose=False)
    stages = len(pipe.solutions)
    lat = Da4mlLatency(
        float(comb.latency[1]), stages, stages * clock_period_ns, float(round(comb.cost)), cutoff
    )
    return comb, pipe, lat


def da4ml_latency(spec: FirmwareSpec, weights: dict[str, np.ndarray], clock_period_ns: float,
                  adder_delay_ns: float = ADDER_DELAY_NS) -> Da4mlLatency:  # fmt: skip
    """:func:`da4ml_pipeline`'s latency alone (the figure the budget check uses; scans call it per point)."""
    return da4ml_pipeline(spec, weights, clock_period_ns, adder_delay_ns)[2]


def tools() -> dict[str, str | None]:
    return {name: shutil.which(name) for name in ("verilator", "yosys")}


def estimate(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    clock_period_ns: float,
    workdir: str | os.PathLike[str],
    check_words: np.ndarray | None = None,
    part: str = DEFAULT_PART,
    adder_delay_ns: float = ADDER_DELAY_NS,
    use_verilator: bool = True,
    use_yosys: bool = True,
    project: str | os.PathLike[str] | None = None,
    strategy: str = DEFAULT_STRATEGY,
) -> CostReport:
    """Cost of the trigger: da4ml estimate, plus Verilator check and Yosys counts when available,
    and the hls4ml Latency model beside it.

    ``strategy`` is the project's (``firmware.convert.ConversionSettings.strategy``): the estimates
    describing it are the headline (``best``), the other's are shown beside them. With
    ``check_words``, the da4ml interpreter and the RTL are compared with the trigger emulator
    (:class:`emulation.TriggerEmulator` of ``spec`` and ``weights``)."""
    if strategy not in DESCRIBES:
        raise ValueError(f"strategy {strategy!r} is not one of {', '.join(DESCRIBES)}")
    from da4ml.codegen import VerilogModel

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if check_words is not None and len(check_words) == 0:
        check_words = None
    expected: TriggerOutputs | None = None
    if check_words is not None:
        expected = TriggerEmulator(spec, weights)(check_words)
    comb, pipe, lat = da4ml_pipeline(spec, weights, clock_period_ns, adder_delay_ns)
    cutoff, stages = lat.levels_per_cycle, lat.cycles
    report = CostReport(clock_period_ns, levels_per_cycle=cutoff, strategy=strategy)
    src = (
        f"da4ml (estimate of its distributed-arithmetic RTL, {cutoff} adder levels/cycle at "
        f"{adder_delay_ns:g} ns/adder, da4ml's convention; uncalibrated) "
        f"{tag('distributed_arithmetic')}"
    )
    report.add("adder_depth", float(comb.latency[1]), src)
    report.add("latency_cycles", float(stages), src)
    report.add("latency_ns", stages * clock_period_ns, src)
    report.add("ii_cycles", 1.0, src, "fully pipelined")
    report.add("luts", float(round(comb.cost)), src)
    report.add("ffs", float(pipe.reg_bits), src, "pipeline registers")
    report.add("dsps", 0.0, src, "distributed arithmetic: no multipliers")
    report.add("brams", 0.0, src, "weights are constants in logic")

    fabric = fabric_for_part(part)
    add_delay_model(report, comb, clock_period_ns, pipe, fabric)
    add_latency_project(report, spec, weights, clock_period_ns, fabric)

    if check_words is not None and expected is not None:  # both or neither
        got = comb.predict(np.asarray(check_words, dtype=np.float64))
        report.notes.append(
            f"da4ml interpreter vs reference: {_mismatches(spec, got, expected)} "
            f"mismatching events of {len(check_words)}"
        )

    rtl_dir = workdir / "rtl"
    shutil.rmtree(rtl_dir, ignore_errors=True)
    rtl = VerilogModel(
        pipe,
        RTL_NAME,
        rtl_dir,
        latency_cutoff=cutoff,
        print_latency=False,
        part_name=part,
        clock_period=clock_period_ns,
    )
    rtl.write()
    have = tools()
    if use_verilator and have["verilator"] and check_words is not None and expected is not None:
        compile_verilator(rtl)
        out = rtl.predict(np.asarray(check_words, dtype=np.float64))
        report.rtl_events = len(check_words)
        report.rtl_mismatches = _mismatches(spec, out, expected)
    elif use_verilator and not have["verilator"]:
        report.notes.append("verilator not on PATH: RTL not simulated (apt-get install verilator)")
    if use_yosys and have["yosys"]:
        counts = yosys_stat(rtl_dir, workdir / "yosys.log")
        ysrc = (
            f"yosys synth_xilinx xcup (mapped cells of da4ml's RTL) {tag('distributed_arithmetic')}"
        )
        report.add("luts", counts["luts"], ysrc)
        report.add("ffs", counts["ffs"], ysrc)
        report.add("dsps", counts["dsps"], ysrc)
        report.add("brams", counts["brams"], ysrc)
        report.add("carry_cells", counts["carry"], ysrc)
    elif use_yosys:
        report.notes.append("yosys not on PATH: only da4ml's own estimate (apt-get install yosys)")
    report.notes.append(headline_note(strategy))
    if project is not None:
        add_vendor_report(report, project)
    return report


def timed_cycles(
    pipe: Any, clock_period_ns: float, fabric: FabricDelays = DEFAULT_FABRIC
) -> tuple[int, list[float]]:
    """The cycles of da4ml's pipeline ``pipe`` by the delay model (each stage timed on ``fabric``, one
    longer than the clock counted as the cycles it needs): the headline latency's cycles; and the
    stages' delays (ns)."""
    from firmware.delay_model import stage_delays, usable_ns

    stages = stage_delays(pipe, fabric)
    usable = usable_ns(clock_period_ns, fabric)
    return sum(max(1, math.ceil(t / usable - 1e-9)) for t in stages), stages


def add_delay_model(
    report: CostReport,
    comb: Any,
    clock_period_ns: float,
    pipe: Any = None,
    fabric: FabricDelays = DEFAULT_FABRIC,
) -> None:
    """The headline latency from the part family's cited delays (:mod:`firmware.delay_model`): each stage
    of da4ml's ``pipe`` (the RTL written) timed, a stage longer than the clock counted as the cycles it
    needs; without ``pipe``, registers placed greedily. Also the unpipelined critical path and the
    fewest cycles timing-driven registers would need (``min_latency_ns``)."""
    from firmware.calibration import delay_model_error
    from firmware.delay_model import path_delay, usable_ns

    path = path_delay(comb, clock_period_ns, fabric)
    usable = usable_ns(clock_period_ns, fabric)
    src = (
        f"delay model (da4ml logic; {fabric.name} delays, {fabric.cited}; {delay_model_error()}) "
        f"{tag('distributed_arithmetic')}"
    )
    report.add("critical_path_ns", round(path.critical_ns, 3), src, "unpipelined, widest adder "
               f"{path.widest_adder_bits} bits")  # fmt: skip
    cycles, note = path.stages, "registers placed by these delays"
    if pipe is not None:
        cycles, stages = timed_cycles(pipe, clock_period_ns, fabric)
        slowest = max(stages, default=0.0)
        note = (f"da4ml's {len(stages)} RTL stages timed: slowest {slowest:.2f} ns of the "
                f"{usable:.2f} ns a {clock_period_ns:g} ns clock leaves")  # fmt: skip
        report.add("rtl_slowest_stage_ns", round(slowest, 3), src, note)
    report.add("latency_cycles", float(cycles), src, note)
    report.add("latency_ns", cycles * clock_period_ns, src)
    report.add("min_latency_ns", path.latency_ns, src,
               "registers placed by these delays (timing-driven), not da4ml's cut")  # fmt: skip


def add_latency_project(report: CostReport, spec: FirmwareSpec, weights: dict[str, np.ndarray],
                        clock_period_ns: float, fabric: FabricDelays = DEFAULT_FABRIC) -> None:  # fmt: skip
    """The hls4ml Latency project's own estimate (:mod:`firmware.latency_project`), beside da4ml's."""
    from firmware.calibration import ratio_ranges
    from firmware.latency_project import SOURCE, trigger_cost

    cost = trigger_cost(spec, weights, clock_period_ns, fabric)
    err = ratio_ranges()
    measured = ", ".join(
        f"{m} x{err[m]['min']:g}-{err[m]['max']:g}"
        for m in ("luts", "ffs", "dsps", "latency_cycles")
    )
    src = f"{SOURCE}; estimate/published on the calibration set: {measured} {tag('latency')}"
    report.add("latency_cycles", float(cost.latency_cycles), src)
    report.add("latency_ns", cost.latency_cycles * clock_period_ns, src)
    report.add("ii_cycles", 1.0, src, "reuse factor 1")
    report.add("luts", float(round(cost.luts)), src)
    report.add("ffs", float(round(cost.ffs)), src)
    report.add(
        "dsps", float(cost.dsps), src, f"{cost.products} products, {cost.lut_products} in LUTs"
    )
    report.add("brams", 0.0, src, "weights are constants")


def headline_note(strategy: str) -> str:
    """The cost table's note on which estimate is the headline and what the others describe."""
    if strategy == "distributed_arithmetic":
        return (
            "headline (summary.json, budget check): da4ml (Yosys where run), which describes this "
            "project: its dense layers are hls4ml's distributed_arithmetic strategy, da4ml's shift-and-add "
            "solutions with the estimate's solver options; preprocessing, scores and bits are the same "
            "C++ in both, and Vitis schedules the HLS project itself. Beside it: the hls4ml Latency model, "
            "the project --strategy latency would write"
        )
    return (
        "headline (summary.json, budget check): the hls4ml Latency model, which describes this project "
        "(hls4ml's Latency strategy). Beside it: da4ml (and Yosys, the delay model), which describe the "
        "project --strategy distributed_arithmetic would write"
    )


@dataclass
class _Values:
    """Trigger outputs with R1 and R2 as values (``TriggerBits`` in the units of the traced logic)."""

    r1: np.ndarray
    r2: np.ndarray
    regions: np.ndarray
    trigger: np.ndarray


def _mismatches(spec: FirmwareSpec, got: np.ndarray, ref: TriggerBits) -> int:
    """Events whose traced outputs ``got`` (N, 7: OUTPUTS, scores as values) differ from ``ref``."""
    if got.ndim != 2 or got.shape[1] != len(OUTPUTS) or len(got) != len(ref.r1):
        raise ValueError(
            f"RTL gave outputs of shape {got.shape}, expected {(len(ref.r1), len(OUTPUTS))} "
            f"({', '.join(OUTPUTS)})"
        )
    f1 = spec.autoencoders[0].score.score.fractional
    f2 = spec.autoencoders[1].score.score.fractional
    as_values = _Values(
        np.ldexp(ref.r1.astype(np.float64), -f1),
        np.ldexp(ref.r2.astype(np.float64), -f2),
        ref.regions,
        ref.trigger,
    )
    traced = _Values(got[:, 0], got[:, 1], got[:, 2:6], got[:, 6])
    return int(mismatching_events(traced, as_values).sum())


def compile_verilator(rtl: Any) -> None:
    """da4ml's Verilator build, with the two workarounds Debian's Verilator 5.006 needs.

    Debian ships no ``libverilated.a`` and Verilator builds only ``V<prefix>__ALL.a`` where
    da4ml links ``libV<prefix>.a``: build the runtime objects from the generated makefile,
    archive them, copy the archive, link again (docs/toolchain.md).
    """
    _lint_codes_for_old_verilator(Path(rtl._path) / "src")
    inc = "/usr/share/verilator/include"
    env = {"CPATH": f"{inc}:{inc}/vltstd"} if Path(inc).is_dir() else {}
    prefix = f"{RTL_NAME}_wrapper"
    first_try = io.StringIO()
    try:
        with contextlib.redirect_stderr(first_try), contextlib.redirect_stdout(first_try):
            rtl._compile(openmp=False, nproc=2, _env=env, clean=True)
        return
    except RuntimeError:
        pass  # expected with Debian's Verilator: fix up below
    obj = Path(rtl._path) / "sim" / "obj_dir"
    full_env = {**os.environ, **env}
    mk = obj / f"V{prefix}.mk"
    if not mk.exists():
        raise ValueError(f"Verilator did not generate {mk}: the RTL did not verilate")
    subprocess.run(
        ["make", "-s", "-C", str(obj), "-f", mk.name, "verilated.o", "verilated_threads.o"],
        env=full_env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["ar", "rcs", "libverilated.a", "verilated.o", "verilated_threads.o"], cwd=obj, check=True
    )
    shutil.copy(obj / f"V{prefix}__ALL.a", obj / f"libV{prefix}.a")
    try:
        rtl._compile(openmp=False, nproc=2, _env=env, clean=False)
    except RuntimeError as err:
        raise ValueError(
            f"Verilator build of {rtl._path} failed even with the Debian workarounds"
        ) from err


def _lint_codes_for_old_verilator(src: Path) -> None:
    """Verilator < 5.008 rejects the WIDTHTRUNC/WIDTHEXPAND lint codes in da4ml's sources; WIDTH covers both."""
    for path in src.rglob("*.v"):
        text = path.read_text()
        fixed = re.sub(r"\bWIDTH(TRUNC|EXPAND)\b", "WIDTH", text)
        if fixed != text:
            path.write_text(fixed)


_STAT_CELL = re.compile(r"^\s+(\w+)\s+(\d+)\s*$")


def yosys_stat(rtl_dir: Path, log: Path, timeout: float = 3600) -> dict[str, float]:
    """LUT/FF/carry/DSP/BRAM cell counts of da4ml's Verilog after ``synth_xilinx -family xcup``."""
    src = Path(rtl_dir) / "src"
    # da4ml's static modules (the lookup table only when the design has tables), the stages, the top
    has_tables = any((src / "memfiles").glob("*"))
    static = [
        p for p in sorted((src / "static").glob("*.v")) if has_tables or p.name != "lookup_table.v"
    ]
    design = [p for p in sorted(src.glob(f"{RTL_NAME}*.v")) if not p.name.endswith("_wrapper.v")]
    files = [str(p.resolve()) for p in static + design]
    # ROMs (lookup_table.v) read their .mem files by relative name, with the instance's parameters:
    # elaborate from the top (-defer) inside memfiles/; synth_xilinx finds no LUTRAM mapping for these
    # asynchronous ROMs, so they become logic (memory_map) first, as a LUT-based ROM would be
    roms = (
        f"hierarchy -top {RTL_NAME}; proc; flatten; memory -nomap; memory_map; opt; "
        if has_tables
        else ""
    )
    script = (
        f"read_verilog -defer {' '.join(files)}; {roms}"
        f"synth_xilinx -family xcup -flatten -noiopad -top {RTL_NAME}; stat"
    )
    log = Path(log).resolve()
    cwd = src / "memfiles" if has_tables else src
    done = subprocess.run(
        ["yosys", "-q", "-p", script, "-l", str(log)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if done.returncode != 0:
        raise ValueError(f"yosys failed on {src} (see {log}): {done.stderr[-2000:]}")
    return parse_yosys_stat(log.read_text())


def parse_yosys_stat(text: str) -> dict[str, float]:
    cells: dict[str, int] = {}
    for line in text[text.rfind("Number of cells") :].splitlines():
        m = _STAT_CELL.match(line)
        if m:
            cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k))
    ffs = sum(v for k, v in cells.items() if re.fullmatch(r"FD\w+", k))
    carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
    dsps = sum(v for k, v in cells.items() if k.startswith("DSP"))
    brams = sum(v for k, v in cells.items() if k.startswith("RAMB"))
    return {
        "luts": float(luts),
        "ffs": float(ffs),
        "carry": float(carry),
        "dsps": float(dsps),
        "brams": float(brams),
    }


def add_vendor_report(report: CostReport, project: str | os.PathLike[str]) -> bool:
    """Add the Vivado/Vitis figures (:func:`firmware.reports.find_vendor_reports`) if the user ran
    ``build_prj.tcl``: the HLS synthesis estimate (``csynth``) and, with ``vsynth=1``, Vivado's
    post-synthesis utilisation. A report that cannot be read becomes a note, not a figure."""
    from firmware.reports import find_vendor_reports

    try:
        found = find_vendor_reports(project)
    except ValueError as err:
        report.notes.append(f"vendor report not read: {err}")
        return False
    for vendor in found:
        for metric, value in vendor.figures.items():
            report.add(metric, value, vendor.source)
        tool = f"{vendor.tool}, " if vendor.tool else ""
        report.notes.append(
            f"{vendor.source}: {vendor.path} ({tool}part {vendor.part or 'not stated'})"
        )
    return bool(found)


def read_cost_table(
    project: str | os.PathLike[str], clock_period_ns: float, strategy: str = "latency"
) -> CostReport:
    """The estimates ``l1ad firmware`` wrote to ``project/cost/cost.csv`` (vendor columns and the
    ratio column left out: they are read again from the reports); ``strategy``: the project's
    (projects written before the option existed used hls4ml's Latency strategy)."""
    import pandas as pd

    path = Path(project) / "cost" / "cost.csv"
    if not path.is_file():
        raise ValueError(f"{path}: no cost table; run l1ad firmware for this project first")
    frame = pd.read_csv(path, index_col=0)
    report = CostReport(clock_period_ns, strategy=strategy)
    for source in frame.columns:
        if source == RATIO_COLUMN or source.lower().startswith(REPORTED):
            continue
        for metric, value in frame[source].items():
            if pd.notna(value):
                report.add(str(metric), float(value), source)
    return report
