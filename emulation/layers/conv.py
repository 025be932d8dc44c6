"""``nnet::conv_1d_cl`` and ``nnet::conv_2d_cl`` (channels last), Latency and Resource, and
their pointwise forms (kernel 1: ``pointwise_conv_1d_cl``, ``pointwise_conv_2d_cl``).

Both kernels (nnet_conv1d_latency.h / nnet_conv2d_resource.h ...) fill a buffer with
the receptive field of every output pixel (``fill_buffer``: position-major, channels
inner, zeros where the window overlaps the padding), then run a dense layer of
``filt_height * filt_width * n_chan`` inputs and ``n_filt`` outputs on each pixel, with
the same casts as ``nnet::dense``: products to accum_t, the bias first, a running sum in
accum_t, one cast to res_T. The Resource kernel adds in the order of
``dense_resource_rf_leq_nin`` (``emulation.layers.dense``). So a conv node is an im2col
gather (``params["columns"]``: input index per (pixel, tap), -1 for padding) followed by
the dense arithmetic (``params`` as for a dense node).

The pointwise forms dispatch to the same kernels, or (a 1D Latency layer with a single
partition) to ``BatchedDenseForConv1D``, whose ``pointwise_conv_1d_latency_cl`` makes the
same products (to accum_t), starts from the bias and adds the channels in order: the
same dense arithmetic on every pixel.
"""

from __future__ import annotations

import re

import numpy as np

from emulation.graph import Node
from emulation.layers.dense import cannot_saturate, dense_apply, resource_params
from emulation.layers.registry import kernel, reader


def im2col(in_shape: tuple[int, int], n_chan: int, filt: tuple[int, int], stride: tuple[int, int],
           pad: tuple[int, int], dilation: tuple[int, int], out_shape: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """(pixels, taps) input indices of a channels-last image, -1 where the tap is padding."""
    (ih, iw), (fh, fw), (sh, sw), (pt, pl), (dh, dw), (oh, ow) = (
        in_shape,
        filt,
        stride,
        pad,
        dilation,
        out_shape,
    )
    cols = np.full((oh * ow, fh * fw * n_chan), -1, dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(fh):
                for kx in range(fw):
                    y, x = oy * sh + ky * dh - pt, ox * sw + kx * dw - pl
                    if 0 <= y < ih and 0 <= x < iw:
                        tap = (ky * fw + kx) * n_chan
                        cols[oy * ow + ox, tap : tap + n_chan] = (y * iw + x) * n_chan + np.arange(
                            n_chan
                        )
    return cols


_KERNELS = {"Conv1DLatency": "latency", "Conv2DLatency": "latency", "BatchedDenseForConv1D": "latency",
            "Conv1DResource": "resource", "Conv2DResource": "resource"}  # fmt: skip


@reader(
    "conv_1d_cl",
    "conv_2d_cl",
    "pointwise_conv_1d_cl",
    "pointwise_conv_2d_cl",
    template_args=3,
    args=4,
)
def _read_conv(call) -> Node:
    targs = call.template_args
    data_t, res_t = call.type(targs[0]), call.type(targs[1])
    c = call.const
    two_d = call.function.endswith("conv_2d_cl")
    if two_d:
        in_shape, filt = (
            (int(c("in_height")), int(c("in_width"))),
            (int(c("filt_height")), int(c("filt_width"))),
        )
        stride, pad = (
            (int(c("stride_height")), int(c("stride_width"))),
            (int(c("pad_top")), int(c("pad_left"))),
        )
        dilation = (int(c("dilation_height", 1)), int(c("dilation_width", 1)))
        out_shape = (int(c("out_height")), int(c("out_width")))
    else:
        in_shape, filt = (1, int(c("in_width"))), (1, int(c("filt_width")))
        stride, pad = (1, int(c("stride_width"))), (0, int(c("pad_left")))
        dilation, out_shape = (1, int(c("dilation", 1))), (1, int(c("out_width")))
    n_chan, n_filt = int(c("n_chan")), int(c("n_filt"))
    if call.function.startswith("pointwise") and filt != (1, 1):
        raise call.fail(
            f"a pointwise convolution needs a 1-wide filter, the config has {filt[0]}x{filt[1]}"
        )
    n_taps = filt[0] * filt[1] * n_chan
    alias = re.search(r"using\s+conv_kernel\s*=\s*([\w:]+)", call.text)
    if alias is not None:
        name = alias.group(1).split("::")[-1]
        if name not in _KERNELS:
            raise call.fail(
                f"conv kernel {alias.group(1)} is not supported (Latency and Resource are)"
            )
        strategy = _KERNELS[name]
    else:
        strategy = str(c("strategy", "latency"))
        if strategy not in ("latency", "resource"):
            raise call.fail(
                f"conv strategy {strategy!r} is not supported (latency and resource are)"
            )
    w_t, b_t, acc_t = call.type("weight_t"), call.type("bias_t"), call.type("accum_t")
    flat = call.weights(call.args[2], w_t, n_taps * n_filt)
    bias = call.weights(call.args[3], b_t, n_filt)
    params = dict(weight_type=w_t, bias=bias, bias_type=b_t, accum_type=acc_t, strategy=strategy, weight_flat=flat,
                  columns=im2col(in_shape, n_chan, filt, stride, pad, dilation, out_shape), n_filt=n_filt,
                  geometry=dict(in_shape=in_shape, n_chan=n_chan, filt=filt, stride=stride, pad=pad, dilation=dilation,
                                out_shape=out_shape))  # fmt: skip
    if strategy == "latency":
        params["weight"] = flat.reshape(n_taps, n_filt)
    else:
        rf = int(c("reuse_factor", 1))
        params.update(resource_params(flat, n_taps, n_filt, rf, "rf_leq_nin", call.fail))
        params["order_free"] = cannot_saturate(data_t, params["weight"], w_t, bias, b_t, acc_t)
    n_pixels = out_shape[0] * out_shape[1]
    return call.node(
        "conv", [call.args[0]], call.args[1], [data_t], res_t, n_pixels * n_filt, **params
    )


def gather_patches(x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The im2col gather: (events * pixels, taps) of ``x`` (events, inputs) by ``columns``
    (pixels, taps; input index, -1 for a zero)."""
    padded = np.concatenate([x, np.zeros((len(x), 1), dtype=x.dtype)], axis=1)  # index -1: a zero
    return padded[:, columns].reshape(-1, columns.shape[1])


@kernel("conv")
def run_conv(node: Node, xs, counter):
    p = node.params
    x = xs[0]
    patches = gather_patches(x, p["columns"])
    y = dense_apply(
        patches, node.input_types[0], p, node.result_type, p["n_filt"], counter, node.name
    )
    return y.reshape(len(x), -1)
