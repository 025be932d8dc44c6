"""Cost of the hls4ml *Latency* project (``l1ad firmware --strategy latency``), counted from its arithmetic.

da4ml's figures describe distributed arithmetic (shift-and-add trees, no DSPs): the default
project. With ``--strategy latency`` the HLS project is hls4ml's Latency strategy at reuse
factor 1: every product ``w_ij * x_i`` written out, summed by an adder tree per output, which
Vivado/Vitis HLS maps and schedules itself. This module counts that implementation, per dense
layer:

- **Products.** A zero weight disappears (HLS constant-folds it). A weight whose integer
  mantissa has at most ``LUT_PRODUCT_MAX_CSD`` non-zero canonical-signed-digit (CSD) digits
  is built from shifts and (digits - 1) adders in LUTs; every other product takes one DSP.
  Assumption: HLS's own choice is not documented; on the calibration network (hls4ml's
  ``test_report`` Dense 16->5, see ``firmware.calibration``) this rule gives the
  post-synthesis DSP count within a few per cent.
- **Adder tree.** ``k - 1`` adders of the accumulator width for ``k`` non-zero products
  (+1 with a bias), ``ceil(log2 k)`` levels; one LUT per adder bit (LUT + carry chain).
- **Activation.** ReLU: one LUT per result bit.
- **Latency.** One cycle to register the inputs (once per chain), one for the DSP products (a fully
  registered DSP48 runs far above these clocks: DS923 gives 775 MHz at -2), the adder-tree
  levels packed into cycles with :func:`firmware.delay_model.adder_delay_ns`, one for the
  activation/output register.
- **FFs.** The bits live at every cycle boundary: registered inputs, the products, the
  partial sums left after each cycle of the tree, the outputs.

These are counting rules, not a scheduler: ``firmware.calibration`` measures their error
against published Vivado figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from firmware.delay_model import DEFAULT_FABRIC, FabricDelays, adder_delay_ns, usable_ns

LUT_PRODUCT_MAX_CSD = 2
SOURCE = "hls4ml Latency model (counted products and adder trees)"
INPUT_REGISTER_CYCLES = 1


def csd_digits(mantissa: int) -> int:
    """Non-zero digits of the canonical signed-digit form of an integer."""
    m, n = abs(int(mantissa)), 0
    while m:
        if m & 1:
            n += 1
            m = m + 1 if (m & 3) == 3 else m - 1
        m >>= 1
    return n


@dataclass
class LatencyCost:
    luts: float = 0.0
    ffs: float = 0.0
    dsps: int = 0
    latency_cycles: int = 0
    products: int = 0
    lut_products: int = 0
    adders: int = 0
    notes: list[str] = field(default_factory=list)

    def then(self, other: LatencyCost) -> LatencyCost:
        """This block followed by ``other`` (resources add, latencies add)."""
        return LatencyCost(
            self.luts + other.luts, self.ffs + other.ffs, self.dsps + other.dsps,
            self.latency_cycles + other.latency_cycles, self.products + other.products,
            self.lut_products + other.lut_products, self.adders + other.adders, self.notes + other.notes,
        )  # fmt: skip

    def beside(self, other: LatencyCost) -> LatencyCost:
        """This block in parallel with ``other`` (resources add, the longer latency)."""
        both = self.then(other)
        both.latency_cycles = max(self.latency_cycles, other.latency_cycles)
        return both


def _tree_cycles(
    levels: int, width: int, clock_period_ns: float, fabric: FabricDelays
) -> tuple[int, int]:
    """(cycles, adder levels per cycle) of an adder tree of ``levels`` levels of ``width``-bit adders
    on ``fabric`` (the part's family, :func:`firmware.delay_model.fabric_for_part`)."""
    per_cycle = max(
        1, math.floor(usable_ns(clock_period_ns, fabric) / adder_delay_ns(width, fabric))
    )
    return (math.ceil(levels / per_cycle) if levels else 0), per_cycle


def dense_cost(
    weights: np.ndarray,
    weight_fractional: int,
    input_width: int,
    accumulator_width: int,
    result_width: int,
    clock_period_ns: float,
    bias: bool = False,
    relu: bool = False,
    fabric: FabricDelays = DEFAULT_FABRIC,
) -> LatencyCost:
    """One dense layer, ``weights`` of shape (n_in, n_out) on the grid ``2**-weight_fractional``, its
    adder tree timed with ``fabric``'s delays."""
    w = np.asarray(weights, dtype=np.float64)
    mant = np.rint(np.ldexp(w, weight_fractional)).astype(np.int64)
    n_in, n_out = mant.shape
    cost = LatencyCost()
    tree_levels = 0
    for j in range(n_out):
        col = mant[:, j]
        nz = col[col != 0]
        for m in nz:
            digits = csd_digits(int(m))
            cost.products += 1
            if digits <= LUT_PRODUCT_MAX_CSD:
                cost.lut_products += 1
                if digits == 2:  # one shifted add of the input, as wide as the product
                    cost.adders += 1
                    cost.luts += input_width + int(abs(m)).bit_length()
            else:
                cost.dsps += 1
        terms = len(nz) + (1 if bias else 0)
        if terms > 1:
            cost.adders += terms - 1
            cost.luts += (terms - 1) * accumulator_width
            tree_levels = max(tree_levels, math.ceil(math.log2(terms)))
    if relu:
        cost.luts += n_out * result_width
    cycles, per_cycle = _tree_cycles(tree_levels, accumulator_width, clock_period_ns, fabric)
    # products registered (DSP P register, or LUT adder + FF), the tree's cycles, the output register; the
    # input register is the previous block's output register (add INPUT_REGISTER_CYCLES once per chain)
    cost.latency_cycles = 1 + cycles + 1
    product_width = min(
        accumulator_width, input_width + max(1, int(np.abs(mant).max(initial=1)).bit_length())
    )
    live = float(n_in * input_width + (cost.products - cost.dsps) * product_width)
    for c in range(1, cycles):
        remaining = sum(
            math.ceil(max(1, int((mant[:, j] != 0).sum())) / 2 ** (c * per_cycle))
            for j in range(n_out)
        )
        live += remaining * accumulator_width
    live += n_out * result_width
    cost.ffs = live
    return cost


def trigger_cost(
    spec,
    weights: dict[str, np.ndarray],
    clock_period_ns: float,
    fabric: FabricDelays = DEFAULT_FABRIC,
) -> LatencyCost:
    """The hls4ml Latency project of the whole trigger on ``fabric``: both autoencoders in parallel, each
    its dense layers then its score (squares as DSP products of the difference, an adder tree of the
    score width)."""
    from quantize.spec import weight_key

    total: LatencyCost | None = None
    for a, ae in enumerate(spec.autoencoders):
        # input register, then preprocessing: a subtraction and a shift per input, one cycle
        chain = LatencyCost(latency_cycles=INPUT_REGISTER_CYCLES + 1)
        chain.luts += len(spec.preprocessing.offsets) * spec.hardware_input.width
        x_width = spec.input.width
        for k, d in enumerate(ae.layers):
            wmat = np.asarray(weights[weight_key(a, k, "weight")], dtype=np.float64).T
            layer = dense_cost(wmat, d.weight.fractional, x_width, d.accumulator.width, d.activation_result.width,
                               clock_period_ns, bias=d.bias is not None, relu=d.activation == "relu",
                               fabric=fabric)  # fmt: skip
            chain = chain.then(layer)
            x_width = d.activation_result.width
        s = ae.score
        n = len(s.outputs)
        score = LatencyCost(
            dsps=n, products=n, adders=2 * n - 1
        )  # n differences, n squares, n - 1 sums
        score.luts = n * ae.term_type.width + (n - 1) * s.score.width
        cycles, _ = _tree_cycles(
            math.ceil(math.log2(max(n, 2))), s.score.width, clock_period_ns, fabric
        )
        score.latency_cycles = 1 + 1 + cycles  # differences, squares (DSP), the sum
        score.ffs = float(n * ae.term_type.width + n * s.square.width + s.score.width)
        chain = chain.then(score)
        total = chain if total is None else total.beside(chain)
    assert total is not None
    total.latency_cycles += 1  # thresholds, regions and trigger bit
    return total
