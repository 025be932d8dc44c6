"""Read an HLS project written by hls4ml (io_parallel) into a layer graph the emulator runs.

Reads only what the C simulation itself compiles: ``firmware/defines.h`` (typedefs,
possibly inside a C++ namespace), ``firmware/parameters.h`` (one config struct per
layer), the top function in ``firmware/<name>.cpp`` (any name: the function whose body
calls ``nnet::`` layers) and ``firmware/weights/*.txt`` (or the ``.h`` initialisers).
Weights are converted to their types exactly as the C simulation does
(``istream >> double``, then ``weight_t(double)``).

Sequential Dense (Latency strategy) / ReLU / linear networks are read here into
``layers`` (the emulator's fast paths run them); any other project is read by
``emulation.project_graph`` into a layer graph, whose errors name the file, the layer
and the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulation.fixed import FixedType, from_float
from emulation.graph import Graph

__all__ = ["ActivationLayer", "DenseLayer", "HLSProject", "load_hls_project"]

SUPPORTED = "dense (Latency strategy), relu, linear"


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """``nnet::dense_latency``: weights (n_in, n_out) and bias (n_out,) as int64 mantissas."""

    name: str
    n_in: int
    n_out: int
    input_type: FixedType
    weight: np.ndarray
    weight_type: FixedType
    bias: np.ndarray
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType


@dataclass(frozen=True)
class ActivationLayer:
    """``nnet::relu`` or ``nnet::linear``: elementwise, cast into ``result_type``."""

    name: str
    kind: str
    n: int
    input_type: FixedType
    result_type: FixedType


@dataclass(frozen=True, eq=False)
class HLSProject:
    path: Path
    top: str
    input_name: str
    input_type: FixedType
    n_inputs: int
    output_type: FixedType
    n_outputs: int
    layers: tuple[DenseLayer | ActivationLayer, ...]
    graph: Graph | None = None  # any other project: its layer graph (then ``layers`` is empty)

    def describe(self) -> str:
        if self.graph is not None:
            return self.graph.describe()
        lines = [f"{self.top}: {self.input_type}[{self.n_inputs}] -> {self.output_type}[{self.n_outputs}]"]
        for layer in self.layers:
            if isinstance(layer, DenseLayer):
                lines.append(
                    f"  dense {layer.name}: {layer.n_in}->{layer.n_out} w {layer.weight_type} b {layer.bias_type}"
                    f" acc {layer.accum_type} -> {layer.result_type}"
                )
            else:
                lines.append(f"  {layer.kind} {layer.name}: {layer.n} -> {layer.result_type}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- C++ text


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _unqualify(name: str) -> str:
    return name.strip().split("::")[-1].strip()


def _split_top(args: str) -> list[str]:
    """Split on commas outside <> and ()."""
    parts, depth, cur = [], 0, []
    for ch in args:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


_STRUCT_RE = re.compile(r"struct\s+(\w+)\s*(?::\s*[\w:\s,]+)?\{(.*?)\}\s*;", re.S)
_TYPEDEF_RE = re.compile(r"typedef\s+([^;{}]+?)\s+(\w+)\s*;")
_USING_RE = re.compile(r"(?<![\w>])using\s+(\w+)\s*=\s*([^;{}]+?)\s*;")
_CONST_RE = re.compile(r"static\s+const\s+(?:unsigned|int|bool|unsigned\s+int)\s+(\w+)\s*=\s*([^;]+);")


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
            key = _unqualify(current)
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


# ----------------------------------------------------------------------------- top function


def _find_top(firmware: Path) -> tuple[Path, str, str, str]:
    """(file, function name, parameter list, body) of the function that instantiates the layers."""
    candidates = []
    for cpp in sorted(firmware.glob("*.cpp")):
        text = _strip_comments(cpp.read_text(errors="replace"))
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


def _parse_params(params: str, where: str) -> list[tuple[str, str, int]]:
    out = []
    for p in _split_top(params):
        m = re.fullmatch(r"\s*([\w:<>,\s]+?)\s+(\w+)\s*\[\s*(\d+)\s*\]\s*", p)
        if m is None:
            raise ValueError(
                f"{where}: top-function argument {p.strip()!r} is not an array 'type name[N]' "
                "(only io_parallel projects can be emulated)"
            )
        out.append((m.group(1).strip(), m.group(2), int(m.group(3))))
    return out


# ----------------------------------------------------------------------------- weights


def _read_weights(weights_dir: Path, name: str, ftype: FixedType, size: int) -> np.ndarray:
    txt = weights_dir / f"{name}.txt"
    header = weights_dir / f"{name}.h"
    if txt.exists():
        text = txt.read_text().strip().splitlines()[0] if txt.read_text().strip() else ""
        source = txt
    elif header.exists():
        m = re.search(rf"\b{re.escape(name)}\s*\[[^\]]*\]\s*=\s*\{{([^}}]*)\}}", _strip_comments(header.read_text()))
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


# ----------------------------------------------------------------------------- loader


def load_hls_project(path: str | os.PathLike[str]) -> HLSProject:
    """Parse an hls4ml project directory (or its ``firmware/``) into an :class:`HLSProject`.

    A sequential Dense (Latency) / ReLU / linear network becomes ``layers`` (the fast
    paths of ``emulation.network`` run it); any other project becomes a ``graph``
    (``emulation.project_graph``). Several inputs or outputs are concatenated, in the
    order of the top function's arguments.
    """
    try:
        return _load_dense_chain(path)
    except ValueError:
        from emulation.project_graph import read_project_graph

        graph = read_project_graph(path)  # its error, if any, names the true reason
    first_in, first_out = graph.inputs[0], graph.outputs[0]
    return HLSProject(
        path=Path(path),
        top=graph.name,
        input_name=first_in.name,
        input_type=first_in.type,
        n_inputs=sum(p.size for p in graph.inputs),
        output_type=first_out.type,
        n_outputs=sum(p.size for p in graph.outputs),
        layers=(),
        graph=graph,
    )


def _load_dense_chain(path: str | os.PathLike[str]) -> HLSProject:
    """The reader of sequential dense/ReLU/linear projects (``load_hls_project`` falls back to the graph)."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: HLS project directory does not exist")
    firmware = path / "firmware" if (path / "firmware").is_dir() else path
    for required in ("defines.h", "parameters.h"):
        if not (firmware / required).exists():
            raise ValueError(f"{firmware}: {required} is missing; is this an hls4ml project?")
    defines = _strip_comments((firmware / "defines.h").read_text(errors="replace"))
    parameters = _strip_comments((firmware / "parameters.h").read_text(errors="replace"))
    cpp, top, params, body = _find_top(firmware)
    header = cpp.with_suffix(".h")
    header_text = _strip_comments(header.read_text(errors="replace")) if header.exists() else ""

    configs = {m.group(1): m.group(2) for m in _STRUCT_RE.finditer(parameters)}
    global_text = _STRUCT_RE.sub(" ", defines + "\n" + parameters + "\n" + header_text)
    types = _Types(_aliases(global_text), str(firmware / "defines.h"))

    args = _parse_params(params, str(cpp))
    if len(args) != 2:
        raise ValueError(f"{cpp}: top function {top} has {len(args)} arguments; only one input and one output are supported")
    (in_type, in_name, n_in), (out_type, out_name, n_out) = args

    layer_names = _layer_names(cpp.read_text(errors="replace"))
    calls = [
        m
        for m in re.finditer(r"nnet::(\w+)\s*<(.*?)>\s*\(([^;]*?)\)\s*;", body, flags=re.S)
        if not m.group(1).startswith("load_")
    ]
    if not calls:
        raise ValueError(f"{cpp}: no nnet:: layer calls in {top}")

    layers: list[DenseLayer | ActivationLayer] = []
    current, width = in_name, n_in
    for call in calls:
        func, targs, cargs = call.group(1), _split_top(call.group(2)), _split_top(call.group(3))
        name = layer_names.get(call.group(0).strip().replace(" ", ""), func)
        if func not in ("dense", "dense_latency", "relu", "linear") or len(targs) != 3:
            raise ValueError(
                f"{cpp}: layer '{name}' (nnet::{func}) is not supported by the emulator (supported: {SUPPORTED})"
            )
        in_t, out_t, config_name = targs
        src, dst = cargs[0], cargs[1]
        if src != current:
            raise ValueError(f"{cpp}: layer '{name}' reads {src!r}, not the previous output {current!r}; "
                             "only sequential networks are supported")
        cfg_body = configs.get(_unqualify(config_name))
        if cfg_body is None:
            raise ValueError(f"{firmware / 'parameters.h'}: config struct {config_name!r} of layer '{name}' not found")
        consts = {k: v.strip() for k, v in _CONST_RE.findall(cfg_body)}
        local = dict(types.aliases)
        local.update(_aliases(cfg_body))
        ltypes = _Types(local, f"{firmware / 'parameters.h'} ({config_name})")
        input_type, result_type = ltypes.resolve(in_t), ltypes.resolve(out_t)
        if func in ("dense", "dense_latency"):
            kernel = re.search(r"using\s+kernel\s*=\s*([\w:]+)", cfg_body)
            if func == "dense" and (kernel is None or _unqualify(kernel.group(1)) != "DenseLatency"):
                found = kernel.group(1) if kernel else "none"
                raise ValueError(
                    f"{cpp}: layer '{name}' uses dense kernel {found}; only the Latency strategy is supported"
                )
            product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)", cfg_body)
            if product is not None and product.group(1) != "mult":
                raise ValueError(f"{cpp}: layer '{name}' uses product {product.group(1)}; only 'mult' is supported")
            n_i, n_o = int(consts["n_in"]), int(consts["n_out"])
            if n_i != width:
                raise ValueError(f"{cpp}: layer '{name}' has n_in={n_i} but its input has {width} values")
            if len(cargs) != 4:
                raise ValueError(f"{cpp}: layer '{name}': expected (input, output, weights, biases)")
            wt, bt, at = ltypes.resolve("weight_t"), ltypes.resolve("bias_t"), ltypes.resolve("accum_t")
            weights = _read_weights(firmware / "weights", cargs[2], wt, n_i * n_o).reshape(n_i, n_o)
            bias = _read_weights(firmware / "weights", cargs[3], bt, n_o)
            layers.append(DenseLayer(name, n_i, n_o, input_type, weights, wt, bias, bt, at, result_type))
            width = n_o
        else:
            n = int(consts.get("n_in", width))
            if n != width:
                raise ValueError(f"{cpp}: layer '{name}' has n_in={n} but its input has {width} values")
            layers.append(ActivationLayer(name, func, n, input_type, result_type))
        current = dst
    if current != out_name:
        raise ValueError(f"{cpp}: the last layer writes {current!r}, not the output {out_name!r}")
    if width != n_out:
        raise ValueError(f"{cpp}: the network gives {width} outputs, the top function declares {n_out}")
    return HLSProject(
        path=path,
        top=top,
        input_name=in_name,
        input_type=types.resolve(in_type),
        n_inputs=n_in,
        output_type=types.resolve(out_type),
        n_outputs=n_out,
        layers=tuple(layers),
    )


def _layer_names(raw_cpp: str) -> dict[str, str]:
    """hls4ml ends each layer call with ``// layer_name``; map the call text to it."""
    out = {}
    for m in re.finditer(r"(nnet::\w+\s*<.*?>\s*\([^;]*?\)\s*;)[ \t]*//[ \t]*(\S+)", raw_cpp):
        out[m.group(1).replace(" ", "")] = m.group(2)
    return out
