"""ap_fixed / ap_ufixed / ap_int / ap_uint arithmetic on integer numpy arrays, vectorised over events.

A fixed-point array is an array of *mantissas* ``m`` plus a :class:`FixedType` ``t``
(the FirmwareSpec's type, ``emulation.spec.FixedType``): the value is
``m * 2**-t.fractional``. Every operation is done on integers, so results are exact by
construction and agree bit for bit with Xilinx ``ap_fixed``/``ap_int`` (checked against
the ``ap_types`` headers hls4ml ships, compiled by g++: tests/test_emulation_fixed.py).

Mantissas of types up to :data:`INT64_WIDTH` = 61 bits live in int64 arrays; wider types
(up to ap_types' 1024 bits) live in object arrays of Python integers, exact but slower.
Every function here picks the representation from the types (``mantissa_dtype``), so
nothing ever wraps silently in int64.

The integer family (``ap_int``/``ap_uint``, ``FixedType.is_integer``) follows ap_types'
C++ integer conversions, not ``ap_fixed<W,W>``:

- from a double, ``ap_int_base(double)``: truncation toward zero, then wrapping; except that
  a double in (-0.5, 0) becomes +1 (its shift-out branch sets -1 and then negates);
- from fixed point, ``to_ap_int_base()``: truncation toward zero, then wrapping; except that a
  signed source with no integer bits (I <= 0) gives -1 for every negative value (the
  one-bit intermediate holds 0, and the "round toward zero" increment wraps it to -1);
  for I < 0 ap_types reads an uninitialised bit, and the emulator gives the I = 0 result;
- into fixed point: exactly as ``ap_fixed<W,W>`` (``ap_fixed_base(const ap_int_base&)``).

Why not an existing package: the emulators we know of either round through floats
(not exact for wide accumulators) or run one value at a time; the trigger emulator
needs vectorised exact integer semantics for all quantisation and overflow modes.

Limits: saturation with ``n_bits`` (the ``N`` of ``ap_fixed<W,I,Q,O,N>``) other than 0
and ``AP_WRAP_SM`` are not supported (hls4ml never writes them). Where ap_types itself
aborts (a cast that drops more fractional bits than the source is wide: "read bit beyond
MSB"), the result here is the mathematically defined one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from emulation.spec import OVERFLOW_MODES, ROUNDING_MODES, FixedType, product_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "INT64_WIDTH",
    "OVERFLOW_MODES",
    "QUANTIZATION_MODES",
    "ROUNDING_MODES",
    "FixedType",
    "OverflowCounter",
    "add",
    "cast",
    "from_float",
    "mantissa_dtype",
    "multiply",
    "plus_type",
    "product_type",
    "to_float",
]

QUANTIZATION_MODES = ROUNDING_MODES
INT64_WIDTH = 61  # widest type whose mantissas (and the shifts and sums below) stay inside int64

# A shift count: one for all elements, or an integer array of one per element.
_Shift = int | np.integer | np.ndarray


def mantissa_dtype(*types: FixedType) -> np.dtype:
    """int64 when every type is at most INT64_WIDTH bits wide, else object (Python integers)."""
    return np.dtype(object) if any(t.width > INT64_WIDTH for t in types) else np.dtype(np.int64)


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

    def report(self) -> pd.DataFrame:
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


def _as_mantissa(m: ArrayLike) -> np.ndarray:
    arr = np.asarray(m)
    if arr.dtype == object:
        return arr
    if arr.dtype.kind not in "iu":
        raise ValueError(f"mantissas must be an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _in_dtype(m: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``m`` as int64 or as Python integers (object); the caller guarantees int64 values fit."""
    return m if m.dtype == dtype else m.astype(dtype)


def _quantize_wide(m: np.ndarray, shift: _Shift, rounding: str) -> np.ndarray:
    """``_quantize`` on Python integers (object arrays): floor, remainder and a tie test."""
    sh = np.asarray(shift).astype(object) if np.ndim(shift) else int(shift)
    floor = m >> sh
    if rounding == "AP_TRN":
        return floor
    rem = m - (floor << sh)
    if rounding == "AP_TRN_ZERO":
        return floor + ((m < 0) & (rem != 0))
    half = 1 << (sh - 1)
    above, tie = rem > half, rem == half
    if rounding == "AP_RND":
        up = above | tie
    elif rounding == "AP_RND_MIN_INF":
        up = above
    elif rounding == "AP_RND_ZERO":
        up = above | (tie & (m < 0))
    elif rounding == "AP_RND_INF":
        up = above | (tie & (m > 0))
    elif rounding == "AP_RND_CONV":
        up = above | (tie & ((floor & 1) == 1))
    else:  # pragma: no cover - FixedType validates modes
        raise ValueError(rounding)
    return floor + up


def _quantize(m: np.ndarray, shift: _Shift, rounding: str) -> np.ndarray:
    """m / 2**shift rounded to an integer with an ap_fixed quantisation mode; shift > 0.

    Each rounding is one biased arithmetic shift: floor((m + bias) / 2**sh), where the
    bias sends exact ties the way the mode wants (e.g. half to even adds the parity of
    floor(m / 2**sh)). ``shift`` may be an int or an int64 array.
    """
    if m.dtype == object:
        return _quantize_wide(m, shift, rounding)
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


