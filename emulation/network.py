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
int64 otherwise. This is the integer reference; ``emulation.float_path`` carries whole
graphs in float32/float64 where the types prove it exact.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emulation.fixed import (
    FixedType,
    OverflowCounter,
    cast,
    from_float,
    mantissa_dtype,
    product_type,
    to_float,
)
from emulation.float_path import compile_project, namespace
from emulation.hls_project import ActivationLayer, DenseLayer, HLSProject

__all__ = ["EmulationResult", "dense_latency", "emulate_project", "linear", "relu", "run_layers"]

_EXACT_FLOAT = 2**53


def _bound(t: FixedType) -> int:
    return max(abs(t.min_int), abs(t.max_int))


def _exact_sum(x: np.ndarray, w: np.ndarray, shift: int, b: np.ndarray, bound: int) -> np.ndarray:
    """(x @ w) << shift + b on int64 mantissas, exactly; ``bound`` bounds |every partial result|.

    float64 BLAS when everything stays below 2**53 (integers are exact there, in any
    summation order); int64 otherwise (wrapping mod 2**64 only where callers wrap anyway).
    """
    if bound < _EXACT_FLOAT:
        y = x.astype(np.float64) @ w.astype(np.float64)
        if shift:
            y *= 2.0**shift
        y += b
        return y.astype(np.int64)
    return ((x @ w) << np.int64(shift)) + b


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
    if bias is not None and bias_type is None:
        raise ValueError(f"{name}: a bias needs its bias_type")
    types = [x_type, weight_type, product_type(x_type, weight_type), accum_type, result_type]
    if bias is not None and bias_type is not None:
        types.append(bias_type)
    if mantissa_dtype(*types) != np.int64:
        # Some type is wider than int64 carries: Python integers and the literal loop, exact.
        x, weight = np.asarray(x).astype(object), np.asarray(weight).astype(object)
        b = np.zeros(weight.shape[1], dtype=object)
        if bias is not None and bias_type is not None:
            b = cast(np.asarray(bias), bias_type, accum_type, counter, f"{name}.bias").astype(
                object
            )
        acc = _accumulate(
            x, weight, b, product_type(x_type, weight_type), accum_type, counter, name
        )
        return cast(acc, accum_type, result_type, counter, f"{name}.result")
    x = np.asarray(x, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.int64)
    n_events, n_in = x.shape
    n_out = weight.shape[1]
    acc_t = accum_type
    prod_t = product_type(x_type, weight_type)
    shift = (
        acc_t.fractional - prod_t.fractional
    )  # >= 0: products enter accum_t exactly (if in range)
    if bias is None or bias_type is None:  # both or neither (checked above)
        b = np.zeros(n_out, dtype=np.int64)
    else:
        b = cast(np.asarray(bias, dtype=np.int64), bias_type, acc_t, counter, f"{name}.bias")

    x_abs_max = max(abs(int(x.max(initial=0))), abs(int(x.min(initial=0))))
    w_abs = np.abs(weight)
    prod_max = (x_abs_max * int(w_abs.max(initial=0))) << max(shift, 0)
    nonnegative = acc_t.signed or (x.min(initial=0) >= 0 and weight.min(initial=0) >= 0)
    products_exact = shift >= 0 and prod_max <= acc_t.max_int and nonnegative
    if not products_exact:
        acc = _accumulate(x, weight, b, prod_t, acc_t, counter, name)
        return cast(acc, acc_t, result_type, counter, f"{name}.result")
    if counter is not None:
        counter.record(f"{name}.product", 0, n_events * n_in * n_out)
    # Every partial sum b_j + sum_{i<=k} x_i w_ij (in accum_t units) is bounded by this:
    sum_bound = ((x_abs_max * int(w_abs.sum(axis=0).max(initial=0))) << shift) + int(
        np.abs(b).max(initial=0)
    )
    # A signed accumulator never overflows while |partial sum| <= max_int.
    safe_limit = acc_t.max_int if acc_t.signed else -1
    if sum_bound <= safe_limit:
        acc = _exact_sum(x, weight, shift, b, sum_bound)
        if counter is not None:
            counter.record(f"{name}.accum", 0, acc.size)
    elif acc_t.overflow == "AP_WRAP":
        # int64 wraps mod 2**64 beyond 2**63, which wrapping to W <= 61 bits absorbs.
        acc = cast(
            _exact_sum(x, weight, shift, b, sum_bound),
            acc_t.fractional,
            acc_t,
            counter,
            f"{name}.accum",
        )
    elif sum_bound < 2**62 and acc_t.signed:
        acc = _exact_sum(x, weight, shift, b, sum_bound)
        abs_sum = _exact_sum(np.abs(x), w_abs, shift, np.abs(b), sum_bound)
        risky = np.any(abs_sum > safe_limit, axis=1)
        if counter is not None:
            counter.record(f"{name}.accum", 0, int((~risky).sum()) * n_out)
        if risky.any():
            acc[risky] = _accumulate(x[risky], weight, b, prod_t, acc_t, counter, name)
    else:
        acc = _accumulate(x, weight, b, prod_t, acc_t, counter, name)
    return cast(acc, acc_t, result_type, counter, f"{name}.result")


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
        exact = acc + cast(products, prod_t, acc_t, counter, f"{name}.product")
        acc = cast(exact, acc_t.fractional, acc_t)
        hit |= acc != exact
    if counter is not None:
        counter.record(f"{name}.accum", int(hit.sum()), hit.size)
    return acc


