"""Read an hls4ml io_parallel project into an :class:`~emulation.graph.Graph`: any layer graph.

The top function's ``nnet::`` calls are read in order as a dataflow graph on variable
names: a call reads the arrays named by its input arguments (the top function's inputs
or any earlier call's output) and writes its output array. The text is read by
``emulation.hls_project.read_project_text`` (the front end the dense-chain reader uses
too, so every hls4ml layout it reads is read here). Each call's config struct (falling
back to the base struct it derives from in the project's own ``nnet_utils``) gives sizes,
table sizes and types; weights are read as the C simulation reads them. Layer kinds are
registered in ``emulation.layers``; code generated per layer (hls4ml's distributed-arithmetic
``dense_da_<n>`` functions) is read from the project's headers (``LayerCall.firmware``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulation.fixed import FixedType
from emulation.graph import Graph, Node, Port
from emulation.hls_project import (
    CallText,
    DenseLayer,
    HLSProject,
    ProjectText,
    _Config,
    read_project_text,
)
from emulation.hls_text import TypeTable, WeightArrays, resolve_size, unqualify

__all__ = ["LayerCall", "project_graph", "read_project_graph"]

_OUTSIDE = re.compile(r"const\s+([\w:<>,\s]+?)\s+(\w+)::(\w+)\s*=\s*([^;]+);")
_FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?[fF]?")
_MISSING = object()


@dataclass
class LayerCall:
    """One ``nnet::function<template args>(args);`` of the top function, with its config."""

    function: str
    name: str
    template_args: list[str]
    args: list[str]
    where: str  # file:line of the call
    config_name: str
    config_where: str  # file:line of the config struct
    _types: TypeTable  # global typedefs and those of the config struct and its bases
    _consts: dict[str, str]  # the config's static members (derived overrides base)
    _constants: dict[str, str]  # the project's constants and the config's, for sizes
    _enumerators: frozenset[str]
    _outside: dict[str, tuple[str, str, str]]  # member -> (type, value, file:line)
    _weights: WeightArrays
    text: str = ""  # the config struct and its bases, for what is not a constant or typedef
    config_text: str = (
        ""  # the config struct alone (its own kernel typedef, not its base's default)
    )
    nnet_dense: str | None = None  # the project's nnet_dense.h: how its dense dispatches
    parameters: str = ""  # all of parameters.h (arrays defined beside the structs)
    firmware: Path | None = (
        None  # the project's firmware/ (generated functions live in its headers)
    )

    @property
    def config_constants(self) -> dict[str, str]:
        """The config's static members as written (the derived struct's override its bases')."""
        return dict(self._consts)

    def type(self, name: str) -> FixedType:
        """A template argument or config typedef, resolved to its ap_fixed/ap_int type."""
        return self._types.resolve(
            name, self.where if name in self.template_args else self.config_where
        )

    def resolve_type(self, text: str, where: str) -> FixedType:
        """Any type text (an ap type or a typedef of the project) used at ``where``."""
        return self._types.resolve(text, where)

    def const(self, name: str, default=_MISSING):
        """A config constant: an int (sizes, expressions of named constants), a float, or an enum value's name."""
        if name not in self._consts:
            if default is _MISSING:
                raise ValueError(
                    f"{self.where}: layer '{self.name}': config {self.config_name} has no constant {name!r}"
                )
            return default
        text = self._consts[name].strip()
        if re.fullmatch(r"(?:\w+::)*\w+", text) and unqualify(text) in (
            *self._enumerators,
            "true",
            "false",
        ):
            return unqualify(text)
        if _FLOAT.fullmatch(text):
            return float(text.rstrip("fF"))
        return resolve_size(
            text, self._constants, f"{self.config_where} ({self.config_name}::{name})"
        )

    def static_value(self, name: str) -> tuple[FixedType, float]:
        """A static member defined outside its struct (``const T config::name = value;``)."""
        if name not in self._outside:
            raise ValueError(
                f"{self.where}: layer '{self.name}': {self.config_name}::{name} is not defined"
            )
        type_name, value, at = self._outside[name]
        return self._types.resolve(type_name, at), self.literal(value)

    def literal(self, text: str) -> float:
        try:
            return float(text.strip().rstrip("fF"))
        except ValueError:
            raise ValueError(
                f"{self.where}: layer '{self.name}': {text!r} is not a numeric literal"
            ) from None

    def weights(self, var: str, ftype: FixedType, size: int) -> np.ndarray:
        """The mantissas (of ``ftype``) the C simulation holds in weight array ``var``."""
        return self._weights.values(var, self._types, self._constants, size, ftype, self.where)

    def fail(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: layer '{self.name}' (nnet::{self.function}): {problem}")

    def node(self, kind, inputs, output, input_types, result_type, size, **params) -> Node:
        return Node(
            kind,
            self.name,
            tuple(inputs),
            output,
            tuple(input_types),
            result_type,
            int(size),
            params,
        )


def _layer_call(
    project: ProjectText,
    call: CallText,
    outside: dict[str, dict[str, tuple[str, str, str]]],
    config_arg: int | None = -1,
) -> LayerCall:
    """A call with its config struct (template argument ``config_arg``; none for ``None``) and the
    nnet_utils structs it derives from read."""
    targs = call.template_args
    config_name = unqualify(targs[config_arg]) if targs and config_arg is not None else ""
    chain: list[_Config] = []
    config = project.configs.get(config_name)
    if config is None and config_name and not re.fullmatch(r"[\d.\-]+", config_name):
        raise ValueError(
            f"{call.where}: config struct {config_name!r} of layer '{call.name}' is defined in no firmware header"
        )
    while config is not None and len(chain) < 8:
        chain.append(config)
        config = (
            project.configs.get(config.base) if config.base and config.base != config.name else None
        )
    types, consts = project.types, {}
    for c in reversed(chain):  # the derived struct overrides its bases
        types = types.local(c.source, c.body, c.body_at)
        consts.update(c.constants)
    parameters = next((s.text for s in project.sources if s.path.name == "parameters.h"), "")
    return LayerCall(
        function=call.function,
        name=call.name,
        template_args=call.template_args,
        args=call.args,
        where=call.where,
        config_name=config_name,
        config_where=chain[0].where if chain else call.where,
        _types=types,
        _consts=consts,
        _constants={**project.constants, **consts},
        _enumerators=project.enumerators,
        _outside=outside.get(config_name, {}),
        _weights=project.weights,
        text="\n".join(c.body for c in chain),
        config_text=chain[0].body if chain else "",
        nnet_dense=project.nnet_dense,
        parameters=parameters,
        firmware=project.firmware,
    )


def read_project_graph(path: str | os.PathLike[str]) -> Graph:
    """Parse an hls4ml project directory (or its ``firmware/``) into a :class:`Graph`."""
    from emulation.layers import ARITY, CONFIG_ARG, READERS, lookup

    project = read_project_text(path)
    outside: dict[str, dict[str, tuple[str, str, str]]] = {}
    for source in project.sources:
        if source.path.suffix == ".h":
            for m in _OUTSIDE.finditer(source.text):
                type_name, struct, member, value = m.groups()
                outside.setdefault(struct, {})[member] = (
                    type_name.strip(),
                    value.strip(),
                    source.where(m.start()),
                )

    nodes: list[Node] = []
    for call in project.calls:
        key = lookup(call.function)
        if key is None:
            supported = ", ".join(sorted(READERS))
            raise ValueError(f"{call.where}: layer '{call.name}' (nnet::{call.function}) is not supported by the emulator "
                             f"(supported: {supported})")  # fmt: skip
        build = READERS[key]
        n_template, n_args = ARITY[key]
        if len(call.template_args) not in n_template or len(call.args) not in n_args:
            raise ValueError(f"{call.where}: layer '{call.name}' (nnet::{call.function}) has {len(call.template_args)} "
                             f"template arguments and {len(call.args)} arguments; nnet::{call.function} takes "
                             f"{' or '.join(map(str, n_template))} and {' or '.join(map(str, n_args))}")  # fmt: skip
        nodes.append(build(_layer_call(project, call, outside, CONFIG_ARG[key])))

    written = {n.output for n in nodes}
    inputs = tuple(p for p in project.ports if p.name not in written)
    outputs = tuple(p for p in project.ports if p.name in written)
    known = {p.name for p in inputs}
    for node, call in zip(nodes, project.calls, strict=True):
        for v in node.inputs:
            if v not in known:
                raise ValueError(
                    f"{call.where}: layer '{node.name}' reads {v!r}, which no earlier layer or input writes"
                )
        known.add(node.output)
    sizes_out = {n.output: n.size for n in nodes}
    for p in outputs:
        if sizes_out[p.name] != p.size:
            raise ValueError(
                f"{project.top_at}: output {p.name} has {p.size} values, its layer writes {sizes_out[p.name]}"
            )
    if not outputs:
        raise ValueError(f"{project.top_at}: no layer writes any argument of {project.top.name}")
    return Graph(project.top.name, inputs, outputs, tuple(nodes))


def project_graph(project: HLSProject) -> Graph:
    """The graph of any loaded project: its own, or its dense/ReLU/linear chain as nodes.

    The chain's layers become the same node kinds the reader builds (``dense`` with the
    Latency strategy, ``relu``, ``linear``), so one executor runs every project.
    """
    if project.graph is not None:
        return project.graph
    nodes: list[Node] = []
    var, t = project.input_name, project.input_type
    for layer in project.layers:
        out = f"{layer.name}_out"
        if isinstance(layer, DenseLayer):
            params = dict(weight=layer.weight, weight_flat=layer.weight.ravel(), weight_type=layer.weight_type,
                          bias=layer.bias, bias_type=layer.bias_type, accum_type=layer.accum_type, strategy="latency")  # fmt: skip
            nodes.append(
                Node("dense", layer.name, (var,), out, (t,), layer.result_type, layer.n_out, params)
            )
        else:
            nodes.append(
                Node(layer.kind, layer.name, (var,), out, (t,), layer.result_type, layer.n)
            )
        var, t = out, layer.result_type
    inputs = (Port(project.input_name, project.input_type, project.n_inputs),)
    return Graph(project.top, inputs, (Port(var, t, project.n_outputs),), tuple(nodes))
