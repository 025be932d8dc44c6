"""Critical-path delay of da4ml's traced logic from cited cell and net delays of the target's part family.

da4ml counts every adder as one level whatever its width. On a Xilinx fabric an N-bit
ripple adder is a LUT per bit (the propagate signal) into a carry chain: the LUT, its net
to the carry, the carry entry, one hop per further carry block, the sum output, then a net
to the next operation. This module walks the ``CombLogic`` operations in order and adds
those delays along every path; pipeline registers are then placed greedily between
operations, and :func:`stage_delays` checks each stage of a pipeline da4ml already cut.

Two part families, each a :class:`FabricDelays` with one field per delay and its source:

**Virtex UltraScale+ speed grade -2** (:data:`ULTRASCALE_PLUS_2`, the family of the default
part ``xcvu13p-flga2577-2-e``): FloPoCo's target model of the xcvu3p-2 (FloPoCo,
``src/Targets/VirtexUltrascalePlus.hpp``, "copypasted from Vivado timing reports";
https://gitlab.com/flopoco/flopoco, mirrored at github.com/kammoh/flopoco), with its adder
formula ``VirtexUltrascalePlus::adderDelay`` (one CARRY8 per 8 bits):

===============================  =========  =============================================
LUT6 (a logic level)             0.148 ns   ``lut6Delay_``
LUT2 (an adder's propagate bit)  0.050 ns   ``lut2Delay_``
LUT output -> CARRY8 S           0.011 ns   ``lut_to_carry_net``
CARRY8 S -> CO[7] (entry)        0.115 ns   ``initCarryDelay_``
CARRY8 CI -> CO (each middle)    0.015 ns   ``carry8Delay_``
CO -> CI between slices         0.026 ns   ``interCarryNetDelay_``
CARRY8 CI -> O (sum out)         0.116 ns   ``finalCarryDelay_``
local route to the next cell     0.180 ns   ``typicalLocalRoutingDelay_``
flip-flop clock -> Q             0.150 ns   ``ffDelay_`` (Vivado ``get_speed_models`` of AFF)
===============================  =========  =============================================

**Artix-7 speed grade -1** (:data:`ARTIX7_1`, the slowest 7-series grade): Project X-Ray's
measured cell delays (SymbiFlow/prjxray-db ``artix7/timings/CLBLL_L.sdf``, ``slicel.sdf``) as
Yosys 0.23 carries them in ``techlibs/xilinx/cells_sim.v`` (LUT6 0.642 ns, CARRY4 S->CO[3]
0.508 ns, CI->CO[3] 0.114 ns, CI->O[3] 0.313 ns, FDRE clock->Q 0.303 ns), with an assumed
0.4 ns net per operation (no source: kept for the hls4ml Latency model of
:mod:`firmware.latency_project`, whose calibration was measured with it).

Assumptions, stated in every figure that uses them:

- **Adders.** Every adder, constant additions included, is a carry chain of its result's
  width, even where da4ml's level count gives it no level of its own.
- **Non-adder operations** (ReLU, saturation, comparisons, multiplexers) cost one LUT6 and
  one net when da4ml gives them a level, nothing when it gives them none (wiring); a ROM
  of a B-bit input costs ``max(B - 6, 1)`` LUT levels as in da4ml; a variable product of
  W-bit operands W adders (da4ml's shift-and-add).
- **Routing.** One typical local route per operation: no fan-out, congestion or
  SLR-crossing delay; the setup time is taken as 0 (FloPoCo gives none).

How far these figures are from an implemented design is not measured here: no published
post-route latency of a distributed-arithmetic design could be rebuilt (see
:mod:`firmware.calibration`, which states the check that stands in for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FabricDelays:
    """Delays (ns) of one part family and speed grade, each as its source gives it."""

    name: str
    lut_ns: float  # a LUT6 logic level
    adder_lut_ns: float  # the propagate LUT of an adder bit
    lut_to_carry_ns: float  # net from that LUT into the carry chain
    carry_entry_ns: float  # first carry block, S -> carry out
    carry_block_ns: float  # each middle carry block, carry in -> carry out
    inter_carry_net_ns: float  # carry out -> carry in of the next slice
    carry_sum_out_ns: float  # last carry block, carry in -> sum out
    carry_block_bits: int
    net_ns: float  # one route from an operation to the next
    clock_to_q_ns: float
    setup_ns: float
    source: str
    cited: str  # the source in a few words, for cost-table labels


ULTRASCALE_PLUS_2 = FabricDelays(
    name="Virtex UltraScale+ -2",
    lut_ns=0.148,
    adder_lut_ns=0.050,
    lut_to_carry_ns=0.011,
    carry_entry_ns=0.115,
    carry_block_ns=0.015,
    inter_carry_net_ns=0.026,
    carry_sum_out_ns=0.116,
    carry_block_bits=8,
    net_ns=0.180,
    clock_to_q_ns=0.150,
    setup_ns=0.0,
    source=(
        "Virtex UltraScale+ -2 cell and net delays from Vivado timing reports, as FloPoCo's "
        "VirtexUltrascalePlus target (xcvu3p-2) gives them (FloPoCo src/Targets/VirtexUltrascalePlus.hpp)"
    ),
    cited="FloPoCo",
)
ARTIX7_1 = FabricDelays(
    name="Artix-7 -1",
    lut_ns=0.642,
    adder_lut_ns=0.642,  # prjxray gives the LUT6 I0->O arc for every LUT
    lut_to_carry_ns=0.0,
    carry_entry_ns=0.508,
    carry_block_ns=0.114,
    inter_carry_net_ns=0.0,
    carry_sum_out_ns=0.313,
    carry_block_bits=4,
    net_ns=0.4,  # assumption: no cited source
    clock_to_q_ns=0.303,
    setup_ns=0.0,  # prjxray-db's D setup is negative (-46 ps); Yosys clamps it to 0
    source="Artix-7 -1 cell delays (Project X-Ray prjxray-db via Yosys cells_sim.v) + an assumed 0.4 ns net",
    cited="prjxray-db + an assumed net",
)
DEFAULT_FABRIC = ULTRASCALE_PLUS_2
# part-name prefixes (Xilinx: xc7 = 7-series, xcvu/xcku/xczu/xcu = UltraScale+) and their delays; a
# 7-series part gets Artix-7 -1's, the slowest 7-series fabric and the only one cited here
_FAMILY_PREFIXES = (("xc7", ARTIX7_1), (("xcvu", "xcku", "xczu", "xcu"), ULTRASCALE_PLUS_2))


def fabric_for_part(part: str) -> FabricDelays:
    """The cited delays of ``part``'s family (a full name such as ``xcvu13p-flga2577-2-e`` or a family)."""
    name = part.lower()
    for prefixes, fabric in _FAMILY_PREFIXES:
        if name.startswith(prefixes):
            return fabric
    raise ValueError(
        f"part {part!r}: no cited delays for its family (known: 7-series xc7*, UltraScale+ "
        "xcvu*/xcku*/xczu*/xcu*)"
    )


