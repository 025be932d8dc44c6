"""Pooling as ``nnet_pooling.h`` computes it (io_parallel, channels last).

Max: the largest input (padding cells hold ``pad_val``: the data type with only its top
bit set, which for a signed type is its minimum) cast to accum_t, then to res_T.
Average: ``accum_t y = 0; y += x[i]`` over the whole window (padding adds 0), each step
cast to accum_t, then ``y /= patch_size`` (truncating towards zero, in accum_t's LSB; the
cells that overlap the image unless ``count_pad``), then cast to res_T.
Params: ``windows`` (out pixels * channels, window) input indices with -1 for padding,
``divisor`` per output, ``op`` ("max" or "average"), ``accum_type``.
"""

from __future__ import annotations

import numpy as np

from emulation.fixed import FixedType, cast, mantissa_dtype
from emulation.graph import Node
from emulation.layers import widths
from emulation.layers.activation import trunc_div
from emulation.layers.registry import kernel, reader


def pool_windows(
    in_shape, n_filt, pool, stride, pad, count_pad: bool
) -> tuple[np.ndarray, np.ndarray]:
    (ih, iw), (ph, pw), (sh, sw), (pt, pb, pl, pr) = in_shape, pool, stride, pad
    full_h, full_w = ih + pt + pb, iw + pl + pr
    rows = list(range(0, (full_h - ph) // sh * sh + 1, sh))
    cols = list(range(0, (full_w - pw) // sw * sw + 1, sw))
    windows, divisors = [], []
    for ii in rows:
        for jj in cols:
            for ff in range(n_filt):
                win, overlap = [], 0
                for kk in range(ph):
                    for ll in range(pw):
                        y, x = ii + kk - pt, jj + ll - pl
                        if 0 <= y < ih and 0 <= x < iw:
                            win.append((y * iw + x) * n_filt + ff)
                            overlap += 1
                        else:
                            win.append(-1)
                windows.append(win)
                divisors.append(ph * pw if count_pad else overlap)
    return np.array(windows, dtype=np.int64), np.array(divisors, dtype=np.int64)


@reader(
    "pooling1d_cl",
    "pooling2d_cl",
    "global_pooling1d_cl",
    "global_pooling2d_cl",
    template_args=3,
    args=2,
)
def _read_pooling(call) -> Node:
    data_t, res_t = call.type(call.template_args[0]), call.type(call.template_args[1])
    c = call.const
    op = str(c("pool_op")).lower()
    if op not in ("max", "average"):
        raise call.fail(f"pool_op {op!r} is not supported (Max and Average are)")
    n_filt = int(c("n_filt"))
    if call.function == "pooling1d_cl":
        in_shape, pool, stride = (
            (1, int(c("n_in"))),
            (1, int(c("pool_width"))),
            (1, int(c("stride_width"))),
        )
        pad = (0, 0, int(c("pad_left", 0)), int(c("pad_right", 0)))
    elif call.function == "pooling2d_cl":
        in_shape = (int(c("in_height")), int(c("in_width")))
        pool, stride = (
            (int(c("pool_height")), int(c("pool_width"))),
            (int(c("stride_height")), int(c("stride_width"))),
        )
        pad = (
            int(c("pad_top", 0)),
            int(c("pad_bottom", 0)),
            int(c("pad_left", 0)),
            int(c("pad_right", 0)),
        )
    elif call.function == "global_pooling1d_cl":
        in_shape = (1, int(c("n_in")))
        pool, stride, pad = in_shape, in_shape, (0, 0, 0, 0)
    else:
        in_shape = (int(c("in_height")), int(c("in_width")))
        pool, stride, pad = in_shape, in_shape, (0, 0, 0, 0)
    count_pad = str(c("count_pad", "false")).lower() == "true"
    windows, divisors = pool_windows(in_shape, n_filt, pool, stride, pad, count_pad)
    return call.node("pooling", [call.args[0]], call.args[1], [data_t], res_t, len(windows),
                     windows=windows, divisors=divisors, op=op, accum_type=call.type("accum_t"),
                     geometry=dict(in_shape=in_shape, n_filt=n_filt, pool=pool, stride=stride, pad=pad))  # fmt: skip


def pad_value(t: FixedType, op: str) -> int:
    """``pad_val``: for max, the word with only its top bit set (as the type reads it); else 0."""
    if op != "max":
        return 0
    return -(1 << (t.width - 1)) if t.signed else 1 << (t.width - 1)


@kernel("pooling")
def run_pooling(node: Node, xs, counter):
    p = node.params
    t, acc_t = node.input_types[0], p["accum_type"]
    x = xs[0]
    pad = np.full((len(x), 1), pad_value(t, p["op"]), dtype=mantissa_dtype(t))
    win = np.concatenate([x, pad], axis=1)[:, p["windows"]]  # (events, outputs, window)
    if p["op"] == "max":
        return cast(cast(win.max(axis=2), t, acc_t), acc_t, node.result_type, counter, node.name)
    dtype = widths.holding(widths.plus(acc_t, t))
    win = widths.widened(win, dtype)
    y = np.zeros(win.shape[:2], dtype=dtype)
    for k in range(win.shape[2]):
        y = cast((widths.widened(y, dtype) << np.int64(max(t.fractional - acc_t.fractional, 0))) + (win[:, :, k] << np.int64(max(acc_t.fractional - t.fractional, 0))),
                 max(t.fractional, acc_t.fractional), acc_t)  # fmt: skip
    y = trunc_div(y, p["divisors"])
    return cast(y, acc_t, node.result_type, counter, node.name)
