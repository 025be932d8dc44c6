"""Bit-accurate integer execution of dense/ReLU networks, as hls4ml's C++ computes them.

``dense_latency`` follows ``nnet::dense_latency`` (nnet_dense_latency.h) step by step:

1. ``mult[i][j] = x[i] * w[i][j]``: exact ap_fixed product, assigned to ``accum_t``
   (quantisation and overflow of accum_t apply to every product);
2. ``acc[j] = (accum_t) b[j]``;
3. ``acc[j] += mult[i][j]`` for i = 0..n_in-1 in order: exact sum, assigned back to
   ``accum_t`` each time (saturation happens per step, in this order);
4. ``res[j] = (res_t) acc[j]``.

The same results come out of faster but equivalent arithmetic where it is provably
the same: products are not materialised when accum_t holds them exactly; a wrapping
accumulator is summed once and wrapped once (wrapping is arithmetic mod 2**W); a
saturating one is summed at once for every event whose partial sums cannot leave its
range (bounded by sum |b| + sum |x w|) and step by step for the others. Exact sums
use a float64 matrix product (BLAS) when every partial sum stays below 2**53,
int64 otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from emulation.fixed import FixedType, OverflowCounter, cast, from_float, product_type, to_float
from emulation.hls_project import ActivationLayer, DenseLayer, HLSProject

__all__ = ["EmulationResult", "dense_latency", "emulate_project", "linear", "relu", "run_layers"]

_EXACT_FLOAT = 2**53


def _bound(t: FixedType) -> int:
    return max(abs(t.min_int), abs(t.max_int))


def _exact_matmul(x: np.ndarray, w: np.ndarray, bound: int) -> np.ndarray:
    """x @ w on int64 mantissas, exactly (float64 BLAS when all partial sums < 2**53)."""
    if bound < _EXACT_FLOAT:
        return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x @ w  # int64 arithmetic wraps mod 2**64; callers only use it when exact or wrapping


def dense_latency(
    x: np.ndarray,
    x_type: FixedType,
    weight: np.ndarray,
    weight_type: FixedType,
    bias: np.ndarray | None,
    bias_type: FixedType | None,
    accum_type: FixedType,
    result_type: FixedType,
    counter: OverflowCounter | None = None,
    name: str = "dense",
) -> np.ndarray:
    """One ``nnet::dense_latency`` layer on mantissas: x (N, n_in), weight (n_in, n_out), bias (n_out,).

    Returns result mantissas (N, n_out) of ``result_type``. Overflows are counted under
    ``{name}.product`` (products leaving accum_t), ``{name}.accum`` (sums that saturated
    at least once; for a wrapping accumulator, final sums outside its range) and
    ``{name}.result`` (the cast to result_t).
    """
    x = np.asarray(x, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.int64)
    n_events, n_in = x.shape
    n_out = weight.shape[1]
    acc_t = accum_type
    prod_t = product_type(x_type, weight_type)
    shift = acc_t.fractional - prod_t.fractional  # >= 0: products enter accum_t exactly (if in range)
    if bias is None:
        b = np.zeros(n_out, dtype=np.int64)
    else:
        b = cast(np.asarray(bias, dtype=np.int64), bias_type.fractional, acc_t, counter, f"{name}.bias")

    x_abs_max = int(np.abs(x).max(initial=0))
    w_abs = np.abs(weight)
    prod_max = (x_abs_max * int(w_abs.max(initial=0))) << max(shift, 0)
    nonnegative = acc_t.signed or (x.min(initial=0) >= 0 and weight.min(initial=0) >= 0)
    products_exact = shift >= 0 and prod_max <= acc_t.max_int and nonnegative
    if not products_exact:
        acc = _accumulate(x, weight, b, prod_t, acc_t, counter, name)
        return cast(acc, acc_t.fractional, result_type, counter, f"{name}.result")
    if counter is not None:
        counter.record(f"{name}.product", 0, n_events * n_in * n_out)
    # Every partial sum b_j + sum_{i<=k} x_i w_ij (in accum_t units) is bounded by this:
    sum_bound = ((x_abs_max * int(w_abs.sum(axis=0).max(initial=0))) << shift) + int(np.abs(b).max(initial=0))
    matmul_bound = max(sum_bound >> shift, 1)
    # A signed saturating accumulator never saturates while |partial sum| <= max_int.
    safe_limit = acc_t.max_int if acc_t.signed else -1
    if acc_t.overflow == "AP_WRAP":
        # int64 wraps mod 2**64 beyond 2**63, which wrapping to W <= 61 bits absorbs.
        total = (_exact_matmul(x, weight, matmul_bound) << np.int64(shift)) + b
        acc = cast(total, acc_t.fractional, acc_t, counter, f"{name}.accum")
    elif sum_bound <= safe_limit:
        acc = (_exact_matmul(x, weight, matmul_bound) << np.int64(shift)) + b
        if counter is not None:
            counter.record(f"{name}.accum", 0, acc.size)
    elif sum_bound < 2**62 and acc_t.signed:
        acc = (_exact_matmul(x, weight, matmul_bound) << np.int64(shift)) + b
        abs_sum = (_exact_matmul(np.abs(x), w_abs, matmul_bound) << np.int64(shift)) + np.abs(b)
        risky = np.any(abs_sum > safe_limit, axis=1)
        if counter is not None:
            counter.record(f"{name}.accum", 0, int((~risky).sum()) * n_out)
        if risky.any():
            acc[risky] = _accumulate(x[risky], weight, b, prod_t, acc_t, counter, name)
    else:
        acc = _accumulate(x, weight, b, prod_t, acc_t, counter, name)
    return cast(acc, acc_t.fractional, result_type, counter, f"{name}.result")


def _accumulate(
    x: np.ndarray,
    weight: np.ndarray,
    b: np.ndarray,
    prod_t: FixedType,
    acc_t: FixedType,
    counter: OverflowCounter | None,
    name: str,
) -> np.ndarray:
    """The literal loop: every product cast to accum_t, added in input order, cast back each step.

    ``{name}.accum`` counts the (event, output) sums that saturated or wrapped at least once.
    """
    acc = np.broadcast_to(b, (x.shape[0], weight.shape[1])).copy()
    hit = np.zeros(acc.shape, dtype=bool)
    for i in range(x.shape[1]):
        products = x[:, i : i + 1] * weight[i][None, :]
        exact = acc + cast(products, prod_t.fractional, acc_t, counter, f"{name}.product")
        acc = cast(exact, acc_t.fractional, acc_t)
        hit |= acc != exact
    if counter is not None:
        counter.record(f"{name}.accum", int(hit.sum()), hit.size)
    return acc


def relu(
    x: np.ndarray, x_type: FixedType, result_type: FixedType, counter: OverflowCounter | None = None, name: str = "relu"
) -> np.ndarray:
    """``nnet::relu``: ``res = x > 0 ? (res_t) x : 0``."""
    x = np.asarray(x, dtype=np.int64)
    return cast(np.where(x > 0, x, 0), x_type.fractional, result_type, counter, name)


def linear(
    x: np.ndarray, x_type: FixedType, result_type: FixedType, counter: OverflowCounter | None = None, name: str = "linear"
) -> np.ndarray:
    """``nnet::linear``: ``res = (res_t) x``."""
    return cast(np.asarray(x, dtype=np.int64), x_type.fractional, result_type, counter, name)


def run_layers(
    project: HLSProject, x_mantissa: np.ndarray, counter: OverflowCounter | None = None
) -> np.ndarray:
    """Run the project's layers on input mantissas (N, n_inputs) of its input type."""
    h, t = np.asarray(x_mantissa, dtype=np.int64), project.input_type
    for layer in project.layers:
        if isinstance(layer, DenseLayer):
            h = dense_latency(
                h, t, layer.weight, layer.weight_type, layer.bias, layer.bias_type,
                layer.accum_type, layer.result_type, counter, layer.name,
            )  # fmt: skip
        elif isinstance(layer, ActivationLayer):
            fn = relu if layer.kind == "relu" else linear
            h = fn(h, t, layer.result_type, counter, layer.name)
        else:  # pragma: no cover - the loader only builds these two
            raise TypeError(layer)
        t = layer.result_type
    return h


