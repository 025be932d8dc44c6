"""Index-only layers: ``nnet::transpose`` (nnet_transpose.h). Flatten and Reshape write no call in
io_parallel (the array is reused as it is), so they need no node.

``transpose`` params: ``index``, the source position of every output element
(``transfer_idx`` of nnet_transpose.h, from the config's ``to_shape`` and ``perm_strides``).
"""

from __future__ import annotations

import re

import numpy as np

from emulation.fixed import cast
from emulation.graph import Node
from emulation.layers.registry import kernel, reader


def _array(call, member: str) -> list[int]:
    m = re.search(rf"\b{re.escape(call.config_name)}_{member}\s*\[[^\]]*\]\s*=\s*\{{([^}}]*)\}}", call.parameters)
    if m is None:
        raise call.fail(f"{call.config_name}_{member} is not defined in parameters.h")
    return [int(v) for v in m.group(1).split(",") if v.strip()]


@reader("transpose")
def _read_transpose(call) -> Node:
    data_t, res_t = call.type(call.template_args[0]), call.type(call.template_args[1])
    to_shape, strides = _array(call, "to_shape"), _array(call, "perm_strides")
    n = int(np.prod(to_shape))
    out = np.arange(n)
    index = np.zeros(n, dtype=np.int64)
    for size, stride in zip(reversed(to_shape), reversed(strides), strict=True):
        index += (out % size) * stride
        out //= size
    return call.node("transpose", [call.args[0]], call.args[1], [data_t], res_t, n, index=index)


@kernel("transpose")
def run_transpose(node: Node, xs, counter):
    return cast(xs[0][:, node.params["index"]], node.input_types[0], node.result_type, counter, node.name)
