"""Activations as ``nnet_activation.h`` computes them (io_parallel).

Node kinds and their params:

- ``linear``, ``relu``: none; ``relu_max``: ``max`` (int; relu6/relu1 too);
- ``leaky_relu``, ``thresholded_relu``, ``elu``: ``param`` (mantissa), ``param_type``
  (the literal argument converted to ``param_T``, as the call does);
  ``prelu``: ``alpha`` (mantissas per element), ``param_type``;
- ``lut`` (sigmoid, tanh, softplus, softsign): ``table`` (mantissas), ``table_type``,
  ``divisor``/``offset`` of the index ``int(x * N / divisor) + offset``;
- ``elu``/``selu``: ``table``, ``table_type`` (indexed by ``int(x * N / -8)`` for x < 0);
- ``hard_sigmoid``/``hard_tanh``: ``slope``/``shift`` mantissas and types;
- ``softmax``: ``implementation`` and its tables and types (see :func:`run_softmax`).

``int(fixed)`` truncates towards zero (ap_fixed's ``to_int``), and so does the
ap_fixed division by an integer that precedes it; :func:`lut_index` does both at once.
Products and sums wider than int64 holds are computed in Python integers.
"""

from __future__ import annotations

import numpy as np

from emulation.fixed import FixedType, OverflowCounter, cast, from_float, mantissa_dtype
from emulation.graph import Node
from emulation.layers import tables, widths
from emulation.layers.registry import kernel, reader

# ----------------------------------------------------------------------------- helpers


def trunc_div(num: np.ndarray, den: int) -> np.ndarray:
    """Integer division rounding towards zero (C's ``/``), den > 0."""
    q = np.abs(num) // den
    return np.where(num < 0, -q, q)


def lut_index(m: np.ndarray, t: FixedType, n: int, divisor: int, offset: int,
              counter: OverflowCounter | None = None, name: str = "index") -> np.ndarray:  # fmt: skip
    """``int index = (x * N / divisor) + offset``, clipped to [0, N-1], for mantissas m of type t.

    ``x * N`` is exact, ``/ divisor`` truncates the mantissa towards zero, and ``int``
    truncates the result towards zero again: together one truncating division of
    ``m * N`` by ``divisor * 2**F``. ``int`` then keeps the low 32 bits (ap_fixed's
    ``to_int``), which matters only for types whose quotient can reach 2**31; for all
    others the input is first clipped to where the index saturates anyway, so that the
    product fits int64. ``counter`` counts the indices whose ``int`` wrapped, under ``name``.
    """
    f = t.fractional
    scale_num = n << max(-f, 0)
    den = abs(divisor) << max(f, 0)
    if max(-t.min_int, t.max_int) * scale_num // den + abs(offset) < 2**31:  # the int never wraps
        limit = (abs(divisor) * (n + abs(offset) + 1) << max(f, 0)) // max(
            n, 1
        ) + 1  # |value| beyond: saturated
        dtype = (
            np.dtype(np.int64)
            if limit.bit_length() + scale_num.bit_length() < 62
            else np.dtype(object)
        )
        q = trunc_div(np.clip(widths.widened(m, dtype), -limit, limit) * scale_num, den)
        if divisor < 0:
            q = -q
        if counter is not None:
            counter.record(name, 0, q.size)
    else:
        dtype = widths.holding(widths.Bits(t.width + scale_num.bit_length(), t.integer, True))
        q = trunc_div(widths.widened(m, dtype) * scale_num, den)
        if divisor < 0:
            q = -q
        exact = q
        q = ((q + 2**31) & (2**32 - 1)) - 2**31  # C's int: the low 32 bits, two's complement
        if counter is not None:
            counter.record(name, int(np.count_nonzero(q != exact)), q.size)
    return np.clip(q + offset, 0, n - 1).astype(np.int64, copy=False)


def _n(call) -> int:
    return int(call.const("n_in"))


def _types(call, n_type_args: int = 2) -> tuple[FixedType, FixedType]:
    targs = call.template_args
    return call.type(targs[0]), call.type(targs[n_type_args - 1])


# ----------------------------------------------------------------------------- simple


@reader("linear", "relu", template_args=3, args=2)
def _read_simple(call) -> Node:
    data_t, res_t = _types(call)
    return call.node(call.function, [call.args[0]], call.args[1], [data_t], res_t, _n(call))


