"""``nnet::normalize`` (batch normalisation that hls4ml did not fold), nnet_batchnorm.h.

``res[i] = res_T(product(x[i], scale[k]) + bias[k])`` with ``k = i`` (``n_filt == -1``)
or ``i % n_filt``: the product and the sum are exact (Python integers where int64 is too
narrow), one cast into res_T. Params:
``scale``/``bias`` mantissas and their types, ``index`` (k per element).
"""

from __future__ import annotations

import re

import numpy as np

from emulation.fixed import cast
from emulation.graph import Node
from emulation.layers import widths
from emulation.layers.registry import kernel, reader


@reader("normalize", template_args=3, args=4)
def _read_normalize(call) -> Node:
    data_t, res_t = call.type(call.template_args[0]), call.type(call.template_args[1])
    n = int(call.const("n_in"))
    n_filt = int(call.const("n_filt", -1))
    if n_filt in (-1, 2**32 - 1):
        n_filt = -1
    n_scale = n if n_filt == -1 else n_filt
    product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)", call.text)
    if product is not None and product.group(1) != "mult":
        raise call.fail(f"product {product.group(1)} is not supported (only nnet::product::mult)")
    scale_t, bias_t = call.type("scale_t"), call.type("bias_t")
    scale = call.weights(call.args[2], scale_t, n_scale)
    bias = call.weights(call.args[3], bias_t, n_scale)
    index = np.arange(n) if n_filt == -1 else np.arange(n) % n_filt
    return call.node("normalize", [call.args[0]], call.args[1], [data_t], res_t, n,
                     scale=scale, scale_type=scale_t, bias=bias, bias_type=bias_t, index=index)  # fmt: skip


@kernel("normalize")
def run_normalize(node: Node, xs, counter):
    p = node.params
    data_t = node.input_types[0]
    prod_t = widths.product(data_t, p["scale_type"])
    dtype = widths.holding(widths.plus(prod_t, p["bias_type"]))
    f = max(prod_t.fractional, p["bias_type"].fractional)
    scale, bias = (widths.widened(p[k][p["index"]], dtype) for k in ("scale", "bias"))
    prod = widths.widened(xs[0], dtype) * scale[None, :]
    total = (prod << np.int64(f - prod_t.fractional)) + (
        bias << np.int64(f - p["bias_type"].fractional)
    )[None, :]
    return cast(total, f, node.result_type, counter, node.name)
