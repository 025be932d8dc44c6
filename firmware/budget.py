"""Budget check: latency and II against the trigger's budget, resources against the FPGA part.

The L1 trigger has ~10 us in total (CMS Phase-2: 12.5 us); an anomaly-detection algorithm in
the Global Trigger gets tens of ns (goal here: 50 ns) and must accept one event per
bunch crossing (25 ns), i.e. II <= floor(25 ns / clock) cycles. Resources are compared with
the part's capacity (times the fraction the algorithm may use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from firmware.convert import cycles_per_bunch_crossing
from firmware.cost import CostReport

# capacity per part family: LUT, FF, DSP, BRAM in 18 Kb blocks (Xilinx data sheets DS923, DS962, DS183)
PARTS: dict[str, dict[str, int]] = {
    "xcvu9p": {"luts": 1_182_240, "ffs": 2_364_480, "dsps": 6_840, "brams": 4_320},
    "xcvu13p": {"luts": 1_728_000, "ffs": 3_456_000, "dsps": 12_288, "brams": 5_376},
    "xcu250": {"luts": 1_728_000, "ffs": 3_456_000, "dsps": 12_288, "brams": 5_376},
    "xcku15p": {"luts": 522_720, "ffs": 1_045_440, "dsps": 1_968, "brams": 1_968},
    "xc7vx690t": {"luts": 433_200, "ffs": 866_400, "dsps": 3_600, "brams": 2_940},
}


class BudgetError(ValueError):
    """The design does not fit its latency/II budget or the part; the message lists every excess."""


def part_capacity(part: str) -> tuple[str, dict[str, int]]:
    """Capacity of a part given by its full name (``xcvu13p-flga2577-2-e``) or family (``xcvu13p``)."""
    name = part.lower()
    for family in sorted(PARTS, key=len, reverse=True):
        if name.startswith(family):
            return family, PARTS[family]
    raise ValueError(f"part {part!r} is not in the capacity table; known: {', '.join(PARTS)}")


@dataclass
class BudgetVerdict:
    latency_budget_ns: float
    part: str
    within_budget: bool
    rows: list[tuple[str, float | None, float, str, bool]] = field(
        default_factory=list
    )  # what, value, limit, source, ok
    contributors: list[tuple[str, float, float]] = field(default_factory=list)
    clock_period_ns: float | None = None
    levels_per_cycle: int | None = None  # the cost model's adder levels in one clock cycle

    def excesses(self) -> list[str]:
        return [
            f"{what} {value:g} exceeds {limit:g} ({source})"
            for what, value, limit, source, ok in self.rows
            if not ok
        ]

    def summary(self) -> str:
        head = "within budget" if self.within_budget else "OVER BUDGET"
        lines = [
            f"budget verdict: {head} (latency <= {self.latency_budget_ns:g} ns, part {self.part})"
        ]
        for what, value, limit, source, ok in self.rows:
            shown = "n/a" if value is None else f"{value:g}"
            lines.append(f"  {'ok  ' if ok else 'OVER'} {what}: {shown} / {limit:g}  [{source}]")
        return "\n".join(lines)

    def error_message(self) -> str:
        lines = [f"the trigger does not meet its budget on {self.part}:"]
        lines += [f"  - {e}" for e in self.excesses()]
        if self.contributors:
            lines.append("largest contributors (da4ml, each block traced alone), by LUTs:")
            for block, luts, depth in sorted(self.contributors, key=lambda c: -c[1])[:5]:
                lines.append(f"  - {block}: {luts:.0f} LUTs, {depth:.0f} adder levels")
            lines.append("deepest blocks (adder levels add up along the chain into the latency):")
            for block, luts, depth in sorted(self.contributors, key=lambda c: -c[2])[:3]:
                lines.append(f"  - {block}: {depth:.0f} adder levels, {luts:.0f} LUTs")
        latency_ok = all(ok for what, *_, ok in self.rows if what == "latency (ns)")
        if not latency_ok:
            lines += self.chain_lines()
        lines.append(
            "options: fewer bits (quantize), fewer or narrower layers, a score over fewer features, "
            "a faster clock, a larger part or a larger --latency-budget"
        )
        return "\n".join(lines)

    def blocks_over_latency(self) -> dict[str, list[tuple[str, float, float]]]:
        """Per autoencoder chain (preprocessing, its layers, its score), the blocks (name, first and
        last adder level) that end past the last adder level the latency budget allows."""
        if not self.contributors or not self.clock_period_ns or not self.levels_per_cycle:
            return {}
        allowed = (
            math.floor(self.latency_budget_ns / self.clock_period_ns + 1e-9) * self.levels_per_cycle
        )
        pre = [c for c in self.contributors if c[0] == "preprocessing"]
        chains: dict[str, list[tuple[str, float]]] = {}
        for name, _, depth in self.contributors:
            if name != "preprocessing":
                chains.setdefault(name.split()[0], []).append((name, depth))
        over: dict[str, list[tuple[str, float, float]]] = {}
        for chain, blocks in chains.items():
            level = 0.0
            for name, depth in [(p[0], p[2]) for p in pre] + blocks:
                if level + depth > allowed:
                    over.setdefault(chain, []).append((name, level + 1, level + depth))
                level += depth
        return over

    def chain_lines(self) -> list[str]:
        over = self.blocks_over_latency()
        clock, levels = self.clock_period_ns, self.levels_per_cycle
        if not over or not clock or not levels:  # no blocks over without both
            return []
        allowed = math.floor(self.latency_budget_ns / clock + 1e-9) * levels
        lines = [
            f"blocks past the latency budget ({self.latency_budget_ns:g} ns = "
            f"{math.floor(self.latency_budget_ns / clock + 1e-9)} cycles of {clock:g} ns "
            f"= {allowed} adder levels), along each chain (preprocessing, layers, score; blocks traced alone):"
        ]
        for chain, blocks in over.items():
            shown = ", ".join(
                f"{name} (levels {first:.0f}-{last:.0f})" for name, first, last in blocks
            )
            lines.append(f"  - {chain}: {shown}")
        return lines

    def raise_if_over(self) -> None:
        if not self.within_budget:
            raise BudgetError(self.error_message())


def check_budget_values(latency_budget_ns: float) -> None:
    """``ValueError`` for a budget no design can meet (called before any project is written)."""
    if not latency_budget_ns > 0 or latency_budget_ns == float("inf"):
        raise ValueError(f"latency budget must be a positive number of ns, got {latency_budget_ns}")


def check_budget(
    report: CostReport,
    latency_budget_ns: float,
    part: str,
    contributors: list[tuple[str, float, float]] | None = None,
) -> BudgetVerdict:
    """Compare the best figure of each metric (vendor > Yosys > da4ml) with the budget and the part."""
    check_budget_values(latency_budget_ns)
    family, capacity = part_capacity(part)
    rows = []
    latency, src = report.best("latency_ns")
    rows.append(
        (
            "latency (ns)",
            latency,
            latency_budget_ns,
            src,
            latency is not None and latency <= latency_budget_ns,
        )
    )
    ii_limit = cycles_per_bunch_crossing(report.clock_period_ns)
    ii, src = report.best("ii_cycles")
    rows.append(("II (cycles)", ii, float(ii_limit), src, ii is not None and ii <= ii_limit))
    for metric in ("luts", "ffs", "dsps", "brams"):
        value, src = report.best(metric)
        limit = float(capacity[metric])
        rows.append((metric.upper()[:-1] + "s", value, limit, src, value is None or value <= limit))
    ok = all(r[4] for r in rows)
    return BudgetVerdict(latency_budget_ns, family, ok, rows, list(contributors or []), report.clock_period_ns,
                         report.levels_per_cycle)  # fmt: skip