@kernel("linear")
def run_linear(node: Node, xs, counter):
    return cast(xs[0], node.input_types[0], node.result_type, counter, node.name)


@kernel("relu")
def run_relu(node: Node, xs, counter):
    return cast(np.maximum(xs[0], 0), node.input_types[0], node.result_type, counter, node.name)


@reader("relu_max", template_args=4, args=2)
@reader("relu6", "relu1", template_args=3, args=2)
def _read_relu_max(call) -> Node:
    data_t, res_t = _types(call)
    if call.function == "relu_max":
        top = int(call.template_args[2])
    else:
        top = 6 if call.function == "relu6" else 1
    return call.node("relu_max", [call.args[0]], call.args[1], [data_t], res_t, _n(call), max=top)


@kernel("relu_max")
def run_relu_max(node: Node, xs, counter):
    """``x < 0 ? 0 : x > MAX ? MAX : x``; MAX is an int assigned to res_T (its modes apply)."""
    x, t = xs[0], node.input_types[0]
    res, top_value, f = node.result_type, node.params["max"], t.fractional
    above = (
        x > (top_value << f)
        if f >= 0
        else (
            widths.widened(x, widths.holding(widths.Bits(t.integer + 1, t.integer + 1, True))) << -f
        )
        > top_value
    )
    y = cast(np.maximum(x, 0), t, res, counter, node.name)
    top = cast(np.array([node.params["max"]]), 0, res)[0]
    return np.where(above, top, y)


# ----------------------------------------------------------------------------- parametrised


def _param_call(call) -> tuple[FixedType, FixedType, FixedType]:
    targs = call.template_args
    if len(targs) == 4:
        return call.type(targs[0]), call.type(targs[1]), call.type(targs[2])
    data_t, res_t = call.type(targs[0]), call.type(targs[1])  # older hls4ml: param_T is data_T
    return data_t, data_t, res_t


@reader("leaky_relu", "thresholded_relu", template_args=(3, 4), args=3)
def _read_leaky(call) -> Node:
    data_t, param_t, res_t = _param_call(call)
    value = from_float(np.array([call.literal(call.args[1])]), param_t)[0]
    return call.node(
        call.function,
        [call.args[0]],
        call.args[2],
        [data_t],
        res_t,
        _n(call),
        param=int(value),
        param_type=param_t,
    )


@kernel("leaky_relu")
def run_leaky_relu(node: Node, xs, counter):
    """``x > 0 ? res_T(x) : res_T(alpha * x)`` with the exact product."""
    x, t = xs[0], node.input_types[0]
    p_t = node.params["param_type"]
    pos = cast(x, t, node.result_type, counter, node.name)
    product = widths.widened(x, widths.holding(widths.product(t, p_t))) * node.params["param"]
    neg = cast(product, t.fractional + p_t.fractional, node.result_type)
    return np.where(x > 0, pos, neg)


@kernel("thresholded_relu")
def run_thresholded_relu(node: Node, xs, counter):
    """``x > theta ? res_T(x) : 0``, the comparison exact across both types."""
    x, t = xs[0], node.input_types[0]
    p_t = node.params["param_type"]
    f = max(t.fractional, p_t.fractional)
    aligned = widths.widened(x, widths.holding(widths.plus(t, p_t))) << (f - t.fractional)
    above = aligned > (node.params["param"] << (f - p_t.fractional))
    return np.where(above, cast(x, t, node.result_type, counter, node.name), 0)


@reader("prelu", template_args=(3, 4), args=3)
def _read_prelu(call) -> Node:
    data_t, param_t, res_t = _param_call(call)
    n = _n(call)
    alpha = call.weights(call.args[1], param_t, n)
    return call.node(
        "prelu", [call.args[0]], call.args[2], [data_t], res_t, n, alpha=alpha, param_type=param_t
    )


@kernel("prelu")
def run_prelu(node: Node, xs, counter):
    x, t = xs[0], node.input_types[0]
    p_t = node.params["param_type"]
    pos = cast(x, t, node.result_type, counter, node.name)
    dtype = widths.holding(widths.product(t, p_t))
    neg = cast(widths.widened(x, dtype) * widths.widened(node.params["alpha"], dtype)[None, :], t.fractional + p_t.fractional,
               node.result_type)  # fmt: skip
    return np.where(x > 0, pos, neg)


# ----------------------------------------------------------------------------- lookup tables