_ADD_OPCODES = {0, 1, 4, -4}
_PRODUCT_OPCODE = 7
_TABLE_OPCODE = 8
_MUX_OPCODES = {6, -6}
_CONST_OPCODE = 5
_FREE_OPCODES = {-1, _CONST_OPCODE}  # inputs and constants


def adder_delay_ns(width: int, fabric: FabricDelays = DEFAULT_FABRIC) -> float:
    """A ``width``-bit adder and its output net: propagate LUT, its net into the carry chain,
    the entry block, one hop per middle block, the sum out of the last block (FloPoCo's
    ``adderDelay``: entry and sum-out are counted even for a single block)."""
    f = fabric
    blocks = max(1, math.ceil(width / f.carry_block_bits))
    return (
        f.adder_lut_ns + f.lut_to_carry_ns + f.carry_entry_ns + f.carry_sum_out_ns
        + (blocks - 1) * f.inter_carry_net_ns + max(blocks - 2, 0) * f.carry_block_ns
        + f.net_ns
    )  # fmt: skip


def lut_delay_ns(fabric: FabricDelays = DEFAULT_FABRIC) -> float:
    return fabric.lut_ns + fabric.net_ns


def qint_width(qint: Any) -> int:
    """Bits of a da4ml QInterval (sign + integer + fractional), as da4ml's ``cost_add`` counts them."""
    lo, hi, step = float(qint.min), float(qint.max), float(qint.step)
    if step <= 0 or (lo == 0 and hi == 0):
        return 1
    mag = max(abs(lo), abs(hi + step))
    return max(1, int(math.ceil(math.log2(mag)) - math.log2(step)) + (1 if lo < 0 else 0))


