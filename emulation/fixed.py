"""ap_fixed / ap_ufixed arithmetic on integer numpy arrays, vectorised over events.

A fixed-point array is an int64 array of *mantissas* ``m`` plus a :class:`FixedType`
``t`` (the FirmwareSpec's type, ``quantize.spec.FixedType``): the value is
``m * 2**-t.fractional``. Every operation is done on integers, so
results are exact by construction and agree bit for bit with Xilinx ``ap_fixed``
(checked against the ``ap_types`` headers hls4ml ships, compiled by g++).

Why not an existing package: the emulators we know of either round through floats
(not exact for wide accumulators) or run one value at a time; the trigger emulator
needs vectorised exact integer semantics for all quantisation and overflow modes.

Limits: mantissas live in int64. Any type used here (operands, products, sums) may
be at most :data:`MAX_WIDTH` = 61 bits wide; wider types raise ``ValueError``
(``multiply`` of two 31-bit operands is the largest product). Saturation with
``n_bits`` (the ``N`` of ``ap_fixed<W,I,Q,O,N>``) other than 0 and ``AP_WRAP_SM`` are
not supported (hls4ml never writes them). Where ap_types itself aborts (a cast that
drops more fractional bits than the source is wide: "read bit beyond MSB"), the
result here is the mathematically defined one.
"""

from __future__ import annotations

import numpy as np

from quantize.spec import FixedType

__all__ = [
    "MAX_WIDTH",
    "OVERFLOW_MODES",
    "QUANTIZATION_MODES",
    "ROUNDING_MODES",
    "FixedType",
    "OverflowCounter",
    "add",
    "cast",
    "from_float",
    "multiply",
    "plus_type",
    "product_type",
    "to_float",
]

QUANTIZATION_MODES = ROUNDING_MODES = (
    "AP_TRN",
    "AP_TRN_ZERO",
    "AP_RND",
    "AP_RND_ZERO",
    "AP_RND_MIN_INF",
    "AP_RND_INF",
    "AP_RND_CONV",
)
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")
MAX_WIDTH = 61


def _check_width(t: FixedType, what: str) -> None:
    if t.width > MAX_WIDTH:
        raise ValueError(
            f"{what} {t} is {t.width} bits wide; the emulator computes in int64 and supports "
            f"at most {MAX_WIDTH} bits (see emulation.fixed)"
        )