@dataclass
class EmulationResult:
    outputs: np.ndarray  # float64, exact fixed-point values
    mantissas: np.ndarray  # int64 mantissas of the output type
    overflows: OverflowCounter
    seconds: float

    @property
    def events_per_s(self) -> float:
        return len(self.outputs) / self.seconds if self.seconds > 0 else float("inf")


def emulate_project(
    project: HLSProject,
    inputs: np.ndarray,
    chunk_size: int = 65536,
    progress: Callable[[int], None] | None = None,
) -> EmulationResult:
    """Emulate the project on float inputs (N, n_inputs), cast to input_t as the C simulation does.

    ``progress(n)`` is called after every chunk with the number of events done in it.
    """
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim == 1 and project.n_inputs == x.size:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != project.n_inputs:
        raise ValueError(f"inputs have shape {np.shape(inputs)}, the project expects (N, {project.n_inputs})")
    counter = OverflowCounter()
    out = np.empty((len(x), project.n_outputs), dtype=np.int64)
    start = time.perf_counter()
    for lo in range(0, len(x), chunk_size):
        xm = from_float(x[lo : lo + chunk_size], project.input_type, counter, "input")
        out[lo : lo + chunk_size] = run_layers(project, xm, counter)
        if progress is not None:
            progress(len(xm))
    seconds = time.perf_counter() - start
    return EmulationResult(to_float(out, project.output_type), out, counter, seconds)
