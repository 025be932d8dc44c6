"""The integer arithmetic of a fixed-point graph carried exactly in float32 or float64: the fast path.

Why it is exact. A float with a p-bit significand (p = 24 for float32, 53 for float64)
represents every number ``k * 2**e`` with integer ``|k| < 2**p`` (within the exponent
range, which mantissas of hardware types never leave). IEEE arithmetic rounds the exact
result of each operation, so an operation whose exact result is representable returns
it unchanged. Hence:

- **Sums in any order.** If every term ``x_i * w_ij`` is a multiple of ``2**e`` and
  ``sum_i |x_i * w_ij| < 2**(p + e)``, then every partial sum *of any subset of the terms*
  is a representable multiple of ``2**e``: a BLAS matrix product (any blocking,
  vectorisation, FMA or thread split; no Strassen, and on CUDA no TF32) returns the exact
  sum. The per-layer bound used is ``B = max|x| * max_j sum_i |w_ij| * 2**shift + max|b|``
  in accumulator LSBs (``max|x|`` from the input type, ``shift`` from the product's LSB to
  the accumulator's), plus the rounding offset below; the layer runs in float32 when every
  such quantity (also ``max|x|``, ``max|w|`` and every value below) is below ``2**24``, in
  float64 below ``2**53``, and on the int64 kernels (``emulation.layers``) otherwise.
- **Casts.** Scaling by a power of two is exact; ``floor``/``ceil``/``trunc``/``rint`` of a
  representable number are exact (``rint`` and ``torch.round`` round half to even);
  adding the ±1/2 of a rounding mode to ``m * 2**-sh`` is exact while
  ``|m| + 2**(sh-1) < 2**p``; comparisons with and clipping to the type's bounds, and
  wrapping (``y - 2**W * floor((y - lo) / 2**W)``) are exact while the
  integers involved stay below ``2**p``. Every cast is compiled into these steps with the
  magnitude of each intermediate bounded from the static value ranges, so the choice of
  float32, float64 or integers is made per layer, once.
- **Fusions that are identities.** The accumulator never overflows when ``B`` fits it (then
  the sum is one matrix product); scales and the rounding offset of the result cast move
  into the weights and bias (``floor(x @ (w * s) + (b * s + 1/2))``, exact by the same
  bound); ReLU moves past scaling and rounding (monotone, 0 -> 0) and into a saturating
  clip (``clip(max(r, 0), lo, hi) = clip(r, max(lo, 0), hi)``), and a cast whose source
  range lies inside the destination is a scale (or nothing). A conv is one matrix product
  per segment of output pixels (zeros where a tap does not apply, the bias as a product
  with a column of ones: the same terms, the same bound); max pooling is a maximum of exact
  values, and a product's casts, when monotone (no wrapping), run after the max pooling that
  alone reads it (``max(c(a), c(b)) = c(max(a, b))``; ``_monotone``).

Which nodes run here: dense and conv (Latency, and Resource when ``B`` rules out
saturation, so that the order of the additions does not matter), relu and linear (fused
into the dense/conv they follow when only it reads them), transpose/zero-padding gathers and
max pooling; every other node runs on its integer kernel, in between.

Overflow counts (``OverflowCounter``) are the integer path's, name for name; a cast proven
not to overflow records zeros without looking at the data.

One implementation serves numpy and torch (CPU or CUDA): the steps are written over
:class:`Numpy` / :class:`Torch`, two small namespaces of the in-place operations they need
(the array API standard has no ``out=``, and the passes are memory-bound).
:class:`FloatGraph` compiles a :class:`emulation.graph.Graph`; nodes it cannot prove run on
their integer kernels between float nodes. The integer path (``Graph.run``) is the
reference these equal (tests/test_emulation_float_path.py).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from emulation.fixed import (
    FixedType,
    OverflowCounter,
    _ap_int_from_double,
    _bounds,
    from_float,
    to_float,
)
from emulation.graph import Graph, Node

__all__ = [
    "FLOAT_BITS",
    "MAX_FLOAT_WIDTH",
    "NUMPY",
    "FloatGraph",
    "Numpy",
    "Torch",
    "apply_ops",
    "cast_float",
    "cast_ops",
    "compile_project",
    "float_ok",
    "from_float_exact",
    "namespace",
]

MAX_FLOAT_WIDTH = 52  # widest type whose casts float64 carries exactly (see the module docstring)
FLOAT_BITS = {"float32": 24, "float64": 53}  # significand bits p


# ----------------------------------------------------------------------------- array namespaces


class Numpy:
    """The in-place operations the float path needs, on numpy arrays."""

    name = "numpy"

    def dtype(self, name: str):
        return np.dtype(name)

    def asarray(self, x, dtype) -> tuple[Any, bool]:
        """(x as ``dtype``, whether that is a new array the caller may overwrite)."""
        x = np.asarray(x)
        return (x, False) if x.dtype == dtype else (x.astype(dtype), True)

    def take_cols(self, y, index: np.ndarray):
        """Columns ``index`` (1-D) of y, C-contiguous (``y[:, index]`` may not be: reshapes would copy)."""
        return np.take(y, index, axis=1)

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def matmul(self, x, w):
        return x @ w

    def floor(self, y, out):
        return np.floor(y, out=out)

    def ceil(self, y, out):
        return np.ceil(y, out=out)

    def rint(self, y, out):
        return np.rint(y, out=out)

    def trunc(self, y, out):
        return np.trunc(y, out=out)

    def clip(self, y, lo, hi, out):
        return np.clip(y, lo, hi, out=out)

    def relu(self, y, out):
        return np.maximum(y, 0, out=out)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def minmax(self, y) -> tuple[float, float]:
        return (float(y.min()), float(y.max())) if y.size else (0.0, 0.0)

    def row_minmax(self, y):
        return y.min(axis=1), y.max(axis=1)

    def count(self, mask) -> int:
        return int(np.count_nonzero(mask))

    def append(self, y, *values: float, dtype=None):
        """y (as ``dtype``, in the same pass) with one more column per value (default one zero: what index -1 picks)."""
        values = values or (0.0,)
        y = np.asarray(y)
        out = np.empty((len(y), y.shape[1] + len(values)), dtype=dtype or y.dtype)
        out[:, : y.shape[1]] = y
        out[:, y.shape[1] :] = values
        return out

    def max_rows(self, y):
        return y.max(axis=1)

    def maximum(self, a, b, out):
        return np.maximum(a, b, out=out)


class Torch(Numpy):
    """The same operations on torch tensors on ``device`` (float64 on CUDA is exact below 2**53).

    float32 matrix products run with ``float32_matmul_precision("highest")``: the lower
    settings allow TF32 (CUDA) or bfloat16 (CPU) internally, which keep 10 or 7 significand
    bits and would round.
    """

    name = "torch"

    def __init__(self, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self._index: dict = {}  # im2col / gather indices on the device

    def dtype(self, name: str):
        return getattr(self.torch, name)

    def asarray(self, x, dtype) -> tuple[Any, bool]:
        t = self.torch
        if not isinstance(x, t.Tensor):
            x = t.from_numpy(np.ascontiguousarray(x))  # shares the numpy array's memory
            y = x.to(device=self.device, dtype=dtype)
            return y, y.data_ptr() != x.data_ptr()
        y = x.to(device=self.device, dtype=dtype)
        return y, y is not x

    def take_cols(self, y, index: np.ndarray):
        key = (id(index), str(y.device))
        cached = self._index.get(key)
        if cached is None or cached[0] is not index:
            cached = self._index[key] = (index, self.torch.as_tensor(index, device=y.device))
        return y[:, cached[1]]

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy() if isinstance(x, self.torch.Tensor) else np.asarray(x)

    def matmul(self, x, w):
        t = self.torch
        if x.dtype != t.float32:
            return x @ w
        with (
            _PRECISION_LOCK
        ):  # the setting is process-wide: no other thread's product runs in between
            before = t.get_float32_matmul_precision()
            if before == "highest":
                return x @ w
            t.set_float32_matmul_precision("highest")
            try:
                return x @ w
            finally:
                t.set_float32_matmul_precision(before)

    def floor(self, y, out):
        return self.torch.floor(y, out=out) if out is not None else self.torch.floor(y)

    def ceil(self, y, out):
        return self.torch.ceil(y, out=out) if out is not None else self.torch.ceil(y)

    def rint(self, y, out):  # torch.round: half to even
        return self.torch.round(y, out=out) if out is not None else self.torch.round(y)

    def trunc(self, y, out):
        return self.torch.trunc(y, out=out) if out is not None else self.torch.trunc(y)

    def clip(self, y, lo, hi, out):
        return (
            self.torch.clamp(y, lo, hi, out=out) if out is not None else self.torch.clamp(y, lo, hi)
        )

    def relu(self, y, out):
        return (
            self.torch.clamp(y, min=0, out=out) if out is not None else self.torch.clamp(y, min=0)
        )

    def where(self, cond, a, b):
        t = self.torch
        ref = next(v for v in (a, b, cond) if isinstance(v, t.Tensor))
        a = a if isinstance(a, t.Tensor) else t.tensor(a, dtype=ref.dtype, device=ref.device)
        b = b if isinstance(b, t.Tensor) else t.tensor(b, dtype=a.dtype, device=ref.device)
        return t.where(cond, a, b)

    def minmax(self, y) -> tuple[float, float]:
        if y.numel() == 0:
            return 0.0, 0.0
        lo, hi = self.torch.aminmax(y)
        return float(lo), float(hi)

    def row_minmax(self, y):
        return self.torch.aminmax(y, dim=1)

    def count(self, mask) -> int:
        return int(self.torch.count_nonzero(mask))

    def append(self, y, *values: float, dtype=None):
        t = self.torch
        values = values or (0.0,)
        if not isinstance(y, t.Tensor):
            y = t.from_numpy(np.ascontiguousarray(y))
        out = t.empty(
            (len(y), y.shape[1] + len(values)), dtype=dtype or y.dtype, device=self.device
        )
        out[:, : y.shape[1]] = y
        out[:, y.shape[1] :] = t.tensor(values, dtype=out.dtype, device=self.device)
        return out

    def max_rows(self, y):
        return y.amax(dim=1)

    def maximum(self, a, b, out):
        return self.torch.maximum(a, b, out=out)


NUMPY = Numpy()
_PRECISION_LOCK = threading.Lock()


def namespace(device: str | None) -> Numpy:
    """Where the float path runs: "cpu" (or None) numpy; "cuda[:n]" torch on that GPU; "auto" CUDA when
    present, else numpy; "torch-cpu" torch on the CPU (the same arithmetic, for tests and comparisons)."""
    if device in (None, "cpu", "numpy"):
        return NUMPY
    if device == "torch-cpu":
        return Torch("cpu")
    if device == "auto":
        import torch

        return Torch("cuda") if torch.cuda.is_available() else NUMPY
    if not str(device).startswith("cuda"):
        raise ValueError(f"device {device!r}: expected cpu, cuda, cuda:N, auto or torch-cpu")
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r}: no CUDA device is available (torch.cuda.is_available() is False)"
        )
    try:
        return Torch(str(device))
    except RuntimeError as err:
        raise ValueError(f"device {device!r}: {err}") from None


# ----------------------------------------------------------------------------- elementwise steps


@dataclass
class _Range:
    """Static bounds of the values at one point of a cast: [lo, hi] on a grid of ``lsb``."""

    lo: Fraction
    hi: Fraction
    lsb: Fraction = Fraction(1)

    @property
    def need(self) -> Fraction:
        """Largest |value| in grid units: must stay below 2**p."""
        return max(abs(self.lo), abs(self.hi)) / self.lsb


_ROUND_FN = {  # mode -> (offset added first, integer-rounding function)
    "AP_TRN": (Fraction(0), "floor"),
    "AP_RND": (Fraction(1, 2), "floor"),
    "AP_RND_MIN_INF": (Fraction(-1, 2), "ceil"),
    "AP_RND_CONV": (Fraction(0), "rint"),
    "AP_TRN_ZERO": (Fraction(0), "trunc"),
}


def _round_fraction(v: Fraction, mode: str) -> int:
    """``v`` rounded to an integer with an ap_fixed quantisation mode (exact)."""
    fl = math.floor(v)
    rem = v - fl
    if mode == "AP_TRN" or rem == 0:
        return fl
    if mode == "AP_TRN_ZERO":
        return fl + (v < 0)
    half = Fraction(1, 2)
    if rem != half:
        return fl + (rem > half)
    tie_up = {"AP_RND": True, "AP_RND_MIN_INF": False, "AP_RND_ZERO": v < 0, "AP_RND_INF": v > 0,
              "AP_RND_CONV": fl % 2 == 1}[mode]  # fmt: skip
    return fl + tie_up


@dataclass(frozen=True)
class Op:
    """One elementwise step on float mantissas.

    ``kind``: ``scale`` (by ``value``, a power of two), ``round`` (``value`` = (function,
    offset added first)), ``round_tie`` (``value`` = AP_RND_ZERO / AP_RND_INF), ``int_fix``
    (negatives become ``value``: ap_int from a fraction-only signed type), ``relu``,
    ``overflow`` (``dst``'s overflow mode; with ``relu``: of ``max(y, 0)``), ``record``
    (a cast proven not to overflow: counts zeros).
    """

    kind: str
    value: Any = None
    name: str | None = None
    dst: FixedType | None = None
    relu: bool = False


def _cast_ops(
    src: FixedType, dst: FixedType, r: _Range, name: str | None
) -> tuple[list[Op], _Range, Fraction]:
    """The steps of ``fixed.cast(m, src, dst)`` for values in ``r``: (steps, range after, largest need)."""
    ops: list[Op] = []
    need = r.need
    if dst.is_integer and src.signed and src.integer <= 0 and r.lo < 0:  # fixed._int_source
        value = -(2**src.fractional)
        ops.append(Op("int_fix", float(value)))
        r = _Range(min(r.lo, Fraction(value)), r.hi, r.lsb)
    sh = src.fractional - dst.fractional
    if sh != 0:
        s = Fraction(2) ** -sh
        ops.append(Op("scale", float(s)))
        r = _Range(r.lo * s, r.hi * s, r.lsb * s)
        need = max(need, r.need)
    if sh > 0:
        mode = dst.rounding
        offset = _ROUND_FN[mode][0] if mode in _ROUND_FN else Fraction(1, 2)
        lsb = min(r.lsb, abs(offset)) if offset else r.lsb
        need = max(need, (max(abs(r.lo), abs(r.hi)) + abs(offset)) / lsb)
        if mode in _ROUND_FN:
            ops.append(Op("round", (_ROUND_FN[mode][1], float(offset))))
        else:  # ties towards zero / away from zero: floor(y + 1/2) or ceil(y - 1/2) by sign
            ops.append(Op("round_tie", mode))
        r = _Range(Fraction(_round_fraction(r.lo, mode)), Fraction(_round_fraction(r.hi, mode)))
    lo, hi = _bounds(dst)
    if r.lo >= lo and r.hi <= hi:
        ops.append(Op("record", name=name))
    else:  # compares with (and clips to) the bounds: they must be exact too
        ops.append(Op("overflow", name=name, dst=dst))
        need = max(need, Fraction(max(abs(lo), abs(hi))))
        if dst.overflow == "AP_WRAP":  # y - lo, then multiples of 2**W
            need = max(need, max(abs(r.lo), abs(r.hi)) + abs(lo) + 2 ** (dst.width + 1))
            r = _Range(Fraction(lo), Fraction(hi))
        else:
            r = _Range(max(r.lo, Fraction(lo)), min(r.hi, Fraction(hi)))
            if dst.overflow == "AP_SAT_ZERO":
                r = _Range(min(r.lo, Fraction(0)), max(r.hi, Fraction(0)))
    return ops, r, max(need, r.need)


def _relu_ops(r: _Range) -> tuple[list[Op], _Range]:
    if r.lo >= 0:
        return [], r
    return [Op("relu")], _Range(Fraction(0), max(r.hi, Fraction(0)), r.lsb)


def _fuse_relu(ops: list[Op]) -> list[Op]:
    """Move each ReLU right past scales, roundings and records (monotone, 0 -> 0); merge it into a saturating clip."""
    ops = list(ops)
    k = 0
    while k < len(ops):
        if ops[k].kind != "relu":
            k += 1
            continue
        j = k
        while j + 1 < len(ops) and ops[j + 1].kind in ("scale", "round", "round_tie", "record"):
            ops[j], ops[j + 1] = ops[j + 1], ops[j]
            j += 1
        nxt = ops[j + 1] if j + 1 < len(ops) else None
        if (nxt is not None and nxt.kind == "overflow" and nxt.dst is not None
                and nxt.dst.overflow in ("AP_SAT", "AP_SAT_SYM") and not nxt.relu):  # fmt: skip
            ops[j + 1] = Op("overflow", name=nxt.name, dst=nxt.dst, relu=True)
            del ops[j]
        k = j + 1
    return ops


def _apply(xp: Numpy, ops: Sequence[Op], y, fresh: bool, counter: OverflowCounter | None):
    """Run the steps on y; ``fresh``: y may be overwritten (no other step holds it)."""
    for op in ops:
        out = y if fresh else None
        kind = op.kind
        if kind == "record":
            if counter is not None and op.name is not None:
                counter.record(op.name, 0, _size(y))
            continue
        if kind == "scale":
            if fresh:
                y *= op.value
            else:
                y = y * op.value
        elif kind == "round":
            fn, offset = op.value
            if offset:
                if fresh:
                    y += offset
                else:
                    y, out = y + offset, None
                    y = getattr(xp, fn)(y, y)
                    fresh = True
                    continue
            y = getattr(xp, fn)(y, out)
        elif kind == "round_tie":
            up = xp.floor(y + 0.5, None)  # ties up
            down = xp.ceil(y - 0.5, None)  # ties down
            y = (
                xp.where(y < 0, up, down)
                if op.value == "AP_RND_ZERO"
                else xp.where(y < 0, down, up)
            )
        elif kind == "int_fix":
            y = xp.where(y < 0, op.value, y)
        elif kind == "relu":
            y = xp.relu(y, out)
        else:
            y = _overflow(xp, op, y, fresh, counter)
        fresh = True
    return y


def _size(y) -> int:
    return int(np.prod(y.shape))


ROW_WISE_WIDTH = (
    64  # values per event from which overflows are handled event by event (two row reductions)
)


def _overflow(xp: Numpy, op: Op, y, fresh: bool, counter: OverflowCounter | None,
              extremes: tuple[float, float] | None = None):  # fmt: skip
    """Overflow handling of rounded mantissas; ``extremes``: their (min, max) when already known.

    The extremes decide whether anything overflowed (two fast reductions); only then are the
    values counted and handled.
    """
    dst, name = op.dst, op.name or "cast"
    assert dst is not None  # overflow steps carry their type
    lo, hi = _bounds(dst)
    out = y if fresh else None
    sat = dst.overflow in ("AP_SAT", "AP_SAT_SYM")
    floor = max(lo, 0) if op.relu else lo
    if op.name is None:
        counter = None  # an intermediate cast the integer kernel does not count
    if sat and (
        counter is None or op.relu
    ):  # one clip for all; with ReLU in front only the top can overflow
        if counter is not None:
            over = _size(y) > 0 and float(y.max()) > hi
            counter.record(name, xp.count(y > hi) if over else 0, _size(y))
        return xp.clip(y, floor, hi, out)
    mn, mx = xp.minmax(y) if extremes is None else extremes
    if mn >= lo and mx <= hi:
        if counter is not None:
            counter.record(name, 0, _size(y))
        return y
    rows = None
    if y.ndim == 2 and y.shape[1] >= ROW_WISE_WIDTH:  # wide events: handle only those that overflow
        rmin, rmax = xp.row_minmax(y)
        rows = (rmin < lo) | (rmax > hi)
        if not fresh:
            y = y * 1.0
        sub, sub_fresh = y[rows], True
    else:
        sub, sub_fresh = y, fresh
    if counter is not None:
        counter.record(name, xp.count((sub < lo) | (sub > hi)), _size(y))
    if sat:
        sub = xp.clip(sub, lo, hi, sub if sub_fresh else None)
    elif dst.overflow == "AP_SAT_ZERO":
        sub = xp.where((sub < lo) | (sub > hi), 0.0, sub)
    else:  # AP_WRAP: y - 2**W * floor((y - lo) / 2**W), onto [lo, lo + 2**W)
        span = 2.0**dst.width
        t = sub - lo
        t *= 1.0 / span
        t = xp.floor(t, t)
        t *= span
        if sub_fresh:
            sub -= t
        else:
            sub = sub - t
    if rows is None:
        return sub
    y[rows] = sub
    return y


# ----------------------------------------------------------------------------- casts (numpy, float64)


def _type_range(t: FixedType) -> _Range:
    return _Range(Fraction(t.min_int), Fraction(t.max_int))


def float_ok(src: FixedType, dst: FixedType, dtype: str = "float64") -> bool:
    """Whether ``cast_float`` is exact for this cast in ``dtype`` (see the module docstring)."""
    return _type_cast(src, dst, None)[1] < 2 ** FLOAT_BITS[dtype]


@functools.lru_cache(maxsize=1024)
def _type_cast(src: FixedType, dst: FixedType, name: str | None) -> tuple[tuple[Op, ...], Fraction]:
    ops, _, need = _cast_ops(src, dst, _type_range(src), name)
    return tuple(ops), max(need, _type_range(src).need)


def cast_ops(src: FixedType, dst: FixedType, name: str | None) -> tuple[Op, ...]:
    """The steps of ``fixed.cast(m, src, dst)`` for any mantissa of ``src`` (compiled once)."""
    return _type_cast(src, dst, name)[0]


def apply_ops(y, ops: Sequence[Op], counter: OverflowCounter | None, xp: Numpy = NUMPY):
    """Run cast steps on float mantissas ``y`` (overwritten)."""
    return _apply(xp, ops, y, True, counter)


def cast_float(
    y, src: FixedType, dst: FixedType, counter: OverflowCounter | None, name: str, xp: Numpy = NUMPY
):
    """``fixed.cast`` on float mantissas (may reuse ``y``'s memory); exact where ``float_ok``."""
    return _apply(xp, _type_cast(src, dst, name)[0], y, True, counter)


def from_float_exact(
    x: np.ndarray, dst: FixedType, counter: OverflowCounter | None, name: str
) -> np.ndarray | None:
    """float64 mantissas of ``dst(double(x))``, or None when some value needs the exact integer path."""
    if dst.rounding not in ("AP_TRN", "AP_RND_CONV", "AP_TRN_ZERO"):
        return None  # the other modes need exact tie tests on arbitrary doubles: integer path
    if dst.is_integer:
        x = _ap_int_from_double(x)
    with np.errstate(over="ignore"):
        y = x * 2.0**dst.fractional  # exact unless it overflows or (F < 0) underflows
    mn, mx = NUMPY.minmax(y)
    if not (
        max(mx, -mn) < 2.0**51
        and (dst.fractional >= 0 or y.size == 0 or np.abs(y).min() >= 2.0**-1000)
    ):
        return None
    fn = _ROUND_FN[dst.rounding][1]
    getattr(np, fn)(y, out=y)
    rounded = getattr(np, fn)(
        np.array([mn, mx])
    )  # rounding is monotone: the extremes of the result
    return _overflow(
        NUMPY,
        Op("overflow", name=name, dst=dst),
        y,
        True,
        counter,
        (float(rounded[0]), float(rounded[1])),
    )


# ----------------------------------------------------------------------------- graph steps


@dataclass(eq=False)
class _Step:
    node: Node  # for a fused dense + activation: one node standing for both (see _fused)
    dtype: str | None  # None: the node's integer kernel
    ops: list[Op] = field(default_factory=list)
    weight: np.ndarray | None = None  # dense/conv: weights times the folded scale (n_in, n_out)
    bias: np.ndarray | None = (
        None  # dense/conv: bias in accumulator LSBs, scaled, plus the rounding offset
    )
    columns: np.ndarray | None = (
        None  # conv: granule index per (segment, band column) (-1: padding, -2: ones)
    )
    granule: int = 1  # conv, max pooling: floats per gathered granule (index)
    index: np.ndarray | None = None  # gather: source of every output (-1: a zero)
    windows: np.ndarray | None = (
        None  # max pooling: (outputs, window) input (granule) indices (-1: padding)
    )
    pad: float = 0.0  # max pooling: the padding cells' value
    padded: bool = True  # max pooling: some window reaches the padding (index -1)
    slices: tuple[int, ...] | None = (
        None  # max pooling without padding: (ih, iw, F, ph, pw, sh, sw, oh, ow)
    )
    counts: tuple[int, int, int] = (
        1,
        0,
        0,
    )  # dense/conv: rows per event, n_in, n_out (for the overflow counts)
    pre_ops: list[Op] = field(
        default_factory=list
    )  # max pooling: the casts of the product it pools (_monotone)

    # The gathers' flat indices, made once (a device namespace keeps its copy of each by identity).
    @functools.cached_property
    def columns_flat(self) -> np.ndarray:
        assert self.columns is not None
        return self.columns.ravel()

    @functools.cached_property
    def windows_flat(self) -> np.ndarray:
        assert self.windows is not None
        return np.ascontiguousarray(self.windows.T).ravel()

    on_device: dict = field(default_factory=dict)  # namespace key -> (weight, bias) there


def _dtype_for(need: Fraction, allowed: Sequence[str]) -> str | None:
    for name in allowed:
        if need < 2 ** FLOAT_BITS[name]:
            return name
    return None


def _wide(*types: FixedType) -> bool:
    return any(t.width > 61 for t in types)


def _dense_step(node: Node, allowed: Sequence[str], act: Node | None) -> _Step | None:
    """A dense/conv node (and the activation only it feeds) as one matrix product and fused casts, when provable."""
    p, x_t = node.params, node.input_types[0]
    w = np.asarray(p["weight"])
    w_t, b_t, acc_t = p["weight_type"], p["bias_type"], p["accum_type"]
    if w.dtype == object or w.size == 0 or _wide(x_t, w_t, b_t, acc_t, node.result_type):
        return None
    shift = acc_t.fractional - (x_t.fractional + w_t.fractional)
    if shift < 0 or not acc_t.signed:
        return None  # products that round, or an unsigned accumulator: the integer kernel
    bias = (
        np.asarray(p["bias"]) if p.get("bias") is not None else np.zeros(w.shape[1], dtype=np.int64)
    )
    if bias.dtype == object or b_t.fractional > acc_t.fractional:
        return None
    b_acc = [int(v) << (acc_t.fractional - b_t.fractional) for v in bias]
    x_mag = max(-x_t.min_int, x_t.max_int)
    w_abs = np.abs(w).astype(object)
    bound = (x_mag * int(w_abs.sum(axis=0).max()) << shift) + max(
        (abs(v) for v in b_acc), default=0
    )
    if bound > acc_t.max_int:
        return None  # the accumulator could saturate or wrap: the ordered integer loop
    ops, r, need = _cast_ops(
        acc_t, node.result_type, _Range(Fraction(-bound), Fraction(bound)), f"{node.name}.result"
    )
    if act is not None:
        act_ops, r = _relu_ops(r) if act.kind == "relu" else ([], r)
        more, r, need2 = _cast_ops(node.result_type, act.result_type, r, act.name)
        ops, need = _fuse_relu(ops + act_ops + more), max(need, need2)
    # Leading scales and the first rounding's offset go into the weights and the bias.
    scale, offset, kept, k = Fraction(1), Fraction(0), [], 0
    while k < len(ops) and ops[k].kind in ("scale", "record"):
        if ops[k].kind == "scale":
            scale *= Fraction(ops[k].value)
        else:
            kept.append(ops[k])
        k += 1
    if k < len(ops) and ops[k].kind == "round" and ops[k].value[1]:
        offset = Fraction(ops[k].value[1])
        kept.append(Op("round", (ops[k].value[0], 0.0)))
        k += 1
    ops = kept + ops[k:]
    grid = min(scale, abs(offset)) if offset else scale
    need = max(
        need,
        Fraction(x_mag),
        Fraction(int(w_abs.max()) << shift),
        (bound * scale + abs(offset)) / grid,
    )
    dtype = _dtype_for(need, allowed)
    if dtype is None:
        return None
    b = np.array(b_acc, dtype=np.float64) * float(scale) + float(offset)
    columns, granule, counts = (
        None,
        1,
        (1, w.shape[0], w.shape[1]),
    )  # (rows per event, n_in, n_out) as the integer kernel counts
    if node.kind == "conv":
        columns = np.asarray(p["columns"])
        counts = (len(columns), w.shape[0], w.shape[1])
        b = np.tile(b, len(columns))  # the outputs are (pixel, filter), channels last
        if "geometry" in p:
            columns, w, granule = _conv_segments(p["geometry"], w)
    weight = w.astype(np.float64) * (float(scale) * 2.0**shift)
    if columns is not None:
        # The bias as one more product term: a granule [1, 0, ...] (index -2; -1 is the padding's
        # zeros) times a bias row (and zero rows). The partial sums keep the same bound, and one
        # pass over the outputs goes.
        columns = np.concatenate(
            [columns, np.full((len(columns), 1), -2, dtype=columns.dtype)], axis=1
        )
        bias_rows = np.zeros((granule, weight.shape[1]))
        bias_rows[0] = b[: weight.shape[1]]
        weight = np.concatenate([weight, bias_rows], axis=0)
    step = _Step(_fused(node, act) if act is not None else node, dtype, ops, weight.astype(dtype),
                 None if columns is not None else b.astype(dtype), columns)  # fmt: skip
    step.counts, step.granule = counts, granule
    return step


# Cost model of a conv segment, in units of one gathered float (numpy take, ~0.6 ns), fitted to
# single-threaded sgemm on narrow shapes: each product input costs 0.6 more (a fixed cost per
# row and column of x), and GATHER_PER_MAC multiply-adds cost one. A granule of g floats is
# taken as one element, costing 1 + g * GRANULE_FLOAT_COST (a gather of granules copies
# g * 4 bytes per index: measured 4x cheaper per float at g = 8 than at g = 1).
GATHER_PER_MAC = 28.0
PRODUCT_INPUT_COST = 0.6
GRANULE_FLOAT_COST = 0.1
MAX_GRANULE_BYTES = 64  # wider granules gather no faster per float, and pad the product more


def _conv_segments(geometry: dict, weight: np.ndarray, seg: int | None = None,
                   pixels: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """A conv as one matrix product per segment of ``S`` output pixels of a row: (input granule
    index per (segment, band column), band weights, floats per granule), with ``S`` (a divisor
    of the output width) and the granule (``Q`` pixels, all channels) chosen cheapest.

    Segment (oy, sx) reads input rows ``oy*sh + ky*dh - pt`` and the ``(S-1)*sw + (KW-1)*dw + 1``
    input columns from ``x0 = sx*S*sw - pl``, all channels; the band weights map them to the
    segment's ``S * F`` outputs (the kernel taps, zeros elsewhere: exact by the same bound, as
    zeros add nothing). Why: ``S = 1`` is im2col, whose product has ``KH*KW*C`` inputs and
    ``F`` outputs, both tiny for a first layer (BLAS runs such shapes far below its speed, and
    the gather copies every input ``KH*KW`` times); wider segments gather less and multiply more
    (the cost model above, measured).

    The gather moves granules of ``Q`` adjacent pixels (``Q * C`` floats; index -1: a granule of
    padding): a take costs per index, not per byte. Granules are aligned to multiples of ``Q``
    pixels, so ``Q`` divides the input width (a granule is all image or all padding) and
    ``S*sw`` (every segment starts at the same offset ``a`` in its first granule: one band for
    all); the band covers the extra pixels of the first and last granule with zero weights.
    """
    (ih, iw), c = geometry["in_shape"], geometry["n_chan"]
    (kh, kw), (sh, sw), (pt, pl) = geometry["filt"], geometry["stride"], geometry["pad"]
    (dh, dw), (oh, ow) = geometry["dilation"], geometry["out_shape"]
    f = weight.shape[1]

    def slots(seg: int, q: int) -> int:  # granules per segment row
        span = (seg - 1) * sw + (kw - 1) * dw + 1
        return ((-pl) % q + span - 1) // q + 1

    def cost(choice: tuple[int, int]) -> float:
        seg, q = choice
        rows, k = oh * ow // seg, kh * slots(seg, q) * q * c
        return (
            rows
            * k
            * (
                (1 + q * c * GRANULE_FLOAT_COST) / (q * c)
                + PRODUCT_INPUT_COST
                + seg * f / GATHER_PER_MAC
            )
        )

    segs = [seg] if seg is not None else [d for d in range(1, ow + 1) if ow % d == 0]
    qs = [pixels] if pixels is not None else [q for q in range(1, iw + 1) if iw % q == 0
                                              and (q == 1 or q * c * 4 <= MAX_GRANULE_BYTES)]  # fmt: skip
    choices = [(s, q) for s in segs for q in qs if (s * sw) % q == 0]
    if not choices:
        raise ValueError(
            f"conv segments: no granule of {pixels} pixels fits segments of {seg} pixels"
        )
    seg, q = min(choices, key=cost)
    n_slots, a = slots(seg, q), (-pl) % q
    index = np.full((oh, ow // seg, kh, n_slots), -1, dtype=np.int64)
    for oy in range(oh):
        for ky in range(kh):
            iy = oy * sh + ky * dh - pt
            if not 0 <= iy < ih:
                continue
            for sx in range(ow // seg):
                first = (
                    sx * seg * sw - pl - a
                ) // q  # granule holding the segment's first input column
                for s in range(n_slots):
                    if 0 <= (first + s) * q < iw:
                        index[oy, sx, ky, s] = (iy * iw) // q + first + s
    band = np.zeros((kh, n_slots * q, c, seg, f), dtype=weight.dtype)
    w = weight.reshape(kh, kw, c, f)
    for j in range(seg):
        for kx in range(kw):
            band[:, a + j * sw + kx * dw, :, j, :] = w[:, kx, :, :]
    return index.reshape(oh * ow // seg, -1), band.reshape(kh * n_slots * q * c, seg * f), q * c


def _cast_step(node: Node, allowed: Sequence[str]) -> _Step | None:
    """relu / linear / gather: the cast (ReLU first), then for a gather the index."""
    src = node.input_types[0]
    if _wide(src, node.result_type):
        return None
    r = _type_range(src)
    relu_ops: list[Op] = []
    if node.kind == "relu":
        relu_ops, r = _relu_ops(r)
    ops, _, need = _cast_ops(src, node.result_type, r, node.name)
    dtype = _dtype_for(max(need, _type_range(src).need), allowed)
    if dtype is None:
        return None
    index = np.asarray(node.params["index"]) if node.kind == "gather" else None
    return _Step(node, dtype, _fuse_relu(relu_ops + ops), index=index)


def _max_pool_step(node: Node, allowed: Sequence[str]) -> _Step | None:
    """Max pooling: the largest input (exact), cast to accum_t (not counted), then to res_T."""
    from emulation.layers.pooling import pad_value

    t, acc_t = node.input_types[0], node.params["accum_type"]
    if _wide(t, acc_t, node.result_type):
        return None
    first, r, need1 = _cast_ops(t, acc_t, _type_range(t), None)
    second, _, need2 = _cast_ops(acc_t, node.result_type, r, node.name)
    pad = pad_value(t, "max")
    dtype = _dtype_for(max(need1, need2, _type_range(t).need, Fraction(abs(pad))), allowed)
    if dtype is None:
        return None
    windows = np.asarray(node.params["windows"])
    step = _Step(node, dtype, first + second, windows=windows, pad=float(pad))
    pixels = _pixel_windows(windows, node.params.get("geometry", {}).get("n_filt", 1))
    if pixels is not None:
        step.windows, step.granule, step.padded = (
            pixels,
            node.params["geometry"]["n_filt"],
            bool((pixels < 0).any()),
        )
        return step
    g = node.params.get("geometry")
    if g is not None and not any(g["pad"]):
        (ih, iw), (ph, pw), (sh, sw) = g["in_shape"], g["pool"], g["stride"]
        oh, ow = (ih - ph) // sh + 1, (iw - pw) // sw + 1
        if oh * ow * g["n_filt"] == len(
            windows
        ):  # windows inside the image: strided slices, no gather
            step.slices = (ih, iw, g["n_filt"], ph, pw, sh, sw, oh, ow)
    return step


def _pixel_windows(windows: np.ndarray, n_chan: int) -> np.ndarray | None:
    """Pooling windows (outputs, window) over channel-last floats as windows over whole pixels
    (granules of ``n_chan`` floats; -1: padding), when every channel's window is its pixel's.

    Why: a take costs per index, so gathering whole pixels (32 bytes for 8 channels) is ~4x
    cheaper per float than gathering floats, and the maxima then run over contiguous rows
    (strided views with ``n_chan`` contiguous floats run a loop call per pixel).
    """
    if n_chan < 2 or len(windows) % n_chan:
        return None
    pix = windows[::n_chan]
    expect = np.where(pix[:, None, :] >= 0, pix[:, None, :] + np.arange(n_chan)[None, :, None], -1)
    if not np.array_equal(expect.reshape(windows.shape), windows) or np.any(
        (pix >= 0) & (pix % n_chan != 0)
    ):
        return None
    return np.where(pix >= 0, pix // n_chan, -1)


def _monotone(ops: Sequence[Op]) -> bool:
    """Whether the casts are monotone non-decreasing, with no overflow step or one saturating step last.

    Then a max pooling that alone reads them may run first: for monotone ``c``,
    ``max(c(a), c(b)) = c(max(a, b))`` (scaling by 2**k, every rounding, ReLU, int_fix's
    "negatives become a negative constant" and clipping to [lo, hi] never swap two values), and
    the casts run on 1/(ph*pw) of the values. Their overflow counts are taken on the full
    product (``_count_before_pool``).
    """
    if ops and ops[-1].kind == "overflow":
        if ops[-1].dst is None or ops[-1].dst.overflow not in ("AP_SAT", "AP_SAT_SYM"):
            return False
        ops = ops[:-1]
    return all(op.kind in ("record", "round", "round_tie", "relu") or (op.kind == "scale" and op.value > 0)
               or (op.kind == "int_fix" and op.value <= 0) for op in ops)  # fmt: skip


def _count_before_pool(
    xp: Numpy, ops: Sequence[Op], y, dtype: str, counter: OverflowCounter
) -> None:
    """The overflow counts of the casts ``ops`` (``_monotone``) on y, without casting y.

    The casts ``c`` before the saturating step are monotone, so the values that overflow above
    are ``y >= T`` for the smallest ``T`` of y's float type with ``c(T) > hi`` (and below,
    ``y <= T'``): one comparison per value (``_thresholds``).
    """
    last, over = ops[-1], 0
    if last.kind == "overflow":
        up, down = _thresholds(tuple(ops), dtype)
        over = xp.count(y >= up) if up is not None else 0
        if down is not None and not last.relu:
            over += xp.count(y <= down)
    for op in ops:
        if op.name is not None and op.kind in ("record", "overflow"):
            counter.record(op.name, over if op is last else 0, _size(y))


@functools.lru_cache(maxsize=256)
def _thresholds(ops: tuple[Op, ...], dtype: str) -> tuple[float | None, float | None]:
    """(smallest value T of ``dtype`` whose cast exceeds the last step's top, largest one whose cast is
    below its bottom; None: no value does), by bisection over the floats of ``dtype`` (exact)."""
    assert ops[-1].dst is not None
    lo, hi = _bounds(ops[-1].dst)
    kind = np.dtype(dtype).type
    big = float(np.finfo(dtype).max) / 4

    def cast(v: float) -> float:
        return float(_apply(NUMPY, ops[:-1], np.array([v], dtype=dtype), True, None)[0])

    def first(
        inside: float, sign: int, bad
    ) -> float | None:  # cast(inside) in bounds, beyond it bad()
        step = 1.0
        while not bad(cast(sign * step)):
            step *= 2
            if step > big:
                return None
        a, b = (
            kind(inside),
            kind(sign * step),
        )  # bisect between the last good and the first bad value
        while np.nextafter(a, b) != b:
            mid = kind((float(a) + float(b)) / 2)
            if mid in (a, b):
                mid = np.nextafter(a, b)
            if bad(cast(float(mid))):
                b = mid
            else:
                a = mid
        return float(b)

    return first(0.0, 1, lambda c: c > hi), first(0.0, -1, lambda c: c < lo)


_FUSED = "\x00"  # joins the names of a dense node and the activation fused into it


def _fused(dense: Node, act: Node) -> Node:
    """One node standing for a dense node and the activation it alone feeds (output: the activation's)."""
    return Node(dense.kind, dense.name + _FUSED + act.name, dense.inputs, act.output, dense.input_types,
                act.result_type, act.size, dense.params)  # fmt: skip


class FloatGraph:
    """A graph compiled for the float path: each node float32, float64 or its integer kernel.

    ``dtypes``: the float types allowed, tried in order (``("float64",)`` forces float64,
    ``()`` runs every node on its integer kernel). ``run``/``emulate`` take ``xp``, the
    array namespace (:class:`Numpy` or :class:`Torch`).
    """

    FLOAT_KINDS = ("dense", "conv", "relu", "linear", "gather", "pooling (max)")

    def __init__(self, graph: Graph, dtypes: Sequence[str] = ("float32", "float64")) -> None:
        self.graph = graph
        readers: dict[str, int] = {}
        for node in graph.nodes:
            for v in node.inputs:
                readers[v] = readers.get(v, 0) + 1
        outputs = {p.name for p in graph.outputs}
        steps: list[_Step] = []
        nodes = list(graph.nodes)
        k = 0
        while k < len(nodes):
            node, step = nodes[k], None
            if (
                dtypes
                and node.kind in ("dense", "conv")
                and node.params.get("strategy", "latency") in ("latency", "resource")
            ):
                nxt = nodes[k + 1] if k + 1 < len(nodes) else None
                act = nxt if (nxt is not None and nxt.kind in ("relu", "linear") and nxt.inputs == (node.output,)
                              and readers.get(node.output) == 1 and node.output not in outputs) else None  # fmt: skip
                step = _dense_step(node, dtypes, act)
                if step is None and act is not None:
                    step = _dense_step(node, dtypes, None)
                elif step is not None and act is not None:
                    k += 1
            elif dtypes and node.kind in ("relu", "linear", "gather"):
                step = _cast_step(node, dtypes)
            elif dtypes and node.kind == "pooling" and node.params["op"] == "max":
                step = _max_pool_step(node, dtypes)
            steps.append(step if step is not None else _Step(node, None))
            k += 1
        for a, b in (
            steps[j - 1 : j + 1] for j in range(1, len(steps))
        ):  # a product its max pooling alone reads
            if (a.weight is not None and b.windows is not None and a.dtype == b.dtype
                    and b.node.inputs == (a.node.output,) and readers.get(a.node.output) == 1
                    and a.node.output not in outputs and not (b.windows < 0).any() and _monotone(a.ops)):  # fmt: skip
                b.pre_ops, a.ops = a.ops, []
        self.steps = tuple(steps)

    def chunk_size(self, elements: int = 1 << 20) -> int:
        """Events per chunk so that the widest per-event array (a layer's output, a conv's product
        rows, a pooling gather) holds about ``elements`` values: chunks stay in cache (a power of two,
        256 to 16384)."""
        widest = max([p.size for p in self.graph.inputs] + [s.node.size for s in self.steps]
                     + [s.columns.size * s.granule for s in self.steps if s.columns is not None]
                     + [s.windows.size * s.granule for s in self.steps if s.windows is not None])  # fmt: skip
        return int(min(16384, max(256, 1 << int(math.log2(max(1, elements // max(widest, 1)))))))

    @property
    def dtypes(self) -> list[str | None]:
        """Per step (a dense node and the activation it feeds are one step): float32, float64 or None (integers)."""
        return [s.dtype for s in self.steps]

    @property
    def all_float(self) -> bool:
        return all(s.dtype is not None for s in self.steps)

    def run(
        self, inputs: Sequence[Any], counter: OverflowCounter | None = None, xp: Numpy = NUMPY
    ) -> list[Any]:
        """Output mantissas (``xp`` float arrays, or int64 where an integer node wrote them) for input mantissas.

        Inputs are int64 or float mantissas, numpy or ``xp`` arrays; they are never modified.
        """
        values: dict[str, Any] = dict(zip((p.name for p in self.graph.inputs), inputs, strict=True))
        for step in self.steps:
            values[step.node.output] = self._run_step(
                step, [values[v] for v in step.node.inputs], counter, xp
            )
        return [values[p.name] for p in self.graph.outputs]

    def _run_step(self, step: _Step, args: list, counter: OverflowCounter | None, xp: Numpy):
        node = step.node
        if step.dtype is None:
            from emulation.layers import KERNELS

            ints = [xp.to_numpy(a) for a in args]
            ints = [a.astype(np.int64) if a.dtype.kind == "f" else a for a in ints]
            return KERNELS[node.kind](node, ints, counter)
        if step.columns is not None:  # conv: the gather converts (one pass fewer)
            x, fresh = args[0], False
        else:
            x, fresh = xp.asarray(args[0], xp.dtype(step.dtype))
        if step.pre_ops and counter is not None:  # a product's casts deferred past this pooling
            _count_before_pool(xp, step.pre_ops, x, step.dtype, counter)
        if (
            step.slices is not None
        ):  # max pooling, every window inside the image: maxima of strided views
            ih, iw, f, ph, pw, sh, sw, oh, ow = step.slices
            if (sh, sw) == (ph, pw) and (ih, iw) == (
                oh * ph,
                ow * pw,
            ):  # tiling windows: rows, then columns
                tiles = x.reshape(len(x), oh, ph, ow * pw * f)
                y = tiles[:, :, 0] * 1
                for ky in range(1, ph):
                    y = xp.maximum(y, tiles[:, :, ky], y)
                cols = y.reshape(len(x), oh * ow, pw, f)
                z = cols[:, :, 0] * 1
                for kx in range(1, pw):
                    z = xp.maximum(z, cols[:, :, kx], z)
                return _apply(
                    xp,
                    step.ops,
                    _apply(xp, step.pre_ops, z.reshape(len(x), -1), True, None),
                    True,
                    counter,
                )
            image = x.reshape(len(x), ih, iw, f)
            views = [image[:, ky : ky + sh * (oh - 1) + 1 : sh, kx : kx + sw * (ow - 1) + 1 : sw, :]
                     for ky in range(ph) for kx in range(pw)]  # fmt: skip
            y = views[0] * 1
            for view in views[1:]:
                y = xp.maximum(y, view, y)
            return _apply(
                xp,
                step.ops,
                _apply(xp, step.pre_ops, y.reshape(len(x), -1), True, None),
                True,
                counter,
            )
        if (
            step.windows is not None and step.granule > 1
        ):  # max pooling over whole pixels (_pixel_windows)
            n_events, g = len(x), step.granule
            padded = xp.append(x, *[step.pad] * g) if step.padded else x
            padded = padded.reshape(n_events, -1, g)
            win = xp.take_cols(padded, step.windows_flat).reshape(
                n_events, step.windows.shape[1], -1
            )
            y = (
                xp.maximum(win[:, 0], win[:, 1], None)
                if step.windows.shape[1] > 1
                else win[:, 0] * 1
            )
            for k in range(2, win.shape[1]):
                y = xp.maximum(y, win[:, k], y)
            return _apply(xp, step.ops, _apply(xp, step.pre_ops, y, True, None), True, counter)
        if step.windows is not None:  # max pooling: the window's largest value, then the casts
            n_events = len(x)
            # window-major (events, window, outputs): the maximum runs over rows, vectorised along outputs
            win = xp.take_cols(xp.append(x, step.pad), step.windows_flat).reshape(
                n_events, *step.windows.T.shape
            )
            return _apply(
                xp, step.ops, _apply(xp, step.pre_ops, xp.max_rows(win), True, None), True, counter
            )
        if step.weight is None:
            y = _apply(xp, step.ops, x, fresh, counter)
            return y if step.index is None else xp.take_cols(xp.append(y), step.index)
        key = f"{xp.name}:{getattr(xp, 'device', '')}"
        if key not in step.on_device:
            bias = None if step.bias is None else xp.asarray(step.bias, xp.dtype(step.dtype))[0]
            step.on_device[key] = (xp.asarray(step.weight, xp.dtype(step.dtype))[0], bias)
        weight, bias = step.on_device[key]
        n_events = len(x)
        if step.columns is not None:  # conv: one row per segment of output pixels, the bias inside
            g = step.granule
            padded = xp.append(x, 1.0, *[0.0] * (2 * g - 1), dtype=xp.dtype(step.dtype))
            x = xp.take_cols(padded.reshape(n_events, -1, g), step.columns_flat).reshape(
                -1, step.columns.shape[1] * g
            )
        y = xp.matmul(x, weight).reshape(n_events, -1)
        if bias is not None:
            y += bias
        if counter is not None:
            name = node.name.split(_FUSED)[0]
            rows, n_in, n_out = step.counts
            counter.record(f"{name}.bias", 0, n_out)
            counter.record(f"{name}.product", 0, n_events * rows * n_in * n_out)
            counter.record(f"{name}.accum", 0, n_events * rows * n_out)
        return _apply(xp, step.ops, y, True, counter)

    def input_mantissas(
        self, inputs: Sequence[np.ndarray], counter: OverflowCounter | None = None
    ) -> list[np.ndarray]:
        """Float inputs cast to their input types as the C simulation does (float64 mantissas or int64)."""
        out = []
        for port, x in zip(self.graph.inputs, inputs, strict=True):
            x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
            if x.shape[1] != port.size:
                raise ValueError(
                    f"input {port.name!r} has {x.shape[1]} values per event, {self.graph.name} expects {port.size}"
                )
            name = "input" if len(self.graph.inputs) == 1 else f"input.{port.name}"
            m = (
                from_float_exact(x, port.type, counter, name)
                if port.type.width <= MAX_FLOAT_WIDTH
                else None
            )
            out.append(m if m is not None else from_float(x, port.type, counter, name))
        return out

    def emulate(
        self,
        inputs: Sequence[np.ndarray],
        counter: OverflowCounter | None = None,
        xp: Numpy = NUMPY,
    ) -> list[np.ndarray]:
        """float64 outputs for float inputs (``Graph.emulate`` on the float path)."""
        if len(inputs) != len(self.graph.inputs):
            raise ValueError(
                f"{self.graph.name} takes {len(self.graph.inputs)} inputs, got {len(inputs)}"
            )
        outs = self.run(self.input_mantissas(inputs, counter), counter, xp)
        return [to_values(xp, m, p.type) for m, p in zip(outs, self.graph.outputs, strict=True)]


def to_values(xp: Numpy, m, t: FixedType) -> np.ndarray:
    """float64 values of mantissas (any namespace's float array, int64, or Python integers of wide types)."""
    arr = xp.to_numpy(m)
    if arr.dtype.kind in "iuO":  # integer kernels' results: ap_types' own conversion to double
        return to_float(arr, t)
    return np.multiply(arr, 2.0**-t.fractional, dtype=np.float64)


def compile_project(project, dtypes: Sequence[str] = ("float32", "float64")) -> FloatGraph:
    """The float path of any loaded hls4ml project (its graph, or its dense/ReLU chain as a graph)."""
    from emulation.project_graph import project_graph

    return FloatGraph(project_graph(project), dtypes)
