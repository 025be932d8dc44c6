"""Read an hls4ml io_parallel project into an :class:`~emulation.graph.Graph`: any layer graph.

The top function's ``nnet::`` calls are read in order as a dataflow graph on variable
names: a call reads the arrays named by its input arguments (the top function's inputs
or any earlier call's output) and writes its output array. Each call's config struct
(``parameters.h``, falling back to the base struct it derives from in the project's own
``nnet_utils``) gives sizes, table sizes and types; weights are read as the C simulation
reads them. Layer kinds are registered in ``emulation.layers``.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emulation.fixed import INT64_WIDTH, FixedType, from_float
from emulation.graph import Graph, Node, Port
from emulation.hls_project import DenseLayer, HLSProject, _layer_names, _split_top
from emulation.hls_text import strip_comments, unqualify

__all__ = ["LayerCall", "project_graph", "read_project_graph"]

# The graph reader's own view of the project text. TODO(#14/#15): read through
# emulation.hls_text (TypeTable, WeightArrays) like load_hls_project, so there is one reader.
_TYPEDEF_RE = re.compile(r"typedef\s+([^;{}]+?)\s+(\w+)\s*;")
_USING_RE = re.compile(r"(?<![\w>])using\s+(\w+)\s*=\s*([^;{}]+?)\s*;")
def _aliases(text: str) -> dict[str, str]:
    out = {name: target.strip() for target, name in _TYPEDEF_RE.findall(text)}
    out.update({name: target.strip() for name, target in _USING_RE.findall(text)})
    return out


class _Types:
    def __init__(self, aliases: dict[str, str], where: str) -> None:
        self.aliases = aliases
        self.where = where

    def resolve(self, name: str) -> FixedType:
        seen = set()
        current = name.strip()
        while True:
            key = unqualify(current)
            if current.replace(" ", "").startswith(("ap_fixed<", "ap_ufixed<", "ap_int<", "ap_uint<")):
                try:
                    return FixedType.parse(current.replace(" ", ""))
                except ValueError as err:
                    raise ValueError(f"{self.where}: type {name!r}: {err}") from None
            if key in seen or key not in self.aliases:
                raise ValueError(
                    f"{self.where}: type {name!r} is not an ap_fixed/ap_int typedef "
                    f"(resolved to {current!r}); only fixed-point io_parallel projects can be emulated"
                )
            seen.add(key)
            current = self.aliases[key]


def _find_top(firmware: Path) -> tuple[Path, str, str, str]:
    """(file, function name, parameter list, body) of the function that instantiates the layers."""
    candidates = []
    for cpp in sorted(firmware.glob("*.cpp")):
        text = strip_comments(cpp.read_text(errors="replace"))
        for m in re.finditer(r"\bvoid\s+(\w+)\s*\(([^)]*)\)\s*\{", text):
            body = _body(text, m.end() - 1)
            if re.search(r"nnet::\w+\s*<", body):
                candidates.append((cpp, m.group(1), m.group(2), body))
    if not candidates:
        raise ValueError(f"{firmware}: no top function calling nnet:: layers in any firmware/*.cpp")
    if len(candidates) > 1:
        names = ", ".join(f"{c[1]} ({c[0].name})" for c in candidates)
        raise ValueError(f"{firmware}: several candidate top functions: {names}")
    return candidates[0]


def _body(text: str, brace: int) -> str:
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    raise ValueError("unbalanced braces in the top function")


def _read_weights(weights_dir: Path, name: str, ftype: FixedType, size: int) -> np.ndarray:
    txt = weights_dir / f"{name}.txt"
    header = weights_dir / f"{name}.h"
    if txt.exists():
        text = txt.read_text().strip().splitlines()[0] if txt.read_text().strip() else ""
        source = txt
    elif header.exists():
        m = re.search(rf"\b{re.escape(name)}\s*\[[^\]]*\]\s*=\s*\{{([^}}]*)\}}", strip_comments(header.read_text()))
        if m is None:
            raise ValueError(f"{header}: no initialiser list found")
        text, source = m.group(1), header
    else:
        raise ValueError(f"{weights_dir}: weights '{name}' missing (neither {txt.name} nor {header.name})")
    try:
        values = np.array([float(v) for v in text.replace("\n", " ").split(",") if v.strip()], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{source}: cannot read weights: {err}") from None
    if values.size != size:
        raise ValueError(f"{source}: {values.size} values, the layer needs {size}")
    return from_float(values, ftype)



_STRUCT = re.compile(r"struct\s+(\w+)\s*(?::\s*(?:public\s+)?([\w:]+))?\s*\{(.*?)\}\s*;", re.S)
_STATIC = re.compile(r"static\s+(?:const|constexpr)\s+(?:const\s+)?([\w:<>,\s]+?)\s+(\w+)\s*=\s*([^;]+);")
_OUTSIDE = re.compile(r"const\s+([\w:<>,\s]+?)\s+(\w+)::(\w+)\s*=\s*([^;]+);")
_DEFINE = re.compile(r"#define\s+(\w+)\s+\(?\s*(\d+)\s*\)?\s*$", re.M)
_CALL = re.compile(r"nnet::(\w+)\s*<(.*?)>\s*\(([^;]*?)\)\s*;", re.S)
_MISSING = object()


def _value(text: str, consts: dict[str, str]) -> int | float | str:
    """A config constant: integer, float, or an enum/name (its last component)."""
    text = text.strip()
    for _ in range(8):
        if text in consts:
            text = consts[text].strip()
    t = text.rstrip("uUlLfF") if re.fullmatch(r"-?[\d.]+(?:[eE][-+]?\d+)?[uUlLfF]*", text) else text
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return unqualify(text)


@dataclass
class _Struct:
    name: str
    base: str | None
    body: str


@dataclass
class LayerCall:
    """One ``nnet::function<template args>(args);`` of the top function, with its config."""

    function: str
    name: str
    template_args: list[str]
    args: list[str]
    where: str
    config_name: str
    _types: _Types
    _consts: dict[str, str]
    _outside: dict[str, tuple[str, str]]
    _weights_dir: Path
    text: str = ""  # the config struct and its bases, for what is not a constant or typedef
    _constants: dict[str, int] = field(default_factory=dict)  # named sizes of defines.h / parameters.h
    parameters: str = ""  # all of parameters.h (arrays defined beside the structs)

    def type(self, name: str) -> FixedType:
        """A template argument or config typedef, resolved to its ap_fixed/ap_int type."""
        return self._types.resolve(name)

    def const(self, name: str, default=_MISSING):
        if name in self._consts:
            text = self._consts[name]
            number = _size(text, {**self._constants, **self._int_consts()})
            return number if number is not None else _value(text, self._consts)
        if default is _MISSING:
            raise ValueError(f"{self.where}: layer '{self.name}': config {self.config_name} has no constant {name!r}")
        return default

    def _int_consts(self) -> dict[str, int]:
        out = {}
        for k, v in self._consts.items():
            v = v.strip()
            if re.fullmatch(r"-?\d+[uU]?", v):
                out[k] = int(v.rstrip("uU"))
        return out

    def static_value(self, name: str) -> tuple[FixedType, float]:
        """A static member defined outside its struct (``const T config::name = value;``)."""
        if name not in self._outside:
            raise ValueError(f"{self.where}: layer '{self.name}': {self.config_name}::{name} is not defined")
        type_name, value = self._outside[name]
        return self.type(type_name), self.literal(value)

    def literal(self, text: str) -> float:
        try:
            return float(text.strip().rstrip("fF"))
        except ValueError:
            raise ValueError(f"{self.where}: layer '{self.name}': {text!r} is not a numeric literal") from None

    def weights(self, var: str, ftype: FixedType, size: int) -> np.ndarray:
        return _read_weights(self._weights_dir, var, ftype, size)

    def exact(self, t, what: str) -> None:
        """Refuse an intermediate result wider than the int64 arithmetic holds (never silently wrong)."""
        if t.width > INT64_WIDTH:
            raise self.fail(f"{what} needs {t.width} bits; the emulator computes in int64, at most {INT64_WIDTH} bits")

    def fail(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: layer '{self.name}' (nnet::{self.function}): {problem}")

    def node(self, kind, inputs, output, input_types, result_type, size, **params) -> Node:
        return Node(kind, self.name, tuple(inputs), output, tuple(input_types), result_type, int(size), params)


def _structs(text: str) -> dict[str, _Struct]:
    return {m.group(1): _Struct(m.group(1), m.group(2) and unqualify(m.group(2)), m.group(3)) for m in _STRUCT.finditer(text)}


def _size(text: str, constants: dict[str, int]) -> int | None:
    """An array size: integer literals and named constants joined by + - * / and parentheses."""
    tree = None
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in constants:
            return constants[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.FloorDiv | ast.Div):
            a, b = value(node.left), value(node.right)
            op = node.op
            return a + b if isinstance(op, ast.Add) else a - b if isinstance(op, ast.Sub) else a * b if isinstance(op, ast.Mult) else a // b
        raise ValueError(text)

    try:
        return value(tree)
    except (ValueError, ZeroDivisionError):
        return None


def _top_arguments(params: str, constants: dict[str, int], where: str) -> list[tuple[str, str, int]]:
    out = []
    for p in _split_top(params):
        m = re.fullmatch(r"\s*([\w:<>,\s]+?)\s+(\w+)\s*\[([^\]]+)\]\s*", p)
        size = None if m is None else _size(m.group(3), constants)
        if m is None or size is None:
            raise ValueError(f"{where}: top-function argument {p.strip()!r} is not an array 'type name[N]' of a known size")
        out.append((m.group(1).strip(), m.group(2), size))
    return out


def read_project_graph(path: str | os.PathLike[str]) -> Graph:
    """Parse an hls4ml project directory (or its ``firmware/``) into a :class:`Graph`."""
    from emulation.layers import READERS

    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: HLS project directory does not exist")
    firmware = path / "firmware" if (path / "firmware").is_dir() else path
    for required in ("defines.h", "parameters.h"):
        if not (firmware / required).exists():
            raise ValueError(f"{firmware}: {required} is missing; is this an hls4ml project?")
    defines = strip_comments((firmware / "defines.h").read_text(errors="replace"))
    parameters = strip_comments((firmware / "parameters.h").read_text(errors="replace"))
    cpp, top, params, body = _find_top(firmware)
    header = cpp.with_suffix(".h")
    header_text = strip_comments(header.read_text(errors="replace")) if header.exists() else ""

    base_structs: dict[str, _Struct] = {}
    for h in sorted((firmware / "nnet_utils").glob("*.h")):
        base_structs.update(_structs(strip_comments(h.read_text(errors="replace"))))
    structs = _structs(parameters)
    global_text = _STRUCT.sub(" ", defines + "\n" + parameters + "\n" + header_text)
    global_aliases = _aliases(global_text)
    constants = {k: int(v) for k, v in _DEFINE.findall(defines + "\n" + parameters)}
    constants.update({k: int(v) for _, k, v in _STATIC.findall(global_text) if v.strip().isdigit()})
    outside: dict[str, dict[str, tuple[str, str]]] = {}
    for type_name, struct, member, value in _OUTSIDE.findall(parameters):
        outside.setdefault(struct, {})[member] = (type_name.strip(), value.strip())

    args = _top_arguments(params, constants, str(cpp))
    names = _layer_names(cpp.read_text(errors="replace"))
    calls = [m for m in _CALL.finditer(body) if not m.group(1).startswith("load_")]
    if not calls:
        raise ValueError(f"{cpp}: no nnet:: layer calls in {top}")

    # io_parallel Reshape/Flatten write no call, only a reference to the same array
    alias = dict(re.findall(r"\bauto\s*&\s*(\w+)\s*=\s*(\w+)\s*;", body))

    def resolve(var: str) -> str:
        for _ in range(len(alias) + 1):
            var = alias.get(var, var)
        return var

    nodes: list[Node] = []
    for m in calls:
        func, targs = m.group(1), _split_top(m.group(2))
        cargs = [resolve(a) for a in _split_top(m.group(3))]
        name = names.get(m.group(0).strip().replace(" ", ""), func)
        build = READERS.get(func)
        if build is None:
            supported = ", ".join(sorted(READERS))
            raise ValueError(f"{cpp}: layer '{name}' (nnet::{func}) is not supported by the emulator (supported: {supported})")
        config_name = unqualify(targs[-1]) if targs else ""
        chain: list[_Struct] = []
        struct = structs.get(config_name)
        if struct is None and config_name and not re.fullmatch(r"[\d.\-]+", config_name):
            raise ValueError(f"{firmware / 'parameters.h'}: config struct {config_name!r} of layer '{name}' not found")
        while struct is not None and len(chain) < 8:
            chain.append(struct)
            struct = base_structs.get(struct.base) if struct.base else None
        local = dict(global_aliases)
        consts: dict[str, str] = {}
        for s in reversed(chain):  # the derived struct overrides its bases
            local.update(_aliases(s.body))
            consts.update({k: v for _, k, v in _STATIC.findall(s.body)})
        call = LayerCall(
            function=func,
            name=name,
            template_args=targs,
            args=cargs,
            where=str(cpp),
            config_name=config_name,
            _types=_Types(local, f"{firmware / 'parameters.h'} ({config_name})"),
            _consts=consts,
            _outside=outside.get(config_name, {}),
            _weights_dir=firmware / "weights",
            text="\n".join(s.body for s in chain),
            parameters=parameters,
            _constants=constants,
        )
        nodes.append(build(call))

    written = {n.output for n in nodes}
    top_types = _Types(global_aliases, str(firmware / "defines.h"))
    inputs = tuple(Port(n, top_types.resolve(t), s) for t, n, s in args if n not in written)
    outputs = tuple(Port(n, top_types.resolve(t), s) for t, n, s in args if n in written)
    known = {p.name for p in inputs}
    for node in nodes:
        for v in node.inputs:
            if v not in known:
                raise ValueError(f"{cpp}: layer '{node.name}' reads {v!r}, which no earlier layer or input writes")
        known.add(node.output)
    sizes_out = {n.output: n.size for n in nodes}
    for p in outputs:
        if sizes_out[p.name] != p.size:
            raise ValueError(f"{cpp}: output {p.name} has {p.size} values, its layer writes {sizes_out[p.name]}")
    if not outputs:
        raise ValueError(f"{cpp}: no layer writes any argument of {top}")
    return Graph(top, inputs, outputs, tuple(nodes))


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
            nodes.append(Node("dense", layer.name, (var,), out, (t,), layer.result_type, layer.n_out, params))
        else:
            nodes.append(Node(layer.kind, layer.name, (var,), out, (t,), layer.result_type, layer.n))
        var, t = out, layer.result_type
    inputs = (Port(project.input_name, project.input_type, project.n_inputs),)
    return Graph(project.top, inputs, (Port(var, t, project.n_outputs),), tuple(nodes))