_LUTS = {  # function: (table builder, divisor, offset numerator over 16 / divisor)
    "sigmoid": (tables.sigmoid_table, 16, 8),
    "tanh": (tables.tanh_table, 8, 4),
    "softplus": (tables.softplus_table, 16, 8),
    "softsign": (tables.softsign_table, 16, 8),
}


@reader(*_LUTS, template_args=3, args=2)
def _read_lut(call) -> Node:
    data_t, res_t = _types(call)
    n_table = int(call.const("table_size"))
    table_t = call.type("table_t")
    build, divisor, half = _LUTS[call.function]
    return call.node(
        "lut", [call.args[0]], call.args[1], [data_t], res_t, _n(call),
        function=call.function, table=build(n_table, table_t), table_type=table_t,
        divisor=divisor, offset=half * n_table // divisor,
    )  # fmt: skip


@kernel("lut")
def run_lut(node: Node, xs, counter):
    """``res_T(table[clip(int(x * N / divisor) + offset)])``."""
    p = node.params
    table = p["table"]
    idx = lut_index(
        xs[0],
        node.input_types[0],
        len(table),
        p["divisor"],
        p["offset"],
        counter,
        f"{node.name}.index",
    )
    return cast(table[idx], p["table_type"], node.result_type, counter, node.name)


@reader("elu", template_args=(3, 4), args=(2, 3))
@reader("selu", template_args=3, args=2)
def _read_elu(call) -> Node:
    n_table = int(call.const("table_size"))
    table_t = call.type("table_t")
    if call.function == "selu":
        data_t, res_t = _types(call)
        return call.node("selu", [call.args[0]], call.args[1], [data_t], res_t, _n(call),
                         table=tables.selu_table(n_table, table_t), table_type=table_t)  # fmt: skip
    if len(call.args) == 3:  # elu(data, alpha, res): alpha is param_T (hls4ml 0.x: res_T)
        if len(call.template_args) == 4:
            data_t, param_t, res_t = _param_call(call)
        else:
            data_t, res_t = _types(call)
            param_t = res_t
        alpha = int(from_float(np.array([call.literal(call.args[1])]), param_t)[0])
        out = call.args[2]
    else:  # elu(data, res): alpha = ap_uint<1>(1.0)
        data_t, res_t = _types(call)
        param_t, alpha, out = FixedType(1, 1, False), 1, call.args[1]
    return call.node("elu", [call.args[0]], out, [data_t], res_t, _n(call), param=alpha, param_type=param_t,
                     table=tables.elu_table(n_table, table_t), table_type=table_t)  # fmt: skip


def _negative_index(
    m: np.ndarray, t: FixedType, n: int, counter: OverflowCounter | None, name: str
) -> np.ndarray:
    """``int index = x * N / -8`` for x < 0, clipped to [0, N-1].

    An ``int`` that wraps to a negative index reads outside the table in the C++
    (``elu`` checks only the upper end: undefined behaviour, whatever memory lies before
    the table); such indices are counted under ``{name}.index`` and read entry 0 here.
    """
    return lut_index(m, t, n, -8, 0, counter, f"{name}.index")


@kernel("elu")
def run_elu(node: Node, xs, counter):
    """``x >= 0 ? res_T(x) : res_T(alpha * table[int(x * N / -8)])``."""
    x, t, p = xs[0], node.input_types[0], node.params
    idx = _negative_index(x, t, len(p["table"]), counter, node.name)
    product = (
        widths.widened(
            p["table"][idx], widths.holding(widths.product(p["table_type"], p["param_type"]))
        )
        * p["param"]
    )
    neg = cast(product, p["table_type"].fractional + p["param_type"].fractional, node.result_type)
    return np.where(x >= 0, cast(x, t, node.result_type, counter, node.name), neg)


SELU_LAMBDA_TYPE = FixedType(16, 1, False)


@kernel("selu")
def run_selu(node: Node, xs, counter):
    """``x >= 0 ? res_T(lambda * x) : res_T(table[int(x * N / -8)])``, lambda an ap_ufixed<16,1>."""
    x, t, p = xs[0], node.input_types[0], node.params
    lam = int(from_float(np.array([1.0507009873554805]), SELU_LAMBDA_TYPE)[0])
    idx = _negative_index(x, t, len(p["table"]), counter, node.name)
    pos = cast(
        widths.widened(x, widths.holding(widths.product(t, SELU_LAMBDA_TYPE))) * lam,
        t.fractional + SELU_LAMBDA_TYPE.fractional,
        node.result_type,
        counter,
        node.name,
    )
    return np.where(x >= 0, pos, cast(p["table"][idx], p["table_type"], node.result_type))


