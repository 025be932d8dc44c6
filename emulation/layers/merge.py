"""Merge layers as ``nnet_merge.h`` computes them (io_parallel).

Kinds: ``add``, ``subtract``, ``multiply``, ``average``, ``maximum``, ``minimum``
(element ``i`` reads ``data1[i % n_elem1]`` and ``data2[i % n_elem2]``; the exact
result is cast to res_T once), ``dot1d`` (products and a running sum in ``accum_t``,
params ``accum_type``) and ``concatenate`` (params ``shape1``, ``shape2``, ``axis``).
Exact results wider than int64 holds are computed in Python integers.
"""

from __future__ import annotations

import numpy as np

from emulation.fixed import FixedType, cast, mantissa_dtype
from emulation.graph import Node
from emulation.layers import widths
from emulation.layers.registry import kernel, reader

_ELEMENTWISE = ("add", "subtract", "multiply", "average", "maximum", "minimum")


@reader(*_ELEMENTWISE, template_args=4, args=3)
def _read_elementwise(call) -> Node:
    t1, t2, res_t = (call.type(a) for a in call.template_args[:3])
    n = int(call.const("n_elem"))
    n1, n2 = int(call.const("n_elem1", n)), int(call.const("n_elem2", n))
    return call.node(
        call.function, call.args[:2], call.args[2], [t1, t2], res_t, n, n_elem1=n1, n_elem2=n2
    )


def _aligned(
    a: np.ndarray, ta: FixedType, b: np.ndarray, tb: FixedType
) -> tuple[np.ndarray, np.ndarray, int]:
    """Both operands in the finer of their two LSBs (exact)."""
    f = max(ta.fractional, tb.fractional)
    return a << np.int64(f - ta.fractional), b << np.int64(f - tb.fractional), f


@kernel(*_ELEMENTWISE)
def run_elementwise(node: Node, xs, counter):
    n = node.size
    a = xs[0][:, np.arange(n) % node.params["n_elem1"]]
    b = xs[1][:, np.arange(n) % node.params["n_elem2"]]
    ta, tb = node.input_types
    res = node.result_type
    # the exact result (and, for maximum/minimum, both operands in the finer LSB) fits this
    dtype = widths.holding(
        widths.product(ta, tb) if node.kind == "multiply" else widths.plus(ta, tb)
    )
    a, b = widths.widened(a, dtype), widths.widened(b, dtype)
    if node.kind == "multiply":
        return cast(a * b, ta.fractional + tb.fractional, res, counter, node.name)
    if node.kind in ("maximum", "minimum"):
        pa, pb, _ = _aligned(a, ta, b, tb)
        first = pa > pb if node.kind == "maximum" else pa < pb
        return np.where(first, cast(a, ta, res, counter, node.name), cast(b, tb, res))
    pa, pb, f = _aligned(a, ta, b, tb)
    if node.kind == "add":
        return cast(pa + pb, f, res, counter, node.name)
    if node.kind == "subtract":
        return cast(pa - pb, f, res, counter, node.name)
    return cast(pa + pb, f + 1, res, counter, node.name)  # average: (a + b) * ap_ufixed<1,0>(0.5)


@reader("dot1d", template_args=4, args=3)
def _read_dot(call) -> Node:
    t1, t2, res_t = (call.type(a) for a in call.template_args[:3])
    n_in = int(call.const("n_in"))
    return call.node("dot1d", call.args[:2], call.args[2], [t1, t2], res_t, int(call.const("n_out", 1)),
                     n_in=n_in, accum_type=call.type("accum_t"))  # fmt: skip


@kernel("dot1d")
def run_dot1d(node: Node, xs, counter):
    """``mult[i] = accum_t(a[i] * b[i])``; ``acc = 0; acc += mult[i]`` in order (accum_t each step)."""
    ta, tb = node.input_types
    acc_t: FixedType = node.params["accum_type"]
    prod_t = widths.product(ta, tb)
    pf = prod_t.fractional
    a, b = (widths.widened(x, widths.holding(prod_t)) for x in xs)
    acc = np.zeros(len(a), dtype=mantissa_dtype(acc_t))
    for i in range(node.params["n_in"]):
        mult = cast(a[:, i] * b[:, i], pf, acc_t, counter, f"{node.name}.product")
        acc = cast(acc + mult, acc_t.fractional, acc_t, counter, f"{node.name}.accum")
    return cast(acc[:, None], acc_t, node.result_type, counter, node.name)


@reader("concatenate1d", "concatenate2d", "concatenate3d", template_args=4, args=3)
def _read_concat(call) -> Node:
    t1, t2, res_t = (call.type(a) for a in call.template_args[:3])
    dims = int(call.function[-2])
    shape1 = tuple(int(call.const(f"n_elem1_{k}")) for k in range(dims))
    shape2 = tuple(int(call.const(f"n_elem2_{k}")) for k in range(dims))
    axis = int(call.const("axis", -1))
    # nnet_merge.h: the last axis for -1 or the rank (the batch axis counts in Keras numbering),
    # the middle one of three for 2 or -2, otherwise the first.
    if dims == 1 or axis in (-1, dims):
        along = dims - 1
    elif dims == 3 and axis in (2, -2):
        along = 1
    else:
        along = 0
    size = int(np.prod(shape1)) + int(np.prod(shape2))
    return call.node("concatenate", call.args[:2], call.args[2], [t1, t2], res_t, size,
                     shape1=shape1, shape2=shape2, axis=along)  # fmt: skip


@kernel("concatenate")
def run_concatenate(node: Node, xs, counter):
    p = node.params
    n = len(xs[0])
    a = cast(xs[0], node.input_types[0], node.result_type, counter, node.name).reshape(
        n, *p["shape1"]
    )
    b = cast(xs[1], node.input_types[1], node.result_type, counter, node.name).reshape(
        n, *p["shape2"]
    )
    return np.concatenate([a, b], axis=1 + p["axis"]).reshape(n, -1)