def _overflow(
    q: np.ndarray, dst: FixedType, counter: OverflowCounter | None, name: str | None
) -> np.ndarray:
    """Overflow handling of quantised mantissas q (already in dst's LSB; |q| < 2**62 in int64).

    Returns dst's mantissa dtype (``mantissa_dtype(dst)``).
    """
    lo, hi = _bounds(dst)
    dtype = mantissa_dtype(dst)
    q = np.asarray(q)
    if dtype != np.int64:
        q = _in_dtype(q, dtype)
    if q.size == 0 or (q.min() >= lo and q.max() <= hi):  # the common case: two reductions
        if counter is not None:
            counter.record(name or "cast", 0, q.size)
        return _in_dtype(q, dtype)
    bad = (q < lo) | (q > hi)
    if counter is not None:
        counter.record(name or "cast", int(np.count_nonzero(bad)), bad.size)
    if dst.overflow == "AP_WRAP":
        mask: int | np.int64 = (1 << dst.width) - 1
        span: int | np.int64 = 1 << dst.width
        if q.dtype != object:
            mask, span = np.int64(mask), np.int64(span)
        v = q & mask
        if dst.signed:
            v = np.where(v > hi, v - span, v)
        return _in_dtype(v, dtype)
    if dst.overflow == "AP_SAT_ZERO":
        return _in_dtype(np.where(bad, 0, q), dtype)
    return _in_dtype(np.minimum(np.maximum(q, lo), hi), dtype)


def _convert(
    m: np.ndarray, shift: _Shift, dst: FixedType, counter: OverflowCounter | None, name: str | None
) -> np.ndarray:
    """Value ``m * 2**-shift`` (in units of dst's LSB) into dst's mantissa, with dst's modes.

    ``shift`` may be an int or an int64 array (one per element, as for doubles).
    """
    if m.dtype == object:
        if np.ndim(shift) == 0 and int(shift) <= 0:
            return _overflow(m << -int(shift), dst, counter, name)
        if np.ndim(shift):
            shift = np.asarray(shift).astype(object)
            pos = shift > 0
            q = np.where(
                pos,
                _quantize_wide(m, np.where(pos, shift, 1), dst.rounding),
                m << np.where(pos, 0, -shift),
            )
            return _overflow(q, dst, counter, name)
        return _overflow(_quantize_wide(m, shift, dst.rounding), dst, counter, name)
    if dst.width > INT64_WIDTH:
        return _convert(m.astype(object), shift, dst, counter, name)
    if np.ndim(shift) == 0:
        shift = int(shift)
        if shift > 0:
            return _overflow(_quantize(m, shift, dst.rounding), dst, counter, name)
        if shift == 0:
            return _overflow(m, dst, counter, name)
        k: int | np.ndarray = -shift
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
        counter.record(name or "cast", int(np.count_nonzero(bad)), bad.size)
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
    return np.where(over, np.int64(hi), np.where(under, np.int64(lo), inside)).astype(
        np.int64, copy=False
    )


def _int_source(m: np.ndarray, source: FixedType, dst: FixedType) -> np.ndarray:
    """ap_types' fixed -> ap_int rule for signed sources without integer bits: negatives read -1.

    (``to_ap_int_base`` keeps a one-bit integer part, 0, and its round-toward-zero
    increment wraps it to -1.) Other sources need nothing: truncation toward zero is
    dst's AP_TRN_ZERO.
    """
    if not (dst.is_integer and source.signed and source.integer <= 0):
        return m
    minus_one = -(1 << source.fractional)
    if m.dtype != object and source.fractional > 62:
        m = m.astype(object)
    return np.where(m < 0, minus_one if m.dtype == object else np.int64(minus_one), m)


