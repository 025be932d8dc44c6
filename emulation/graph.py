"""One graph of a fixed-point network: nodes with exact types, run in order on integer mantissas.

A :class:`Graph` names its input and output variables; each :class:`Node` reads variables
written earlier (any of them, so skip connections and merges are plain) and writes one.
Values are int64 mantissas of shape (events, size): io_parallel arrays are flat, and the
nodes that care about geometry (conv, pooling) carry their shapes in ``params``. Every
node carries the exact types its kernel needs (input types, result type, accumulator,
table and weight types in ``params``); the kernels live in ``emulation.layers`` and are
looked up by ``Node.kind``.

The hls4ml project reader (``emulation.project_graph``) builds these graphs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emulation.fixed import FixedType, OverflowCounter, from_float, to_float

__all__ = ["Graph", "Node", "Port", "run_graph"]


@dataclass(frozen=True)
class Port:
    """A graph input or output: variable name, type, flat size."""

    name: str
    type: FixedType
    size: int


@dataclass(frozen=True, eq=False)
class Node:
    """One layer call: ``output = kind(inputs)`` with exact types.

    ``params`` holds whatever the kind needs: weights as mantissas with their types,
    lookup tables, constants, shapes. Kinds and their params are documented in the
    ``emulation.layers`` module that implements them.
    """

    kind: str
    name: str
    inputs: tuple[str, ...]
    output: str
    input_types: tuple[FixedType, ...]
    result_type: FixedType
    size: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        ins = ", ".join(f"{v}:{t}" for v, t in zip(self.inputs, self.input_types, strict=True))
        return f"{self.kind} {self.name}: ({ins}) -> {self.output}:{self.result_type}[{self.size}]"


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    nodes: tuple[Node, ...]

    def describe(self) -> str:
        ins = ", ".join(f"{p.type}[{p.size}]" for p in self.inputs)
        outs = ", ".join(f"{p.type}[{p.size}]" for p in self.outputs)
        return "\n".join(
            [f"{self.name}: {ins} -> {outs}"] + ["  " + n.describe() for n in self.nodes]
        )

    def run(
        self, inputs: Sequence[np.ndarray], counter: OverflowCounter | None = None
    ) -> list[np.ndarray]:
        """Output mantissas for input mantissas (one (N, size) int64 array per input port)."""
        return run_graph(self, inputs, counter)

    def emulate(
        self, inputs: Sequence[np.ndarray], counter: OverflowCounter | None = None
    ) -> list[np.ndarray]:
        """Float outputs for float inputs, each cast to its input type as the C simulation does."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{self.name} takes {len(self.inputs)} inputs, got {len(inputs)}")
        mantissas = []
        for port, x in zip(self.inputs, inputs, strict=True):
            x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
            if x.shape[1] != port.size:
                raise ValueError(
                    f"input {port.name!r} has {x.shape[1]} values per event, {self.name} expects {port.size}"
                )
            name = "input" if len(self.inputs) == 1 else f"input.{port.name}"
            mantissas.append(from_float(x, port.type, counter, name))
        outs = run_graph(self, mantissas, counter)
        return [to_float(m, p.type) for m, p in zip(outs, self.outputs, strict=True)]


def run_graph(
    graph: Graph, inputs: Sequence[np.ndarray], counter: OverflowCounter | None = None
) -> list[np.ndarray]:
    from emulation.layers import KERNELS

    values: dict[str, np.ndarray] = {}
    for port, m in zip(graph.inputs, inputs, strict=True):
        m = np.asarray(m)
        values[port.name] = (
            m if m.dtype == object else m.astype(np.int64, copy=False)
        )  # object: types over 61 bits
    for node in graph.nodes:
        args = [values[v] for v in node.inputs]
        values[node.output] = KERNELS[node.kind](node, args, counter)
    return [values[p.name] for p in graph.outputs]
