"""hls4ml's activation lookup tables, computed as ``nnet_activation.h`` initialises them.

The tables are filled at run time by float code (``init_sigmoid_table`` and friends):
``float`` arguments, the C library's ``expf``/``tanh``, and a final conversion to
``table_t``. Reproducing them bit for bit needs the same float32 roundings in the same
places and the same C library, so this module calls libm through ctypes and rounds
to float32 exactly where the C++ does. Each function documents the C++ it follows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np

from emulation.fixed import FixedType, _convert, from_float, mantissa_dtype

__all__ = [
    "elu_table",
    "exp_table",
    "exp_table_legacy",
    "invert_table",
    "invert_table_legacy",
    "selu_table",
    "sigmoid_table",
    "softplus_table",
    "softsign_table",
    "tanh_table",
    "to_table_type",
]


@functools.cache
def _libm():
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name, ctype in (("expf", ctypes.c_float), ("tanhf", ctypes.c_float), ("exp", ctypes.c_double),
                        ("tanh", ctypes.c_double), ("log", ctypes.c_double)):  # fmt: skip
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ctype, [ctype]
    return lib


def _f32(x: float) -> float:
    """Round a double to float32 (a C ``float`` assignment)."""
    return float(np.float32(x))


def to_table_type(values: list[float], t: FixedType) -> np.ndarray:
    """Mantissas of ``table_t(v)`` for doubles v, infinities as ap_fixed's constructor treats them.

    ap_fixed reads +-inf as +-2**1024 (implicit mantissa bit, maximal exponent): it
    saturates or wraps (to 0) like any too-large value.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.empty(v.shape, dtype=mantissa_dtype(t))
    finite = np.isfinite(v)
    out[finite] = from_float(v[finite], t)
    for i in np.flatnonzero(~finite):
        m = np.array([1 << 52 if v[i] > 0 else -(1 << 52)], dtype=np.int64)
        out[i] = _convert(m, -(1024 - 52) - t.fractional, t, None, None)[0]
    return out


def _sym_in_val(ii: int, n: int, half_range: float) -> float:
    """``float in_val = 2 * R * (ii - float(N) / 2.0) / float(N)`` (double maths, float result)."""
    return _f32(2 * half_range * (ii - float(n) / 2.0) / float(n))


def sigmoid_table(n: int, t: FixedType) -> np.ndarray:
    """``init_sigmoid_table``: ``float(1.0 / (1 + std::exp(-in_val)))``, exp and the sum in float."""
    m = _libm()
    vals = []
    for ii in range(n):
        x = _sym_in_val(ii, n, 8.0)
        denominator = _f32(1.0 + m.expf(-x))
        vals.append(_f32(1.0 / denominator))
    return to_table_type(vals, t)


def tanh_table(n: int, t: FixedType) -> np.ndarray:
    """``init_tanh_table``: ``table_t(tanh(in_val))`` with the float overload (``tanhf``; checked against g++)."""
    m = _libm()
    return to_table_type([m.tanhf(_sym_in_val(ii, n, 4.0)) for ii in range(n)], t)


def softplus_table(n: int, t: FixedType) -> np.ndarray:
    """``init_softplus_table``: ``float(std::log(std::exp(in_val) + 1.))`` (expf, then double log)."""
    m = _libm()
    return to_table_type([_f32(m.log(m.expf(_sym_in_val(ii, n, 8.0)) + 1.0)) for ii in range(n)], t)


def softsign_table(n: int, t: FixedType) -> np.ndarray:
    """``init_softsign_table``: ``float(in_val / (std::abs(in_val) + 1.))`` in double."""
    vals = []
    for ii in range(n):
        x = _sym_in_val(ii, n, 8.0)
        vals.append(_f32(x / (abs(x) + 1.0)))
    return to_table_type(vals, t)


def elu_table(n: int, t: FixedType) -> np.ndarray:
    """``init_elu_table``: ``in_val = float(-8.0 * ii / N)``, ``float(std::exp(in_val) - 1.)``."""
    m = _libm()
    return to_table_type([_f32(m.expf(_f32(-8.0 * ii / float(n))) - 1.0) for ii in range(n)], t)


SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def selu_table(n: int, t: FixedType) -> np.ndarray:
    """``init_selu_table``: ``float(lambda * (alpha * (std::exp(in_val) - 1.)))`` in double after expf."""
    m = _libm()
    vals = [
        _f32(SELU_LAMBDA * (SELU_ALPHA * (m.expf(_f32(-8.0 * ii / float(n))) - 1.0)))
        for ii in range(n)
    ]
    return to_table_type(vals, t)


def ceillog2(x: int) -> int:
    """nnet_helpers.h ``ceillog2``."""
    return 1 if x <= 2 else 1 + ceillog2((x + 1) // 2)


def real_val_from_idx(i: int, data_t: FixedType, n: int) -> float:
    """``softmax_real_val_from_idx``: data_T with its top ceillog2(n) bits set to i, as float."""
    bits = ceillog2(n)
    raw = (i << (data_t.width - bits)) & ((1 << data_t.width) - 1)
    if data_t.signed and raw >= 1 << (data_t.width - 1):
        raw -= 1 << data_t.width
    return _f32(math.ldexp(raw, -data_t.fractional))


def exp_table(
    n: int, data_t: FixedType, exp_scale: float, t: FixedType, negative: bool
) -> np.ndarray:
    """``init_exp_table``: ``float x = real_val(i) * exp_scale`` (float product), negated, ``expf``."""
    m = _libm()
    vals = []
    for i in range(n):
        x = _f32(real_val_from_idx(i, data_t, n) * _f32(exp_scale))
        vals.append(m.expf(-x if negative else x))
    return to_table_type(vals, t)


def invert_table(n: int, data_t: FixedType, t: FixedType) -> np.ndarray:
    """``init_invert_table``: ``inv_table_t(1 / x)`` in float (x = 0 gives +inf)."""
    vals = []
    for i in range(n):
        x = real_val_from_idx(i, data_t, n)
        vals.append(_f32(1.0 / x) if x != 0 else math.inf)
    return to_table_type(vals, t)


def exp_table_legacy(n: int, t: FixedType) -> np.ndarray:
    """``init_exp_table_legacy``: ``table_t(expf(in_val))`` on the sigmoid grid."""
    m = _libm()
    return to_table_type([m.expf(_sym_in_val(ii, n, 8.0)) for ii in range(n)], t)


def invert_table_legacy(n: int, t: FixedType) -> np.ndarray:
    """``init_invert_table_legacy``: ``in_val = float(64.0 * ii / N)``, ``table_t(1.0 / in_val)`` in double."""
    vals = []
    for ii in range(n):
        x = _f32(64.0 * ii / float(n))
        vals.append(1.0 / x if x > 0.0 else 0.0)
    return to_table_type(vals, t)