def cast(
    mantissa: ArrayLike,
    source: int | FixedType,
    dst: FixedType,
    counter: OverflowCounter | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Assign values of type ``source`` (or with ``source`` fractional bits) to ``dst``, as ap_types' ``operator=``.

    With only fractional bits, the mantissas must be int64 below 2**61 or Python integers.

    The source is exact (any ap_fixed/ap_int type: its own modes do not matter);
    quantisation then overflow handling follow ``dst``'s modes (for an ap_int ``dst``:
    truncation toward zero and wrapping). Given the source type, a cast that cannot round
    or overflow is a plain shift. Returns ``mantissa_dtype(dst)``.
    """
    m = _as_mantissa(mantissa)
    if isinstance(source, FixedType):
        m = _in_dtype(_int_source(m, source, dst), mantissa_dtype(source))
        shift = dst.fractional - source.fractional
        if (
            shift >= 0
            and (source.min_int << shift) >= dst.min_int
            and (source.max_int << shift) <= dst.max_int
        ):
            if counter is not None:
                counter.record(name or "cast", 0, m.size)
            m = _in_dtype(m, mantissa_dtype(dst))
            return m << (shift if m.dtype == object else np.int64(shift)) if shift else m
        source = source.fractional
    return _convert(m, int(source) - dst.fractional, dst, counter, name)


_DOUBLE_TO_INT_ODD = 1.0  # what ap_int_base(double) gives for -0.5 < x < 0 (before wrapping)


def _ap_int_from_double(x: np.ndarray) -> np.ndarray:
    """The doubles ``ap_int_base(double)`` effectively truncates: (-0.5, 0) read as +1 (see module doc)."""
    odd = (x < 0) & (x > -0.5)
    return np.where(odd, _DOUBLE_TO_INT_ODD, x) if odd.any() else x


def from_float(
    values: ArrayLike,
    dst: FixedType,
    counter: OverflowCounter | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Mantissas of ``dst(double(x))``: ap_fixed's or ap_int's constructor from double, exactly.

    The double's exact binary value is quantised and overflow-handled with dst's modes
    (float32 inputs are widened to double first, as ap_fixed(float) does; ap_int(float)
    gives the same). NaN and infinities raise ``ValueError`` (ap_types gives them no
    defined value).
    """
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot convert NaN or infinite values to fixed point")
    if dst.is_integer:
        x = _ap_int_from_double(x)
    with np.errstate(over="ignore"):
        y = x * 2.0**dst.fractional  # exact unless it overflows or (F < 0) underflows
    if y.size == 0 or (
        max(y.max(), -y.min()) < 2.0**52 and (dst.fractional >= 0 or np.abs(y).min() >= 2.0**-1000)
    ):
        return _overflow(_round_float(y, dst.rounding), dst, counter, name)
    ay = np.abs(y)
    fast = (ay < 2.0**52) & ((ay >= 2.0**-1000) | (x == 0))
    out = np.empty(x.shape, dtype=mantissa_dtype(dst))
    sub = OverflowCounter() if counter is not None else None
    out[fast] = _overflow(_round_float(y[fast], dst.rounding), dst, sub, name)
    slow = x[~fast]
    frac, exp = np.frexp(slow)
    man = np.ldexp(frac, 53).astype(np.int64)  # exact: |man| < 2**53
    shift = 53 - exp.astype(np.int64) - dst.fractional
    if dst.width > INT64_WIDTH:
        man = man.astype(object)
    out[~fast] = _convert(man, shift, dst, sub, name)
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


def to_float(mantissa: ArrayLike, t: FixedType | int) -> np.ndarray:
    """float64 values of mantissas (exact for widths up to 53 bits, rounded to nearest beyond), as ap_types' ``double(x)``.

    That conversion is exact (then rounded) except for ``ap_int``/``ap_uint`` wider than 64
    bits, which it reads through their lowest 64-bit word only (as a C ``int64``/``uint64``):
    the C simulation's outputs of such types hold that, and so does this.
    """
    frac = t if isinstance(t, int | np.integer) else t.fractional
    m = _as_mantissa(mantissa)
    if isinstance(t, FixedType) and t.is_integer and t.width > 64:
        word = np.asarray(m, dtype=object) & ((1 << 64) - 1)
        m = np.where(word >= 1 << 63, word - (1 << 64), word) if t.signed else word
    if m.dtype == object:  # Python integers: ldexp each exactly, then one rounding to double
        return np.array([float(v) for v in m.ravel()], dtype=np.float64).reshape(
            m.shape
        ) * 2.0 ** -int(frac)
    return m.astype(np.float64) * 2.0 ** -int(frac)


def plus_type(a: FixedType, b: FixedType) -> FixedType:
    """Result type of ``a + b`` in ap_fixed (``RType::plus``): exact, one carry bit."""
    ia = a.integer + (b.signed and not a.signed)
    ib = b.integer + (a.signed and not b.signed)
    integer = max(ia, ib) + 1
    return FixedType(integer + max(a.fractional, b.fractional), integer, a.signed or b.signed)


def multiply(
    ma: ArrayLike, a: FixedType, mb: ArrayLike, b: FixedType
) -> tuple[np.ndarray, FixedType]:
    """Exact product (mantissa, type) of two fixed-point arrays (broadcasting)."""
    t = product_type(a, b)
    dtype = mantissa_dtype(t)
    return _in_dtype(_as_mantissa(ma), dtype) * _in_dtype(_as_mantissa(mb), dtype), t


def add(ma: ArrayLike, a: FixedType, mb: ArrayLike, b: FixedType) -> tuple[np.ndarray, FixedType]:
    """Exact sum (mantissa, type) of two fixed-point arrays (broadcasting)."""
    t = plus_type(a, b)
    dtype = mantissa_dtype(t)
    f = t.fractional
    sa: int | np.int64 = f - a.fractional
    sb: int | np.int64 = f - b.fractional
    if dtype == np.int64:
        sa, sb = np.int64(sa), np.int64(sb)
    return (_in_dtype(_as_mantissa(ma), dtype) << sa) + (
        _in_dtype(_as_mantissa(mb), dtype) << sb
    ), t
