"""A FirmwareSpec score network as an :class:`~emulation.graph.Graph`: the nodes the emulator runs.

Each dense layer becomes hls4ml's two calls, a ``dense`` node (Latency strategy: every product
cast to the accumulator, added in input order, cast to ``result``) and its activation node
(``relu`` or ``linear``, cast to ``activation_result``), the same node kinds the hls4ml project
reader (:mod:`emulation.project_graph`) builds, so one executor (:func:`emulation.graph.run_graph`
and :class:`emulation.float_path.FloatGraph`) runs both. The score reduction after the network
is :mod:`emulation.trigger`'s.
"""

from __future__ import annotations

import numpy as np

from emulation.fixed import from_float
from emulation.graph import Graph, Node, Port
from emulation.spec import FirmwareSpec, weight_key
from offline.events.schema import N_FEATURES

__all__ = ["network_graph"]

INPUT_NAME = "x"


def network_graph(spec: FirmwareSpec, index: int, weights: dict[str, np.ndarray]) -> Graph:
    """Score network ``index`` (0 or 1) of ``spec`` with its weights as mantissas (checked elsewhere:
    :func:`emulation.spec.check_weights`)."""
    network = spec.autoencoders[index]
    nodes: list[Node] = []
    var, t = INPUT_NAME, spec.input
    for k, d in enumerate(network.layers):
        w = from_float(
            np.asarray(weights[weight_key(index, k, "weight")], dtype=np.float64).T, d.weight
        )
        if d.bias is None:  # no bias: zeros that enter the accumulator exactly
            b, b_t = np.zeros(d.n_out, dtype=np.int64), d.accumulator
        else:
            key = weight_key(index, k, "bias")
            b, b_t = from_float(np.asarray(weights[key], dtype=np.float64), d.bias), d.bias
        w = np.ascontiguousarray(w)
        params = dict(weight=w, weight_flat=w.ravel(), weight_type=d.weight, bias=b, bias_type=b_t,
                      accum_type=d.accumulator, strategy="latency")  # fmt: skip
        out = f"{d.name}_out"
        nodes.append(Node("dense", d.name, (var,), out, (t,), d.result, d.n_out, params))
        act = f"{d.name}_{d.activation}"
        nodes.append(
            Node(d.activation, act, (out,), f"{act}_out", (d.result,), d.activation_result, d.n_out)
        )
        var, t = f"{act}_out", d.activation_result
    inputs = (Port(INPUT_NAME, spec.input, N_FEATURES),)
    outputs = (Port(var, t, network.layers[-1].n_out),)
    return Graph(network.name, inputs, outputs, tuple(nodes))
