"""``nnet::dense`` with the Latency or the Resource strategy (any reuse factor).

Params: ``weight`` (n_in, n_out) mantissas for the latency order, ``weight_flat`` (the
array as the C code indexes it), ``weight_type``, ``bias``, ``bias_type``,
``accum_type``, ``strategy`` ("latency" or "resource") and, for Resource, ``schedule``:
the order in which ``nnet_dense_resource.h`` adds the products (see :func:`resource_schedule`).

Every product is cast to accum_t on its own in both strategies, so the order of the
additions matters only when accum_t saturates: a wrapping accumulator is arithmetic
modulo 2**W, and one that provably never leaves its range is exact (``order_free``,
decided when the layer is read). In those cases the Resource layer runs as
``emulation.network.dense_latency`` on the same matrix; otherwise the additions run one
by one in the C code's order. Products wider than int64 holds are Python integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from emulation.fixed import FixedType, cast
from emulation.graph import Node
from emulation.hls_project import dense_strategy
from emulation.layers import widths
from emulation.layers.registry import kernel, reader


@dataclass(frozen=True)
class ResourceSchedule:
    """Rounds of products ``(data index, flat weight index, output)``; ``grouped`` rounds add into
    a zeroed ``mult[]`` first and then ``acc[j] += mult[j]`` (``dense_resource_rf_gt_nin``)."""

    rounds: tuple[tuple[tuple[int, int, int], ...], ...]
    grouped: bool


def resource_schedule(
    n_in: int, n_out: int, rf: int, variant: str | None = None
) -> ResourceSchedule:
    """The index sequence of ``dense_resource`` (nnet_dense_resource.h), loop for loop."""
    if variant is None:
        variant = (
            "rf_leq_nin" if rf <= n_in else "rf_gt_nin_rem0" if rf % n_in == 0 else "rf_gt_nin"
        )
    n = n_in * n_out
    block = -(-n // rf)
    rounds = []
    if variant == "rf_leq_nin":
        multfactor = min(n_in, rf)
        multscale = (-(-n // multfactor)) // n_out
        for ir in range(rf):
            w, i, j, step, ops = ir, ir, 0, 0, []
            for _ in range(block):
                ops.append((i, w, j))
                w += rf
                i += rf
                if i >= n_in:
                    i = ir
                if step + 1 >= multscale:
                    step, j = 0, j + 1
                else:
                    step += 1
            rounds.append(tuple(ops))
        return ResourceSchedule(tuple(rounds), grouped=False)
    if variant == "rf_gt_nin_rem0":
        rf = min(rf, n)
        block = -(-n // rf)
        outscale = rf // n_in
        outidx, outstep = [], 0
        for ir in range(rf):
            outidx.append(outstep)
            if (ir + 1) % n_in == 0:
                outstep += 1
        i = 0
        for ir in range(rf):
            w, j, ops = ir, outidx[ir], []
            for _ in range(block):
                ops.append((i, w, j))
                w += rf
                if w >= n:
                    break
                j += outscale
            rounds.append(tuple(ops))
            i = 0 if i + 1 >= n_in else i + 1
        return ResourceSchedule(tuple(rounds), grouped=False)
    multfactor = min(n_in, rf)
    limit = -(-n // multfactor)
    for ir in range(rf):
        ops = []
        for im in range(block):
            w = ir + rf * im
            if w >= n or w // multfactor >= limit:
                continue
            ops.append((w % n_in, w, w // multfactor))
        rounds.append(tuple(ops))
    return ResourceSchedule(tuple(rounds), grouped=True)


_KERNELS = {
    "DenseLatency": ("latency", None),
    "DenseResource_rf_leq_nin": ("resource", "rf_leq_nin"),
    "DenseResource_rf_gt_nin_rem0": ("resource", "rf_gt_nin_rem0"),
    "DenseResource_rf_gt_nin": ("resource", "rf_gt_nin"),
}


@reader("dense", "dense_latency", "dense_resource", template_args=3, args=4)
def _read_dense(call) -> Node:
    targs = call.template_args
    data_t, res_t = call.type(targs[0]), call.type(targs[1])
    if len(call.args) != 4:
        raise call.fail("expected (input, output, weights, biases)")
    n_in, n_out = int(call.const("n_in")), int(call.const("n_out"))
    body = call.text
    product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)", body)
    if product is not None and product.group(1) != "mult":
        raise call.fail(f"product {product.group(1)} is not supported (only nnet::product::mult)")
    variant = None
    if call.function == "dense_latency":
        strategy = "latency"
    elif call.function == "dense_resource":
        strategy = "resource"
    else:  # the config's kernel typedef (hls4ml 1.x) or strategy constant (0.x), as nnet_dense.h dispatches
        strategy = dense_strategy(call.config_name, call.config_text, call.config_constants, call.nnet_dense,
                                  call.config_where)  # fmt: skip
        if strategy not in ("latency", "resource"):
            raise call.fail(f"dense kernel {strategy} is not supported (Latency and Resource are)")
        alias = re.search(r"using\s+kernel\s*=\s*([\w:]+)", call.config_text)
        if alias is not None and alias.group(1).split("::")[-1] in _KERNELS:
            variant = _KERNELS[alias.group(1).split("::")[-1]][1]
    w_t, b_t, acc_t = call.type("weight_t"), call.type("bias_t"), call.type("accum_t")
    flat = call.weights(call.args[2], w_t, n_in * n_out)
    bias = call.weights(call.args[3], b_t, n_out)
    params = dict(
        weight_type=w_t,
        bias=bias,
        bias_type=b_t,
        accum_type=acc_t,
        strategy=strategy,
        weight_flat=flat,
    )
    if strategy == "latency":
        params["weight"] = flat.reshape(n_in, n_out)
    else:
        rf = int(call.const("reuse_factor", 1))
        params.update(resource_params(flat, n_in, n_out, rf, variant, call.fail))
        params["order_free"] = cannot_saturate(data_t, params["weight"], w_t, bias, b_t, acc_t)
    return call.node("dense", [call.args[0]], call.args[1], [data_t], res_t, n_out, **params)


def cannot_saturate(
    x_t: FixedType,
    weight: np.ndarray,
    w_t: FixedType,
    bias: np.ndarray,
    b_t: FixedType,
    acc_t: FixedType,
) -> bool:
    """Whether no partial sum of any order can leave accum_t (or accum_t wraps): order-free."""
    if acc_t.overflow == "AP_WRAP":
        return True
    prod_t = widths.product(x_t, w_t)
    shift = acc_t.fractional - prod_t.fractional
    if shift < 0:
        return False  # rounded products: bound them loosely, use the ordered loop
    x_max = max(-x_t.min_int, x_t.max_int)
    b = np.abs(bias).astype(object) * (1 << max(acc_t.fractional - b_t.fractional, 0))
    column = np.abs(np.asarray(weight).astype(object)).sum(
        axis=0
    )  # Python integers: no sum overflows
    bound = int(b.max(initial=0)) + ((x_max * int(column.max(initial=0))) << shift)
    return bound <= acc_t.max_int and acc_t.signed


@kernel("dense")
def run_dense(node: Node, xs, counter):
    return dense_apply(
        xs[0], node.input_types[0], node.params, node.result_type, node.size, counter, node.name
    )


def dense_apply(
    x: np.ndarray, x_t: FixedType, p, result_type: FixedType, n_out: int, counter, name: str
) -> np.ndarray:
    """A dense layer's arithmetic (params as documented above) on mantissas x (N, n_in)."""
    from emulation.network import dense_latency

    args = (
        p["weight_type"],
        p["bias"],
        p["bias_type"],
        p["accum_type"],
        result_type,
        counter,
        name,
    )
    if p["strategy"] == "latency" or p["order_free"]:
        return dense_latency(x, x_t, p["weight"], *args)
    return _resource_loop(x, x_t, p, result_type, n_out)


