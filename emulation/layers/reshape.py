"""Index-only layers: ``nnet::transpose`` (nnet_transpose.h) and zero padding (nnet_padding.h).
Flatten and Reshape write no call in io_parallel (the array is reused as it is), so they need no node.

Both are a gather: params ``index``, the source position of every output element
(-1: a zero), then a cast to res_T. For transpose it is ``transfer_idx`` (from the
config's ``to_shape`` and ``perm_strides``).
"""

from __future__ import annotations

import re

import numpy as np

from emulation.fixed import cast
from emulation.graph import Node
from emulation.layers.registry import kernel, reader


def _array(call, member: str) -> list[int]:
    m = re.search(
        rf"\b{re.escape(call.config_name)}_{member}\s*\[[^\]]*\]\s*=\s*\{{([^}}]*)\}}",
        call.parameters,
    )
    if m is None:
        raise call.fail(f"{call.config_name}_{member} is not defined in parameters.h")
    return [int(v) for v in m.group(1).split(",") if v.strip()]


@reader("transpose", template_args=3, args=2)
def _read_transpose(call) -> Node:
    data_t, res_t = call.type(call.template_args[0]), call.type(call.template_args[1])
    to_shape, strides = _array(call, "to_shape"), _array(call, "perm_strides")
    n = int(np.prod(to_shape))
    out = np.arange(n)
    index = np.zeros(n, dtype=np.int64)
    for size, stride in zip(reversed(to_shape), reversed(strides), strict=True):
        index += (out % size) * stride
        out //= size
    return call.node("gather", [call.args[0]], call.args[1], [data_t], res_t, n, index=index)


@reader("zeropad1d_cl", "zeropad2d_cl", "zeropad1d_cf", "zeropad2d_cf", template_args=3, args=2)
def _read_zeropad(call) -> Node:
    data_t, res_t = call.type(call.template_args[0]), call.type(call.template_args[1])
    c = call.const
    n_chan = int(c("n_chan"))
    if call.function.startswith("zeropad1d"):
        in_h, in_w, top, left = 1, int(c("in_width")), 0, int(c("pad_left"))
        out_h, out_w = 1, int(c("out_width"))
    else:
        in_h, in_w, top, left = (
            int(c("in_height")),
            int(c("in_width")),
            int(c("pad_top")),
            int(c("pad_left")),
        )
        out_h, out_w = int(c("out_height")), int(c("out_width"))
    source = np.arange(in_h * in_w * n_chan)
    if call.function.endswith("_cl"):
        image = np.full((out_h, out_w, n_chan), -1, dtype=np.int64)
        image[top : top + in_h, left : left + in_w, :] = source.reshape(in_h, in_w, n_chan)
    else:
        image = np.full((n_chan, out_h, out_w), -1, dtype=np.int64)
        image[:, top : top + in_h, left : left + in_w] = source.reshape(n_chan, in_h, in_w)
    return call.node(
        "gather", [call.args[0]], call.args[1], [data_t], res_t, image.size, index=image.ravel()
    )


@kernel("gather")
def run_gather(node: Node, xs, counter):
    x = xs[0]
    y = cast(x, node.input_types[0], node.result_type, counter, node.name)
    y = np.concatenate(
        [y, np.zeros((len(x), 1), dtype=np.int64)], axis=1
    )  # index -1: a zero of res_T
    return y[:, node.params["index"]]