# ----------------------------------------------------------------------------- hard sigmoid / tanh


@reader("hard_sigmoid", "hard_tanh", template_args=3, args=2)
def _read_hard(call) -> Node:
    data_t, res_t = _types(call)
    slope_t, slope = call.static_value("slope")
    shift_t, shift = call.static_value("shift")
    return call.node(
        call.function, [call.args[0]], call.args[1], [data_t], res_t, _n(call),
        slope=int(from_float(np.array([slope]), slope_t)[0]), slope_type=slope_t,
        shift=int(from_float(np.array([shift]), shift_t)[0]), shift_type=shift_t,
    )  # fmt: skip


@kernel("hard_sigmoid", "hard_tanh")
def run_hard(node: Node, xs, counter):
    """``auto s = slope * x + shift`` (exact), clipped to [0, 1] in s's own type, then cast.

    hard_tanh returns ``2 * s - 1`` (exact). Assigning 1 to s's type follows that type's
    (default: truncating, wrapping) modes, as in C++.
    """
    x, t, p = xs[0], node.input_types[0], node.params
    prod_t = widths.product(p["slope_type"], t)
    sum_t = widths.plus(prod_t, p["shift_type"])
    f = sum_t.fractional
    x = widths.widened(
        x, widths.holding(widths.Bits(sum_t.width + 1, sum_t.integer + 1, True))
    )  # also 2 * s
    s = (x * p["slope"] << (f - prod_t.fractional)) + (
        p["shift"] << (f - p["shift_type"].fractional)
    )
    one = int(cast(np.array([1]), 0, FixedType(*sum_t))[0])
    s = np.where(s > (1 << f), one, np.where(s < 0, 0, s))
    if node.kind == "hard_tanh":
        s = 2 * s - (1 << f)
    return cast(s, f, node.result_type, counter, node.name)


# ----------------------------------------------------------------------------- softmax


@reader("softmax", "softmax_multidim", template_args=3, args=2)
def _read_softmax(call) -> Node:
    data_t, res_t = _types(call)
    impl = str(call.const("implementation", "latency"))
    n_slice = int(call.const("n_slice", call.const("n_in")))
    n_in = int(call.const("n_in", n_slice))
    params = dict(
        implementation=impl, n_slice=n_slice,
        n_outer=int(call.const("n_outer", 1)) if call.function == "softmax_multidim" else 1,
        n_inner=int(call.const("n_inner", 1)) if call.function == "softmax_multidim" else 1,
    )  # fmt: skip
    n_exp = int(call.const("exp_table_size", call.const("table_size", 1024)))
    n_inv = int(call.const("inv_table_size", call.const("table_size", 1024)))
    if impl in ("latency", "stable"):
        exp_t, inv_t = call.type("exp_table_t"), call.type("inv_table_t")
        accum_t, inv_inp_t = call.type("accum_t"), call.type("inv_inp_t")
        index_t = data_t if impl == "latency" else call.type("inp_norm_t")
        scale = float(call.const("exp_scale", 1.0))
        params.update(
            exp_table=tables.exp_table(n_exp, index_t, scale, exp_t, negative=impl == "stable"), exp_type=exp_t,
            inv_table=tables.invert_table(n_inv, inv_inp_t, inv_t), inv_type=inv_t,
            accum_type=accum_t, inv_inp_type=inv_inp_t, index_type=index_t,
        )  # fmt: skip
    elif impl == "legacy":
        table_t = call.type("table_t")
        params.update(exp_table=tables.exp_table_legacy(n_exp, table_t), inv_table=tables.invert_table_legacy(n_inv, table_t),
                      table_type=table_t)  # fmt: skip
    elif impl != "argmax":
        raise call.fail(
            f"softmax implementation {impl!r} is not one of latency, stable, legacy, argmax"
        )
    n = n_in if call.function == "softmax_multidim" else n_slice
    return call.node("softmax", [call.args[0]], call.args[1], [data_t], res_t, n, **params)


