"""Critical-path delay of da4ml's traced logic from cell delays: a width-aware replacement for "1 ns per adder".

da4ml counts every adder as one level whatever its width. On a Xilinx fabric an N-bit
ripple adder is one LUT (the propagate bit) into a carry chain: the LUT, the carry entry,
one carry-block hop per further block of bits, the sum output, then a net to the next
adder. This module walks the ``CombLogic`` operations in order and adds those delays
along every path; pipeline registers are then placed greedily between operations.

Cell delays (the only delays here with a source): Artix-7 speed grade -1 figures measured
by Project X-Ray (SymbiFlow/prjxray-db, ``artix7/timings/CLBLL_L.sdf`` and ``slicel.sdf``),
as Yosys 0.23 carries them in the ``specify`` blocks of ``techlibs/xilinx/cells_sim.v``:

==========================  =========  ====================================
LUT6, slowest input I0->O   0.642 ns   slicel.sdf (cells_sim.v, LUT6)
CARRY4 S[0] -> CO[3]        0.508 ns   CLBLL_L.sdf L11-46 (cells_sim.v, CARRY4)
CARRY4 CI -> CO[3]          0.114 ns   same (one further 4-bit block)
CARRY4 CI -> O[3]           0.313 ns   same (sum out of the last block)
FDRE clock -> Q             0.303 ns   CLBLL_L.sdf L243 (cells_sim.v, FDRE)
==========================  =========  ====================================

Assumptions, stated in every figure that uses them:

- **Part family.** Artix-7 -1 is the slowest 7-series grade; no UltraScale+ (DS923) cell
  delay was available to this project, so the same figures stand for UltraScale+ parts and
  the result is an upper bound there (UltraScale+ CARRY8 covers 8 bits per slice, counted
  here as two 4-bit hops).
- **Net delay.** ``NET_DELAY_NS`` per operation (one local route between slices) has no
  cited source: it is the free parameter a post-route calibration would fit.
- **Adders.** Every adder, constant additions included, is a carry chain of its result's
  width, even where da4ml's level count gives it no level of its own.
- **Non-adder operations** (ReLU, saturation, comparisons, multiplexers) cost one LUT and
  one net when da4ml gives them a level, nothing when it gives them none (wiring); a ROM
  of a B-bit input costs ``max(B - 6, 1)`` LUT levels as in da4ml; a variable product of
  W-bit operands W adders (da4ml's shift-and-add).

No published post-route latency of a distributed-arithmetic design could be rebuilt here
(see ``benchmarks/bench_firmware_calibration.py``), so this model is not calibrated: its
figures say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

LUT_NS = 0.642
CARRY_ENTRY_NS = 0.508
CARRY_BLOCK_NS = 0.114
CARRY_SUM_OUT_NS = 0.313
CARRY_BLOCK_BITS = 4
CLOCK_TO_Q_NS = 0.303
SETUP_NS = 0.0  # prjxray-db's D setup is negative (-46 ps); Yosys clamps it to 0
NET_DELAY_NS = 0.4  # assumption: one local route per operation (no cited source)
SOURCE = "Artix-7 -1 cell delays (Project X-Ray prjxray-db via Yosys cells_sim.v)"

_ADD_OPCODES = {0, 1, 4, -4}
_PRODUCT_OPCODE = 7
_TABLE_OPCODE = 8
_MUX_OPCODES = {6, -6}
_FREE_OPCODES = {-1, 5}  # inputs and constants


def adder_delay_ns(width: int, net_ns: float = NET_DELAY_NS) -> float:
    """LUT + carry chain of a ``width``-bit adder + one net."""
    blocks = max(1, math.ceil(width / CARRY_BLOCK_BITS))
    carry = (
        CARRY_ENTRY_NS
        if blocks == 1
        else CARRY_ENTRY_NS + (blocks - 2) * CARRY_BLOCK_NS + CARRY_SUM_OUT_NS
    )
    return LUT_NS + carry + net_ns


def lut_delay_ns(net_ns: float = NET_DELAY_NS) -> float:
    return LUT_NS + net_ns


def qint_width(qint: Any) -> int:
    """Bits of a da4ml QInterval (sign + integer + fractional), as da4ml's ``cost_add`` counts them."""
    lo, hi, step = float(qint.min), float(qint.max), float(qint.step)
    if step <= 0 or (lo == 0 and hi == 0):
        return 1
    mag = max(abs(lo), abs(hi + step))
    return max(1, int(math.ceil(math.log2(mag)) - math.log2(step)) + (1 if lo < 0 else 0))


def _deps(op: Any) -> list[int]:
    deps = [i for i in (op.id0, op.id1) if i >= 0]
    if op.opcode in _MUX_OPCODES:
        deps.append(
            int(op.data) & 0xFFFFFFFF
        )  # the condition's id (da4ml's pipeline reads it this way)
    return deps


def op_delay_ns(op: Any, level_step: float, net_ns: float = NET_DELAY_NS) -> float:
    """Delay of one operation; ``level_step`` is the adder levels da4ml gave it (0: wiring)."""
    if op.opcode in _FREE_OPCODES:
        return 0.0
    width = qint_width(op.qint)
    if op.opcode in _ADD_OPCODES:  # every adder is a carry chain, whatever level da4ml gave it
        return adder_delay_ns(width, net_ns)
    if level_step <= 0:  # wiring (a quantisation that drops or keeps bits)
        return 0.0
    if op.opcode == _PRODUCT_OPCODE:
        return level_step * adder_delay_ns(width, net_ns)
    if op.opcode == _TABLE_OPCODE:
        return level_step * lut_delay_ns(net_ns)
    return lut_delay_ns(net_ns)


@dataclass(frozen=True)
class PathDelay:
    critical_ns: float  # longest combinational path, no registers
    stages: int  # pipeline stages at the clock period (each ends in a register)
    clock_period_ns: float
    widest_adder_bits: int

    @property
    def latency_ns(self) -> float:
        return self.stages * self.clock_period_ns


def path_delay(comb: Any, clock_period_ns: float, net_ns: float = NET_DELAY_NS) -> PathDelay:
    """Critical path of a da4ml ``CombLogic`` and its stage count when registers go between operations
    greedily (an operation that does not fit in what is left of a cycle starts the next one)."""
    usable = clock_period_ns - CLOCK_TO_Q_NS - SETUP_NS
    if usable <= 0:
        raise ValueError(
            f"clock period {clock_period_ns} ns leaves no time after the register's clock-to-Q"
        )
    ops = comb.ops
    level = [float(op.latency) for op in ops]
    arrival = [0.0] * len(ops)  # unpipelined
    stage = [0] * len(ops)
    in_stage = [0.0] * len(ops)
    widest = 0
    for i, op in enumerate(ops):
        deps = _deps(op)
        step = level[i] - max(
            (level[d] for d in deps if ops[d].opcode not in _FREE_OPCODES), default=0.0
        )
        d = op_delay_ns(op, step, net_ns)
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