def _deps(op: Any) -> list[int]:
    if op.opcode in _FREE_OPCODES:  # an input's id0 is its input index, not an operand
        return []
    deps = [i for i in (op.id0, op.id1) if i >= 0]
    if op.opcode in _MUX_OPCODES:
        deps.append(
            int(op.data) & 0xFFFFFFFF
        )  # the condition's id (da4ml's pipeline reads it this way)
    return deps


def op_delay_ns(op: Any, level_step: float, fabric: FabricDelays = DEFAULT_FABRIC) -> float:
    """Delay of one operation; ``level_step`` is the adder levels da4ml gave it (0: wiring)."""
    if op.opcode in _FREE_OPCODES:
        return 0.0
    width = qint_width(op.qint)
    if op.opcode in _ADD_OPCODES:  # every adder is a carry chain, whatever level da4ml gave it
        return adder_delay_ns(width, fabric)
    if level_step <= 0:  # wiring (a quantisation that drops or keeps bits)
        return 0.0
    if op.opcode == _PRODUCT_OPCODE:
        return level_step * adder_delay_ns(width, fabric)
    if op.opcode == _TABLE_OPCODE:
        return level_step * lut_delay_ns(fabric)
    return lut_delay_ns(fabric)


@dataclass(frozen=True)
class PathDelay:
    critical_ns: float  # longest combinational path, no registers
    stages: int  # pipeline stages at the clock period (each ends in a register)
    clock_period_ns: float
    widest_adder_bits: int

    @property
    def latency_ns(self) -> float:
        return self.stages * self.clock_period_ns


def usable_ns(clock_period_ns: float, fabric: FabricDelays = DEFAULT_FABRIC) -> float:
    """What a clock period leaves for logic after the register's clock-to-Q and setup."""
    usable = clock_period_ns - fabric.clock_to_q_ns - fabric.setup_ns
    if usable <= 0:
        raise ValueError(
            f"clock period {clock_period_ns} ns leaves no time after the register's clock-to-Q"
        )
    return usable


def path_delay(
    comb: Any, clock_period_ns: float, fabric: FabricDelays = DEFAULT_FABRIC
) -> PathDelay:
    """Critical path of a da4ml ``CombLogic`` and its stage count when registers go between operations
    greedily (an operation that does not fit in what is left of a cycle starts the next one)."""
    usable = usable_ns(clock_period_ns, fabric)
    ops = comb.ops
    level = [float(op.latency) for op in ops]
    arrival = [0.0] * len(ops)  # unpipelined
    stage = [0] * len(ops)
    in_stage = [0.0] * len(ops)
    widest = 0
    for i, op in enumerate(ops):
        deps = _deps(op)
        # levels da4ml gave this operation: above its latest operand (a stage's inputs carry the
        # level they were registered at; constants carry none)
        step = level[i] - max(
            (level[d] for d in deps if ops[d].opcode != _CONST_OPCODE), default=0.0
        )
        d = op_delay_ns(op, step, fabric)
        if op.opcode in _ADD_OPCODES and d > 0:
            widest = max(widest, qint_width(op.qint))
        arrival[i] = max((arrival[j] for j in deps), default=0.0) + d
        s, t = max(((stage[j], in_stage[j]) for j in deps), default=(0, 0.0))
        if d > 0 and t + d > usable:
            extra = max(1, math.ceil(d / usable))  # a product longer than a cycle spans several
            s, t = s + extra, d - (extra - 1) * usable
        else:
            t += d
        stage[i], in_stage[i] = s, t
    outs = [int(i) for i in comb.out_idxs] if hasattr(comb, "out_idxs") else list(range(len(ops)))
    crit = max((arrival[i] for i in outs if i >= 0), default=0.0)
    stages = max((stage[i] for i in outs if i >= 0), default=0) + 1
    return PathDelay(crit, stages, clock_period_ns, widest)


def stage_delays(pipeline: Any, fabric: FabricDelays = DEFAULT_FABRIC) -> list[float]:
    """Critical path (ns, without clock-to-Q) of each stage of a da4ml ``Pipeline``: whether the
    registers da4ml placed let the RTL run at the clock, by these delays."""
    return [path_delay(stage, math.inf, fabric).critical_ns for stage in pipeline.solutions]