class OverflowCounter:
    """Counts values that overflowed (wrapped or saturated) per named cast.

    Pass one to the casts of a network; ``report()`` gives one row per name. A value
    counts when its exact (quantised) source lies outside the target type's range,
    whatever the overflow mode then does with it.
    """

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def record(self, name: str, overflows: int, values: int) -> None:
        row = self._counts.setdefault(name, [0, 0])
        row[0] += int(overflows)
        row[1] += int(values)

    def overflows(self, name: str) -> int:
        return self._counts.get(name, [0, 0])[0]

    @property
    def total(self) -> int:
        return sum(row[0] for row in self._counts.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {k: {"overflows": v[0], "values": v[1]} for k, v in self._counts.items()}

    def report(self):
        """A pandas DataFrame: name, overflows, values, fraction."""
        import pandas as pd

        rows = [
            {"name": k, "overflows": v[0], "values": v[1], "fraction": v[0] / v[1] if v[1] else 0.0}
            for k, v in self._counts.items()
        ]
        return pd.DataFrame(rows, columns=["name", "overflows", "values", "fraction"])

    def merge(self, other: OverflowCounter) -> None:
        for name, (n, total) in other._counts.items():
            self.record(name, n, total)


# --------------------------------------------------------------------------- core


def _as_mantissa(m) -> np.ndarray:
    arr = np.asarray(m)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"mantissas must be an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _quantize(m: np.ndarray, shift, rounding: str) -> np.ndarray:
    """m / 2**shift rounded to an integer with an ap_fixed quantisation mode; shift > 0.

    Each rounding is one biased arithmetic shift: floor((m + bias) / 2**sh), where the
    bias sends exact ties the way the mode wants (e.g. half to even adds the parity of
    floor(m / 2**sh)). ``shift`` may be an int or an int64 array.
    """
    # Shifting by more than 62 rounds the same as 62 because |m| < 2**61.
    if np.ndim(shift):
        sh = np.minimum(shift, 62).astype(np.int64)
    else:
        sh = np.int64(min(int(shift), 62))
    one = np.int64(1)
    if rounding == "AP_TRN":
        return m >> sh
    # In-place steps: temporaries are few (allocation dominates these cheap passes).
    if rounding == "AP_TRN_ZERO":  # towards zero: add 2**sh - 1 to negatives
        t = (m >> np.int64(63)) & ((one << sh) - one)
    elif rounding == "AP_RND":  # ties up
        t = m + (one << (sh - one))
        t >>= sh
        return t
    elif rounding == "AP_RND_MIN_INF":  # ties down
        t = m + ((one << (sh - one)) - one)
        t >>= sh
        return t
    elif rounding == "AP_RND_ZERO":  # ties towards zero: negatives get one more
        t = m >> np.int64(63)
        t -= one << (sh - one)
        t += one
        np.negative(t, out=t)
    elif rounding == "AP_RND_INF":  # ties away from zero: negatives get one less
        t = m >> np.int64(63)
        t += one << (sh - one)
    elif rounding == "AP_RND_CONV":  # ties to even: add the parity of floor(m / 2**sh)
        t = m >> sh
        t &= one
        t += (one << (sh - one)) - one
    else:  # pragma: no cover - FixedType validates modes
        raise ValueError(rounding)
    t += m
    t >>= sh
    return t


def _bounds(dst: FixedType) -> tuple[int, int]:
    hi, lo = dst.max_int, dst.min_int
    if dst.overflow == "AP_SAT_SYM" and dst.signed and dst.width > 1:
        lo = -hi  # ap_fixed<1,...> keeps -1: its underflow value is min | 1
    return lo, hi


def _overflow(q: np.ndarray, dst: FixedType, counter: OverflowCounter | None, name: str | None) -> np.ndarray:
    """Overflow handling of quantised mantissas q (already in dst's LSB, |q| < 2**62)."""
    lo, hi = _bounds(dst)
    q = np.asarray(q)
    if q.size == 0 or (q.min() >= lo and q.max() <= hi):  # the common case: two reductions
        if counter is not None:
            counter.record(name or "cast", 0, q.size)
        return q
    bad = (q < lo) | (q > hi)
    if counter is not None:
        counter.record(name or "cast", int(np.count_nonzero(bad)), bad.size)
    if dst.overflow == "AP_WRAP":
        v = q & np.int64((1 << dst.width) - 1)
        if dst.signed:
            v = np.where(v > hi, v - np.int64(1 << dst.width), v)
        return v
    if dst.overflow == "AP_SAT_ZERO":
        return np.where(bad, np.int64(0), q)
    return np.clip(q, lo, hi)


def _convert(m: np.ndarray, shift, dst: FixedType, counter: OverflowCounter | None, name: str | None) -> np.ndarray:
    """Value ``m * 2**-shift`` (in units of dst's LSB) into dst's mantissa, with dst's modes.

    ``shift`` may be an int or an int64 array (one per element, as for doubles).
    """
    _check_width(dst, "target type")
    if np.ndim(shift) == 0:
        shift = int(shift)
        if shift > 0:
            return _overflow(_quantize(m, shift, dst.rounding), dst, counter, name)
        if shift == 0:
            return _overflow(m, dst, counter, name)
        k = -shift
        q = m
    else:
        shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), m.shape)
        pos = shift > 0
        q = np.where(pos, _quantize(m, np.where(pos, shift, 1), dst.rounding), m)
        k = np.where(pos, 0, -shift)
    # Left shift by k: compare q with the bounds in q's scale so that nothing overflows int64.
    lo, hi = _bounds(dst)
    kc = np.minimum(k, 62)
    over = q > (np.int64(hi) >> kc)
    under = q < -(np.int64(-lo) >> kc)
    bad = over | under
    if counter is not None:
        counter.record(name or "cast", np.count_nonzero(bad), bad.size)
    if dst.overflow == "AP_WRAP":
        width = dst.width
        bits = np.maximum(width - k, 0)
        v = np.where(k < width, (q & ((np.int64(1) << bits) - 1)) << np.minimum(k, width), 0)
        if dst.signed:
            v = np.where(v > hi, v - np.int64(1 << width), v)
        return v.astype(np.int64, copy=False)
    inside = np.where(bad, 0, q) << np.asarray(k, dtype=np.int64)
    if dst.overflow == "AP_SAT_ZERO":
        return np.where(bad, 0, inside).astype(np.int64, copy=False)
    return np.where(over, np.int64(hi), np.where(under, np.int64(lo), inside)).astype(np.int64, copy=False)