def top_bits(m: np.ndarray, t: FixedType, n: int) -> np.ndarray:
    """``softmax_idx_from_real_val``: the top ceillog2(n) bits of the raw two's-complement word."""
    bits = tables.ceillog2(n)
    if m.dtype == object:  # Python integers: the same bit operations, then a small int64 index
        return ((m & ((1 << t.width) - 1)) >> (t.width - bits)).astype(np.int64) & np.int64(
            (1 << bits) - 1
        )
    raw = m & np.int64((1 << t.width) - 1)
    return (raw >> np.int64(t.width - bits)) & np.int64((1 << bits) - 1)


def tree_sum(cols: list[np.ndarray], f: int, acc_t: FixedType) -> np.ndarray:
    """``nnet::reduce`` with ``Op_add<accum_t>``: balanced tree, every pair sum cast to accum_t."""
    n = len(cols)
    if n == 1:
        return cols[0]
    if n == 2:
        return cast(cols[0] + cols[1], f, acc_t)
    left = 1 << ((n - 1).bit_length() - 1)  # pow2(floorlog2(n - 1))
    return cast(tree_sum(cols[:left], f, acc_t) + tree_sum(cols[left:], f, acc_t), f, acc_t)


def _softmax_slice(
    x: np.ndarray, t: FixedType, node: Node, counter: OverflowCounter | None
) -> np.ndarray:
    p = node.params
    res_t = node.result_type
    impl = p["implementation"]
    n = x.shape[1]
    if impl == "argmax":
        idx = np.argmax(x, axis=1)  # the first maximum, as the strict '>' scan
        one = cast(np.array([1]), 0, res_t)[0]
        out = np.zeros(x.shape, dtype=mantissa_dtype(res_t))
        out[np.arange(len(x)), idx] = one
        return out
    if impl == "legacy":
        table_t = p["table_type"]
        exp_table, inv_table = p["exp_table"], p["inv_table"]
        f = table_t.fractional
        acc = np.zeros(x.shape, dtype=mantissa_dtype(table_t))
        one = cast(np.array([1]), 0, table_t)[0]
        x = widths.widened(x, widths.holding(widths.plus(t, t)))
        for i in range(n):
            for j in range(n):
                if i == j:
                    term = np.full(len(x), one, dtype=acc.dtype)
                else:
                    term = exp_table[
                        lut_index(
                            x[:, j] - x[:, i], t, len(exp_table), 16, 8 * len(exp_table) // 16
                        )
                    ]
                acc[:, i] = cast(acc[:, i] + term, f, table_t)
        idx = lut_index(acc, table_t, len(inv_table), 64, 0)
        return cast(inv_table[idx], table_t, res_t, counter, node.name)
    acc_t, inv_inp_t, index_t = p["accum_type"], p["inv_inp_type"], p["index_type"]
    if impl == "stable":
        x = widths.widened(x, widths.holding(widths.plus(t, t)))
        d = cast(np.max(x, axis=1, keepdims=True) - x, t.fractional, index_t)
    else:
        d = x
    exp_res = cast(p["exp_table"][top_bits(d, index_t, len(p["exp_table"]))], p["exp_type"], acc_t)
    total = tree_sum([exp_res[:, i] for i in range(n)], acc_t.fractional, acc_t)
    total = cast(total, acc_t, inv_inp_t)
    inv = p["inv_table"][top_bits(total, inv_inp_t, len(p["inv_table"]))]
    dtype = widths.holding(widths.product(acc_t, p["inv_type"]))
    return cast(
        widths.widened(exp_res, dtype) * widths.widened(inv, dtype)[:, None],
        acc_t.fractional + p["inv_type"].fractional,
        res_t,
        counter,
        node.name,
    )


@kernel("softmax")
def run_softmax(node: Node, xs, counter):
    """``softmax_{latency,stable,legacy,argmax}`` on each slice (``softmax_multidim``: (outer, slice, inner))."""
    p = node.params
    x, t = xs[0], node.input_types[0]
    outer, n_slice, inner = p["n_outer"], p["n_slice"], p["n_inner"]
    if outer == 1 and inner == 1:
        return _softmax_slice(x, t, node, counter)
    cube = x.reshape(len(x), outer, n_slice, inner).transpose(0, 1, 3, 2).reshape(-1, n_slice)
    out = _softmax_slice(cube, t, node, counter)
    return out.reshape(len(x), outer, inner, n_slice).transpose(0, 1, 3, 2).reshape(len(x), -1)
