"""hls4ml's ``distributed_arithmetic`` layers: dense (``dense_da_<n>``) and conv (``conv1d_cl``/``conv2d_cl``).

The generated C++ (da4ml's functions, ``fill_buffer`` classes) is read and run by
``emulation.layers.da_code``. Two ways to run a layer, decided when it is read:

- when every assignment provably keeps its exact value (the value's range over the input
  type's range lies inside the assigned type, on its grid), the function is an exact linear
  map ``x W + b`` cast to ``out_t`` (:func:`linear_map`): the node is a plain ``dense`` or
  ``conv`` (Latency strategy; ``emulation.layers.dense``/``conv``) with that W and b
  (recovered from the statements, exact dyadic rationals) and an accumulator that holds every
  partial sum, so the dense kernels and the float path run it;
- otherwise (a declaration that wraps or rounds, a ReLU, a multiplexer, a product of two
  values) the node is ``dense_da`` or ``conv_da``, whose kernel executes the statements in
  order, exactly.

The DA conv (``nnet_da_wrappers.h``) fills a buffer per partition with ``fill_buffer`` (an
input index or 0 per pixel and tap) and runs the dense function on each pixel: an im2col
gather (``columns``, as ``emulation.layers.conv``) and the dense arithmetic.

Node kinds ``dense_da`` (params: ``program``, a :class:`~emulation.layers.da_code.DAProgram`)
and ``conv_da`` (``program``, ``columns``); the ``dense``/``conv`` nodes built from DA code
keep their ``program`` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from emulation.fixed import FixedType, OverflowCounter
from emulation.graph import Node
from emulation.layers.conv import gather_patches
from emulation.layers.da_code import DAProgram, Expr, read_fill_buffer, read_program, run_program
from emulation.layers.registry import kernel, reader

if TYPE_CHECKING:
    from emulation.project_graph import LayerCall

__all__ = ["AffineForm", "dense_params", "linear_map"]


# ----------------------------------------------------------------------------- linear map


class _NotLinear(Exception):
    pass


def _frac_bits(r: Fraction) -> int:
    """The fractional bits of a dyadic rational (its denominator's exponent)."""
    d = r.denominator
    if d & (d - 1):
        raise _NotLinear  # not dyadic: never from ap_fixed arithmetic
    return d.bit_length() - 1


@dataclass(frozen=True)
class AffineForm:
    """``sum_k coef[k] * x_k + const``: a value of the DA code as an exact function of its inputs."""

    coef: dict[int, Fraction]  # input index -> coefficient
    const: Fraction

    def scale(self, s: Fraction) -> AffineForm:
        return AffineForm({k: c * s for k, c in self.coef.items() if c * s}, self.const * s)

    def plus(self, other: AffineForm) -> AffineForm:
        coef = dict(self.coef)
        for k, c in other.coef.items():
            coef[k] = coef.get(k, Fraction(0)) + c
        return AffineForm({k: c for k, c in coef.items() if c}, self.const + other.const)


def linear_map(program: DAProgram) -> tuple[list[AffineForm], FixedType] | None:
    """The exact affine forms of the outputs (before the cast into ``out_t``) when every other
    assignment provably keeps its value over the whole range of ``inp_t``; else ``None``.

    Returns the forms and ``inp_t``.
    """
    x_t = program.input_type
    lsb = Fraction(2) ** -x_t.fractional
    x_lo, x_hi = x_t.min_int * lsb, x_t.max_int * lsb

    def lossless(form: AffineForm, t: FixedType) -> bool:
        lo = hi = form.const
        grid = _frac_bits(form.const) if form.const else -(10**9)
        for c in form.coef.values():
            lo += min(c * x_lo, c * x_hi)
            hi += max(c * x_lo, c * x_hi)
            grid = max(grid, _frac_bits(c) + x_t.fractional)
        scale = Fraction(2) ** t.fractional
        return grid <= t.fractional and lo * scale >= t.min_int and hi * scale <= t.max_int

    forms: dict[str, AffineForm] = {}

    def form(e: Expr) -> AffineForm:
        op, args = e.op, e.args
        if op == "in":
            return AffineForm({args[0]: Fraction(1)}, Fraction(0))
        if op == "var":
            return forms[args[0]]
        if op == "const":
            return AffineForm({}, Fraction(args[0]) / Fraction(2) ** e.value_type.fractional)
        if op == "cast":
            inner = form(args[0])
            if not lossless(inner, e.value_type):
                raise _NotLinear
            return inner
        if op == "shift":
            inner_t, t = args[0].value_type, e.value_type
            return form(args[0]).scale(Fraction(2) ** (inner_t.fractional - t.fractional))
        if op == "neg":
            return form(args[0]).scale(Fraction(-1))
        if op == "add":
            return form(args[0]).plus(form(args[1]))
        if op == "mul":
            a, b = form(args[0]), form(args[1])
            if a.coef and b.coef:
                raise _NotLinear
            return b.scale(a.const) if not a.coef else a.scale(b.const)
        raise _NotLinear  # comparisons, bits, selections

    outputs: list[AffineForm | None] = [None] * program.n_out
    try:
        for st in program.statements:
            if st.output >= 0:
                e = st.expr
                inner = (
                    e.args[0] if e.op == "cast" else e
                )  # the cast into out_t stays the dense result cast
                outputs[st.output] = form(inner)
            else:
                forms[st.target] = form(st.expr)  # a cast: checked lossless
    except _NotLinear:
        return None
    assert all(f is not None for f in outputs)
    return [f for f in outputs if f is not None], x_t


def _signed_type(values: list[Fraction]) -> tuple[FixedType, list[int]]:
    """A signed type holding these dyadic values exactly, and their mantissas."""
    frac = max((_frac_bits(v) for v in values if v), default=0)
    mantissas = [int(v * Fraction(2) ** frac) for v in values]
    width = max((abs(m).bit_length() for m in mantissas), default=0) + 1
    return FixedType(width, width - frac, True), mantissas


def dense_params(forms: list[AffineForm], x_t: FixedType, n_in: int) -> dict[str, Any]:
    """``dense`` node params (Latency strategy) computing the forms exactly before the result cast."""
    w_t, w = _signed_type([f.coef.get(i, Fraction(0)) for i in range(n_in) for f in forms])
    b_t, b = _signed_type([f.const for f in forms])
    weight = np.array(w, dtype=object if w_t.width > 61 else np.int64).reshape(n_in, len(forms))
    bias = np.array(b, dtype=object if b_t.width > 61 else np.int64)
    frac = max(x_t.fractional + w_t.fractional, b_t.fractional)
    x_max = max(-x_t.min_int, x_t.max_int)
    column = [sum(abs(int(v)) for v in weight[:, j]) for j in range(len(forms))]
    bound = max(
        ((x_max * c) << (frac - x_t.fractional - w_t.fractional))
        + (abs(int(bj)) << (frac - b_t.fractional))
        for c, bj in zip(column, bias, strict=True)
    )
    integer_and_sign = bound.bit_length() + 1
    acc_t = FixedType(frac + integer_and_sign, integer_and_sign, True)
    return dict(weight_type=w_t, bias=bias, bias_type=b_t, accum_type=acc_t, strategy="latency",
                weight_flat=weight.ravel(), weight=weight)  # fmt: skip


# ----------------------------------------------------------------------------- registration


def _program(
    call: LayerCall, function: str, in_t: FixedType, out_t: FixedType, n_out: int | None, where: str
) -> DAProgram:
    """The DA function ``function`` called with ``in_t``/``out_t`` arrays (its parameters must be those)."""
    if call.firmware is None:
        raise call.fail("the project's firmware directory is unknown")
    program = read_program(call.firmware, function, in_t, out_t, call.resolve_type, n_out, where)
    if (program.input_type, program.result_type) != (in_t, out_t):
        raise ValueError(f"{program.where}: {function} takes {program.input_type} and writes "
                         f"{program.result_type}, its call ({where}) passes {in_t} and {out_t} arrays")  # fmt: skip
    return program


@reader("dense_da_<n>", template_args=2, args=2, config=None)
def _read_dense_da(call: LayerCall) -> Node:
    data_t, res_t = call.type(call.template_args[0]), call.type(call.template_args[1])
    program = _program(call, call.function, data_t, res_t, None, call.where)
    linear = linear_map(program)
    inputs, output = [call.args[0]], call.args[1]
    if linear is not None:
        params = dense_params(*linear, program.n_in)
        return call.node(
            "dense", inputs, output, [data_t], res_t, program.n_out, **params, program=program
        )
    return call.node("dense_da", inputs, output, [data_t], res_t, program.n_out, program=program)


@reader("conv1d_cl", "conv2d_cl", template_args=3, args=2, config=0)
def _read_conv_da(call: LayerCall) -> Node:
    """``nnet_da_wrappers.h``'s conv: per partition, ``fill_buffer`` then ``dense_da`` on each pixel."""
    from emulation.hls_project import split_top_level

    data_t, res_t = call.type(call.template_args[1]), call.type(call.template_args[2])
    c = call.const
    if c("strategy", None) != "distributed_arithmetic":
        raise call.fail(
            "this conv is defined only for the distributed_arithmetic strategy (nnet_da_wrappers.h)"
        )
    height = ("height",) if call.function == "conv2d_cl" else ()
    size = {
        k: int(np.prod([c(f"{k}_{d}") for d in (*height, "width")])) for k in ("in", "out", "filt")
    }
    n_chan, n_filt = int(c("n_chan")), int(c("n_filt"))
    n_part, n_pix = int(c("n_partitions")), int(c("n_pixels"))
    if n_part * n_pix != size["out"]:
        raise call.fail(f"{n_part} partitions of {n_pix} pixels for {size['out']} output pixels")
    da = re.search(r"dense_da\s*=\s*(?:\w+::)*(\w+)\s*<(.*?)>\s*;", call.config_text, re.S)
    fill = re.search(r"using\s+fill_buffer\s*=\s*(?:\w+::)*(\w+)\s*<", call.config_text)
    if da is None or fill is None:
        raise call.fail(
            f"config {call.config_name} names no dense_da function or fill_buffer class"
        )
    da_types = split_top_level(da.group(2))
    if len(da_types) != 2:
        raise call.fail(f"dense_da = {da.group(1)}<{da.group(2)}> needs <inp_t, out_t>")
    in_t, out_t = (call.resolve_type(t, call.config_where) for t in da_types)
    if (in_t, out_t) != (data_t, res_t):  # the wrapper hands its data_T/res_T buffers straight over
        raise call.fail(f"{da.group(1)}<{in_t}, {out_t}> is called on {data_t} data into {res_t}")
    program = _program(call, da.group(1), in_t, out_t, n_filt, call.config_where)
    n_taps = size["filt"] * n_chan
    if program.n_in != n_taps:
        raise call.fail(f"{da.group(1)} takes {program.n_in} inputs, a {n_taps}-tap window")
    assert call.firmware is not None  # _program checked
    columns = read_fill_buffer(
        call.firmware, fill.group(1), (n_part, n_pix, n_taps), size["in"] * n_chan, call.where
    )
    inputs, output, n = [call.args[0]], call.args[1], size["out"] * n_filt
    linear = linear_map(program)
    if linear is not None:
        params = dense_params(*linear, program.n_in)
        return call.node("conv", inputs, output, [data_t], res_t, n, **params, columns=columns, n_filt=n_filt,
                         program=program)  # fmt: skip
    return call.node(
        "conv_da", inputs, output, [data_t], res_t, n, program=program, columns=columns
    )


@kernel("conv_da")
def run_conv_da(node: Node, xs: list[np.ndarray], counter: OverflowCounter | None) -> np.ndarray:
    x = xs[0]
    patches = gather_patches(x, node.params["columns"])
    return run_program(node.params["program"], patches, counter, node.name).reshape(len(x), -1)


@kernel("dense_da")
def run_dense_da(node: Node, xs: list[np.ndarray], counter: OverflowCounter | None) -> np.ndarray:
    return run_program(node.params["program"], xs[0], counter, node.name)