def cast(
    mantissa,
    source: int | FixedType,
    dst: FixedType,
    counter: OverflowCounter | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Assign values of type ``source`` (or with ``source`` fractional bits) to ``dst``, as ap_fixed's ``operator=``.

    The source is exact (any ap_fixed/ap_int type: its own modes do not matter);
    quantisation then overflow handling follow ``dst``'s modes. Given the source type,
    a cast that cannot round or overflow is a plain shift.
    """
    m = _as_mantissa(mantissa)
    if isinstance(source, FixedType):
        shift = dst.fractional - source.fractional
        if shift >= 0 and (source.min_int << shift) >= dst.min_int and (source.max_int << shift) <= dst.max_int:
            if counter is not None:
                counter.record(name or "cast", 0, m.size)
            return m << np.int64(shift) if shift else m
        source = source.fractional
    return _convert(m, int(source) - dst.fractional, dst, counter, name)


def from_float(values, dst: FixedType, counter: OverflowCounter | None = None, name: str | None = None) -> np.ndarray:
    """Mantissas of ``dst(double(x))``: ap_fixed's constructor from double, exactly.

    The double's exact binary value is quantised and overflow-handled with dst's modes
    (float32 inputs are widened to double first, as ap_fixed(float) does). NaN and
    infinities raise ``ValueError`` (ap_fixed gives them no defined value).
    """
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot convert NaN or infinite values to fixed point")
    _check_width(dst, "target type")
    with np.errstate(over="ignore"):
        y = x * 2.0**dst.fractional  # exact unless it overflows or (F < 0) underflows
    if y.size == 0 or (max(y.max(), -y.min()) < 2.0**52 and (dst.fractional >= 0 or np.abs(y).min() >= 2.0**-1000)):
        return _overflow(_round_float(y, dst.rounding), dst, counter, name)
    ay = np.abs(y)
    fast = (ay < 2.0**52) & ((ay >= 2.0**-1000) | (x == 0))
    out = np.empty(x.shape, dtype=np.int64)
    sub = OverflowCounter() if counter is not None else None
    out[fast] = _overflow(_round_float(y[fast], dst.rounding), dst, sub, name)
    slow = x[~fast]
    frac, exp = np.frexp(slow)
    man = np.ldexp(frac, 53).astype(np.int64)  # exact: |man| < 2**53
    out[~fast] = _convert(man, 53 - exp.astype(np.int64) - dst.fractional, dst, sub, name)
    if counter is not None and sub is not None:
        counter.merge(sub)
    return out


def _round_float(y: np.ndarray, rounding: str) -> np.ndarray:
    """Round doubles |y| < 2**52 to integers with an ap_fixed mode, using exact comparisons only."""
    if rounding == "AP_TRN":
        return np.floor(y).astype(np.int64)
    if rounding == "AP_RND_CONV":  # rint rounds ties to even, exactly
        return np.rint(y).astype(np.int64)
    fl = np.floor(y)
    q = fl.astype(np.int64)
    if rounding == "AP_TRN_ZERO":
        return q + ((y < 0) & (y != fl))
    mid = fl + 0.5  # exact for |fl| < 2**51
    above, tie = y > mid, y == mid
    if rounding == "AP_RND":
        inc = above | tie
    elif rounding == "AP_RND_MIN_INF":
        inc = above
    elif rounding == "AP_RND_ZERO":
        inc = above | (tie & (y < 0))
    elif rounding == "AP_RND_INF":
        inc = above | (tie & (y > 0))
    else:  # pragma: no cover - FixedType validates modes
        raise ValueError(rounding)
    return q + inc


def to_float(mantissa, t: FixedType | int) -> np.ndarray:
    """float64 values of mantissas (exact for widths up to 53 bits)."""
    frac = t if isinstance(t, int | np.integer) else t.fractional
    return _as_mantissa(mantissa).astype(np.float64) * 2.0 ** -int(frac)


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """Result type of ``a * b`` in ap_fixed (``RType::mult``): exact, ``ap_fixed<Wa+Wb, Ia+Ib>``."""
    return FixedType(a.width + b.width, a.integer + b.integer, a.signed or b.signed)


def plus_type(a: FixedType, b: FixedType) -> FixedType:
    """Result type of ``a + b`` in ap_fixed (``RType::plus``): exact, one carry bit."""
    ia = a.integer + (b.signed and not a.signed)
    ib = b.integer + (a.signed and not b.signed)
    integer = max(ia, ib) + 1
    return FixedType(integer + max(a.fractional, b.fractional), integer, a.signed or b.signed)


def multiply(ma, a: FixedType, mb, b: FixedType) -> tuple[np.ndarray, FixedType]:
    """Exact product (mantissa, type) of two fixed-point arrays (broadcasting)."""
    t = product_type(a, b)
    _check_width(t, "product type")
    return _as_mantissa(ma) * _as_mantissa(mb), t


def add(ma, a: FixedType, mb, b: FixedType) -> tuple[np.ndarray, FixedType]:
    """Exact sum (mantissa, type) of two fixed-point arrays (broadcasting)."""
    t = plus_type(a, b)
    _check_width(t, "sum type")
    f = t.fractional
    return (_as_mantissa(ma) << np.int64(f - a.fractional)) + (_as_mantissa(mb) << np.int64(f - b.fractional)), t

