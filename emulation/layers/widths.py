"""Widths of exact intermediate results (ap_fixed's RType rules), without FixedType's width limit.

Readers use them to refuse, with a clear message, a layer whose exact intermediate
results would not fit the emulator's int64 arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

from emulation.fixed import FixedType


class Bits(NamedTuple):
    width: int
    integer: int
    signed: bool

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
    return Bits(integer + max(a.width - a.integer, b.width - b.integer), integer, a.signed or b.signed)
