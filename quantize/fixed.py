"""Exact ap_fixed casts on integer mantissas (numpy, vectorised over events).

``quantize`` needs the score's fixed-point semantics to place the thresholds and to
score the quantized pair, and may not import ``emulation`` (imports run
``emulation`` -> ``quantize``); this is the small part it needs: a value of type
``T`` is held as its int64 mantissa ``value * 2**T.fractional``.
"""

from __future__ import annotations

import numpy as np

from quantize.spec import FixedType

__all__ = ["cast", "from_float", "to_float"]

_MAX_EXACT_WIDTH = 62  # int64 mantissas with room for one addition


def from_float(values: np.ndarray, ftype: FixedType) -> np.ndarray:
    """Mantissas of values that lie on ``ftype``'s grid (raises if one does not)."""
    values = np.asarray(values, dtype=np.float64)
    if not ftype.on_grid(values).all():
        raise ValueError(f"values are not on the grid of {ftype}")
    return np.ldexp(values, ftype.fractional).astype(np.int64)


def to_float(mantissa: np.ndarray, ftype: FixedType) -> np.ndarray:
    return np.ldexp(np.asarray(mantissa, dtype=np.float64), -ftype.fractional)


def _shift_right(m: np.ndarray, s: int, rounding: str) -> np.ndarray:
    """``m / 2**s`` rounded to an integer with an ap_fixed quantization mode (s > 0)."""
    floor = m >> s
    rem = m - (floor << s)  # in [0, 2**s)
    half = np.int64(1) << (s - 1)
    if rounding == "AP_TRN":
        return floor
    if rounding == "AP_TRN_ZERO":
        return np.where((m < 0) & (rem != 0), floor + 1, floor)
    up = rem > half
    tie = rem == half
    if rounding == "AP_RND":  # half towards +inf
        return floor + (up | tie)
    if rounding == "AP_RND_MIN_INF":  # half towards -inf
        return floor + up
    if rounding == "AP_RND_ZERO":  # half towards zero
        return floor + (up | (tie & (m < 0)))
    if rounding == "AP_RND_INF":  # half away from zero
        return floor + (up | (tie & (m >= 0)))
    if rounding == "AP_RND_CONV":  # half to even
        return floor + (up | (tie & (floor & 1 == 1)))
    raise ValueError(f"unknown rounding mode {rounding!r}")


def cast(mantissa: np.ndarray, fractional: int, ftype: FixedType) -> np.ndarray:
    """Cast values with ``fractional`` bits (int64 mantissas) to ``ftype``, as ap_fixed assignment does."""
    if ftype.width > _MAX_EXACT_WIDTH:
        raise ValueError(f"{ftype} is wider than {_MAX_EXACT_WIDTH} bits, beyond exact int64 arithmetic")
    m = np.asarray(mantissa, dtype=np.int64)
    s = fractional - ftype.fractional
    if s > 0:
        m = _shift_right(m, s, ftype.rounding)
    elif s < 0:
        m = m << -s
    lo, hi = ftype.min_int, ftype.max_int
    if ftype.overflow == "AP_WRAP":
        span = np.int64(1) << ftype.width
        m = (m - lo) % span + lo
    elif ftype.overflow == "AP_SAT":
        m = np.clip(m, lo, hi)
    elif ftype.overflow == "AP_SAT_SYM":
        m = np.clip(m, -hi if ftype.signed else 0, hi)
    elif ftype.overflow == "AP_SAT_ZERO":
        m = np.where((m < lo) | (m > hi), 0, m)
    else:
        raise ValueError(f"unknown overflow mode {ftype.overflow!r}")
    return m.astype(np.int64)