def relu(
    x: np.ndarray,
    x_type: FixedType,
    result_type: FixedType,
    counter: OverflowCounter | None = None,
    name: str = "relu",
) -> np.ndarray:
    """``nnet::relu``: ``res = x > 0 ? (res_t) x : 0``."""
    return cast(np.maximum(np.asarray(x), 0), x_type, result_type, counter, name)


def linear(
    x: np.ndarray,
    x_type: FixedType,
    result_type: FixedType,
    counter: OverflowCounter | None = None,
    name: str = "linear",
) -> np.ndarray:
    """``nnet::linear``: ``res = (res_t) x``."""
    return cast(np.asarray(x), x_type, result_type, counter, name)


def run_layers(
    project: HLSProject, x_mantissa: np.ndarray, counter: OverflowCounter | None = None
) -> np.ndarray:
    """Run the project's layers on input mantissas (N, n_inputs) of its input type."""
    h, t = np.asarray(x_mantissa), project.input_type
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
    outputs: np.ndarray  # float64, the exact fixed-point values
    output_type: FixedType
    overflows: OverflowCounter
    seconds: float

    @property
    def mantissas(self) -> np.ndarray:
        return from_float(self.outputs, self.output_type)

    @property
    def events_per_s(self) -> float:
        return len(self.outputs) / self.seconds if self.seconds > 0 else float("inf")


def _split(x: np.ndarray, project: HLSProject) -> list[np.ndarray]:
    """The concatenated input columns, one block per graph input."""
    assert project.graph is not None
    bounds = np.cumsum([p.size for p in project.graph.inputs])[:-1]
    return np.split(x, bounds, axis=1)


@functools.cache
def keep_freed_memory() -> bool:
    """Stop glibc from handing each chunk's freed temporaries back to the OS (once, process-wide).

    Why: by default glibc unmaps or trims freed megabyte blocks at once, so every chunk's
    temporaries are page-faulted in afresh; measured here that is half the emulator's
    time. Raising the mmap (32 MiB, glibc's maximum) and trim (64 MiB) thresholds keeps
    up to that much freed memory for reuse. Returns False where this is not glibc.
    """
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(
        libc.mallopt(m_trim_threshold, 64 << 20)
    )


def emulate_project(
    project: HLSProject,
    inputs: np.ndarray,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    float_path: bool = True,
    device: str | None = None,
) -> EmulationResult:
    """Emulate the project on float inputs (N, n_inputs), cast to input_t as the C simulation does.

    Events are independent: chunks (by default sized so that every intermediate array stays
    in cache: ``FloatGraph.chunk_size``; 4096 on the integer path) run on ``workers`` threads (numpy releases the GIL; more than one pays off on
    an idle multi-core machine, not on a loaded one). ``float_path=False`` forces the
    integer path even where ``emulation.float_path`` applies (same results). ``device``:
    None runs the float path on numpy; "cpu"/"cuda" on torch there; "auto" on CUDA when
    present (``emulation.float_path.namespace``).
    ``progress(n)`` is called after every chunk with the number of events done in it.
    """
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim == 1 and project.n_inputs == x.size:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != project.n_inputs:
        raise ValueError(
            f"inputs have shape {np.shape(inputs)}, the project expects (N, {project.n_inputs})"
        )
    outputs = np.empty((len(x), project.n_outputs), dtype=np.float64)
    keep_freed_memory()
    program = compile_project(project) if float_path else None
    if chunk_size is None:
        chunk_size = program.chunk_size() if program is not None else 4096
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    starts = list(range(0, len(x), chunk_size))
    xp = namespace(device)

    def work(lo: int) -> OverflowCounter:
        counter = OverflowCounter()
        xs = x[lo : lo + chunk_size]
        if (
            program is not None
        ):  # integers carried in float32/float64 where provably exact (emulation.float_path)
            ys = program.emulate(
                _split(xs, project) if project.graph is not None else [xs], counter, xp
            )
            outputs[lo : lo + chunk_size] = ys[0] if len(ys) == 1 else np.concatenate(ys, axis=1)
            return counter
        if project.graph is not None:  # any layer graph, integer kernels: emulation.graph
            outputs[lo : lo + chunk_size] = np.concatenate(
                project.graph.emulate(_split(xs, project), counter), axis=1
            )
            return counter
        xm = from_float(xs, project.input_type, counter, "input")
        outputs[lo : lo + chunk_size] = to_float(
            run_layers(project, xm, counter), project.output_type
        )
        return counter

    start = time.perf_counter()
    total = OverflowCounter()
    if workers <= 1 or len(starts) < 2:
        chunks = map(work, starts)
        for lo, counter in zip(starts, chunks, strict=True):
            total.merge(counter)
            if progress is not None:
                progress(min(chunk_size, len(x) - lo))
    else:
        with ThreadPoolExecutor(workers) as pool:
            for lo, counter in zip(starts, pool.map(work, starts), strict=True):
                total.merge(counter)
                if progress is not None:
                    progress(min(chunk_size, len(x) - lo))
    seconds = time.perf_counter() - start
    return EmulationResult(outputs, project.output_type, total, seconds)