def _resource_loop(
    x: np.ndarray, x_t: FixedType, p, result_type: FixedType, n_out: int
) -> np.ndarray:
    """The additions of ``dense_resource`` one by one, each cast to accum_t."""
    acc_t: FixedType = p["accum_type"]
    prod_t = widths.product(x_t, p["weight_type"])
    pf = prod_t.fractional
    dtype = widths.holding(prod_t)
    x, flat = widths.widened(x, dtype), widths.widened(p["weight_flat"], dtype)
    acc = np.broadcast_to(cast(p["bias"], p["bias_type"], acc_t), (len(x), n_out)).copy()
    schedule: ResourceSchedule = p["schedule"]
    for ops in schedule.rounds:
        target = np.zeros_like(acc) if schedule.grouped else acc
        for i, w, j in ops:
            target[:, j] = cast(
                target[:, j] + cast(x[:, i] * flat[w], pf, acc_t), acc_t.fractional, acc_t
            )
        if schedule.grouped:
            acc = cast(acc + target, acc_t.fractional, acc_t)
    return cast(acc, acc_t, result_type)


def resource_params(
    flat: np.ndarray, n_in: int, n_out: int, rf: int, variant: str | None, fail
) -> dict:
    """``weight`` (n_in, n_out) and ``schedule`` of a Resource layer from the flat weight array."""
    schedule = resource_schedule(n_in, n_out, rf, variant)
    weight = np.zeros((n_in, n_out), dtype=flat.dtype)
    seen = np.zeros((n_in, n_out), dtype=np.int64)
    for ops in schedule.rounds:
        for i, w, j in ops:
            weight[i, j] = flat[w]
            seen[i, j] += 1
    if not np.all(seen == 1):
        raise fail(
            f"reuse factor {rf} does not visit every weight once (n_in={n_in}, n_out={n_out})"
        )
    return dict(weight=weight, schedule=schedule, reuse_factor=rf)
