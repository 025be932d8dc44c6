"""Widths of exact intermediate results (ap_fixed's RType rules), without FixedType's width limit.

Kernels compute every product, sum and comparison exactly. Where such an intermediate
fits :data:`~emulation.fixed.INT64_WIDTH` bits they use int64 (fast); where it does
not, :func:`holding` says so and :func:`widened` moves the operands to Python integers
(object arrays), so that nothing ever wraps silently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from emulation.fixed import INT64_WIDTH, FixedType


class Bits(NamedTuple):
    width: int
    integer: int
    signed: bool

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @classmethod
    def of(cls, t: FixedType | Bits) -> Bits:
        return cls(t.width, t.integer, t.signed)


def product(a: FixedType | Bits, b: FixedType | Bits) -> Bits:
    a, b = Bits.of(a), Bits.of(b)
    return Bits(a.width + b.width, a.integer + b.integer, a.signed or b.signed)


def plus(a: FixedType | Bits, b: FixedType | Bits) -> Bits:
    a, b = Bits.of(a), Bits.of(b)
    ia = a.integer + (b.signed and not a.signed)
    ib = b.integer + (a.signed and not b.signed)
    integer = max(ia, ib) + 1
    return Bits(
        integer + max(a.width - a.integer, b.width - b.integer), integer, a.signed or b.signed
    )


def holding(*results: FixedType | Bits) -> np.dtype:
    """The mantissa dtype that holds these exact intermediates: int64 when all fit, else object."""
    return np.dtype(object) if any(t.width > INT64_WIDTH for t in results) else np.dtype(np.int64)


def widened(m, dtype: np.dtype) -> np.ndarray:
    """``m`` in ``dtype`` (int64 becomes Python integers when asked; Python integers stay as they are)."""
    m = np.asarray(m)
    return m if m.dtype == dtype or m.dtype == object else m.astype(dtype)
