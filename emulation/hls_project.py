"""Read an HLS project written by hls4ml (io_parallel) into a layer graph the emulator runs.

Reads what the C simulation itself compiles (``emulation.hls_text``): ``firmware/defines.h``
and ``firmware/parameters.h`` (typedefs, possibly inside a C++ namespace; ``#define``
sizes; one config struct per layer), the top function in ``firmware/*.cpp`` (any name: the
function whose body calls ``nnet::`` layers; its array arguments are the inputs and
outputs) and the weights the C simulation holds: from ``firmware/weights/*.txt`` where the
top function loads them with ``load_weights_from_txt``, else from the initialisers in
``firmware/weights/*.h``. Sizes may be literals, named constants or expressions; the
dense strategy comes from the ``kernel`` typedef (hls4ml 1.x) or from ``strategy``
(hls4ml 0.x), whichever the project's ``nnet_dense.h`` dispatches on. This covers
projects from hls4ml 0.x to 1.3 and hand-edited ones.

One front end (:func:`read_project_text`: sources, constants, types, config structs,
ports, layer calls) serves both readers: sequential Dense (Latency strategy) / ReLU /
linear networks are read here into ``layers`` (the emulator's fast paths run them); any
other project (other layers, other strategies: Resource, hls4ml 1.3's
``distributed_arithmetic`` with its generated ``dense_da_<n>`` functions) is read by
``emulation.project_graph`` into a layer graph. Errors name the file, the line and the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulation.fixed import FixedType
from emulation.graph import Graph, Port  # Port: one array argument of the top function
from emulation.hls_text import Source, TypeTable, WeightArrays, read_source, resolve_size, unqualify

__all__ = [
    "ActivationLayer",
    "DenseLayer",
    "HLSProject",
    "Port",
    "dense_strategy",
    "load_hls_project",
]

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
    inputs: tuple[Port, ...] = ()  # every array argument the layers read, in signature order
    outputs: tuple[Port, ...] = ()  # every array argument the layers write
    graph: Graph | None = None  # any other project: its layer graph (then ``layers`` is empty)

    def describe(self) -> str:
        if self.graph is not None:
            return self.graph.describe()
        lines = [
            f"{self.top}: {self.input_type}[{self.n_inputs}] -> {self.output_type}[{self.n_outputs}]"
        ]
        for layer in self.layers:
            if isinstance(layer, DenseLayer):
                lines.append(
                    f"  dense {layer.name}: {layer.n_in}->{layer.n_out} w {layer.weight_type} b {layer.bias_type}"
                    f" acc {layer.accum_type} -> {layer.result_type}"
                )
            else:
                lines.append(f"  {layer.kind} {layer.name}: {layer.n} -> {layer.result_type}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- top function


def split_top_level(args: str) -> list[str]:
    """Split on commas outside <> and ()."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
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


@dataclass(frozen=True)
class _Top:
    source: Source
    name: str
    params: str
    params_at: int
    body: str
    body_at: int


def _find_top(sources: list[Source], firmware: Path) -> _Top:
    """The function whose body instantiates nnet:: layers (the top function, any name)."""
    candidates = []
    for source in sources:
        for m in re.finditer(r"\bvoid\s+(\w+)\s*\(([^)]*)\)\s*\{", source.text):
            end = source.closing_brace(m.end() - 1)
            body = source.text[m.end() : end]
            if re.search(r"nnet::\w+\s*<", body) and not m.group(1).startswith("load_"):
                candidates.append(_Top(source, m.group(1), m.group(2), m.start(2), body, m.end()))
    if not candidates:
        raise ValueError(f"{firmware}: no top function calling nnet:: layers in any firmware/*.cpp")
    if len(candidates) > 1:
        names = ", ".join(f"{c.name} ({c.source.where(c.params_at)})" for c in candidates)
        raise ValueError(f"{firmware}: several candidate top functions: {names}")
    return candidates[0]


def _ports(top: _Top, types: TypeTable, constants: dict[str, str]) -> list[Port]:
    """The top function's array arguments; scalar ones (hls4ml 0.x ``const_size_in``) are skipped."""
    ports = []
    offset = top.params_at
    for p in split_top_level(top.params):
        where = top.source.where(top.source.text.find(p, offset) if p else offset)
        if re.search(r"\bhls::stream\b", p):
            raise ValueError(f"{where}: argument {p!r} is an hls::stream: an io_stream project; "
                             "only io_parallel projects (array arguments) can be emulated")  # fmt: skip
        m = re.fullmatch(r"\s*([\w:<>,\s]+?)\s*(\w+)\s*\[([^\]]+)\]\s*", p, flags=re.S)
        if m is None:
            if re.fullmatch(r"\s*[\w\s]+&\s*\w+\s*", p) or re.fullmatch(r"\s*[\w\s]+\s\w+\s*", p):
                continue  # a scalar (hls4ml 0.x reports its sizes through such arguments)
            raise ValueError(
                f"{where}: top-function argument {p.strip()!r} is not an array 'type name[N]'"
            )
        type_name, name, size = m.group(1).strip(), m.group(2), m.group(3)
        ports.append(
            Port(name, types.resolve(type_name, where), resolve_size(size, constants, where))
        )
    return ports


# ----------------------------------------------------------------------------- strategy


def dense_strategy(
    config: str, body: str, constants: dict[str, str], nnet_dense: str | None, where: str
) -> str:
    """``"latency"`` or ``"resource"``: the dense kernel the C simulation runs for this config.

    hls4ml 1.x dispatches through the config's ``kernel`` typedef (``nnet::DenseLatency``,
    ``nnet::DenseResource_*``); hls4ml 0.x on ``CONFIG_T::strategy`` (``nnet::latency`` /
    ``nnet::resource``). The project's own ``nnet_dense.h`` (its text, when present) says
    which; without it, a ``kernel`` typedef wins.
    """
    kernel = re.search(r"using\s+kernel\s*=\s*([\w:]+)", body)
    strategy = constants.get("strategy")
    uses_kernel = (
        nnet_dense is None or "::template kernel" in nnet_dense or "::kernel<" in nnet_dense
    )
    if uses_kernel and kernel is not None:
        name = unqualify(kernel.group(1))
        if name == "DenseLatency":
            return "latency"
        if name.startswith("DenseResource"):
            return "resource"
        return name
    if nnet_dense is not None and uses_kernel:
        raise ValueError(
            f"{where}: config {config} has no kernel typedef, but this project's nnet_dense.h dispatches "
            "through CONFIG_T::kernel (the base dense_config's kernel computes nothing)"
        )
    if strategy is None:
        return "latency"  # nnet::dense_config's default in every hls4ml version
    value = unqualify(strategy).strip().lower()
    if value in ("latency", "resource"):
        return value
    raise ValueError(
        f"{where}: config {config} has strategy {strategy!r}; expected nnet::latency or nnet::resource"
    )


# ----------------------------------------------------------------------------- loader


_STRUCT_RE = re.compile(r"struct\s+(\w+)\s*(?::\s*(?:public\s+)?([\w:]+)[\w:\s,]*)?\{", re.S)
# every static member constant of a config: sizes, enum values (nnet::latency), floats
_CONST_RE = re.compile(
    r"static\s+(?:const|constexpr)\s+(?:const\s+)?[\w:<>,\s]+?\s+(\w+)\s*=\s*([^;]+);"
)
_ENUM_RE = re.compile(r"\benum\s+(?:class\s+)?\w*\s*\{([^}]*)\}")
_CALL_RE = re.compile(r"nnet::(\w+)\s*<(.*?)>\s*\(([^;]*?)\)\s*;", re.S)
_GLOBAL_CONST_RE = re.compile(
    r"\b(?:static\s+)?(?:const|constexpr)\s+(?:unsigned\s+int|unsigned|int|long|size_t)\s+(\w+)\s*=\s*([^;]+);"
)


@dataclass(frozen=True)
class _Config:
    source: Source
    name: str
    base: str | None  # the struct it derives from (nnet::dense_config), unqualified
    body: str
    body_at: int
    constants: dict[str, str]

    @property
    def where(self) -> str:
        return self.source.where(self.body_at)


def _configs(source: Source) -> dict[str, _Config]:
    out = {}
    for m in _STRUCT_RE.finditer(source.text):
        end = source.closing_brace(m.end() - 1)
        body = source.text[m.end() : end]
        consts = {k: v.strip() for k, v in _CONST_RE.findall(body)}
        base = unqualify(m.group(2)) if m.group(2) else None
        out[m.group(1)] = _Config(source, m.group(1), base, body, m.end(), consts)
    return out


def _without_structs(text: str) -> str:
    """The text with struct bodies blanked (their typedefs are local to the struct)."""
    out = list(text)
    for m in _STRUCT_RE.finditer(text):
        depth = 0
        for i in range(m.end() - 1, len(text)):
            depth += text[i] == "{"
            depth -= text[i] == "}"
            if depth == 0:
                out[m.end() : i] = " " * (i - m.end())
                break
    return "".join(out)


def _read_all(firmware: Path) -> tuple[list[Source], dict[str, str]]:
    """Every firmware source the C simulation compiles, in include order, and the macros they define."""
    macros: dict[str, str] = {"WEIGHTS_DIR": '"firmware/weights"'}  # build_lib.sh's -D
    order = [firmware / "defines.h", firmware / "parameters.h"]
    order += sorted((firmware / "weights").glob("*.h")) if (firmware / "weights").is_dir() else []
    order += sorted(p for p in firmware.glob("*.h") if p.name not in ("defines.h", "parameters.h"))
    order += sorted(firmware.glob("*.cpp"))
    return [read_source(p, macros) for p in order if p.exists()], macros


def load_hls_project(path: str | os.PathLike[str]) -> HLSProject:
    """Parse an hls4ml project directory (or its ``firmware/``) into an :class:`HLSProject`.

    A sequential Dense (Latency) / ReLU / linear network becomes ``layers`` (the fast
    paths of ``emulation.network`` run it); any other project becomes a ``graph``
    (``emulation.project_graph``). Several inputs or outputs are concatenated, in the
    order of the top function's arguments.
    """
    try:
        return _load_dense_chain(path)
    except NotAChain:
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


class NotAChain(ValueError):
    """The project reads fine but is not a sequential dense/ReLU/linear chain: the graph reader takes it."""


@dataclass(frozen=True)
class CallText:
    """One ``nnet::function<template args>(args);`` of the top function, as written."""

    function: str
    template_args: list[str]
    args: list[str]  # array names, io_parallel reference aliases (``auto& a = b;``) followed
    name: str  # hls4ml's ``// layer_name`` comment, else the function
    where: str  # file:line of the call
    text: str  # the call, whitespace removed


@dataclass(frozen=True)
class ProjectText:
    """What both project readers take from the text: the front end of ``load_hls_project``."""

    path: Path
    firmware: Path
    sources: list[Source]
    top: _Top
    constants: dict[str, str]  # macros and global constants (sizes)
    types: TypeTable  # global typedefs
    configs: dict[str, _Config]  # config structs of the firmware headers and their nnet_utils bases
    enumerators: frozenset[
        str
    ]  # enum values of nnet_utils (latency, resource, io_parallel, Max, ...)
    nnet_dense: str | None  # the project's nnet_dense.h, which says how dense dispatches
    weights: WeightArrays
    ports: list[Port]  # the top function's array arguments
    calls: list[CallText]

    @property
    def top_at(self) -> str:
        return self.top.source.where(self.top.params_at)


def read_project_text(path: str | os.PathLike[str]) -> ProjectText:
    """Read an hls4ml project's firmware as its C simulation compiles it (any hls4ml version's layout)."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: HLS project directory does not exist")
    firmware = path / "firmware" if (path / "firmware").is_dir() else path
    for required in ("defines.h", "parameters.h"):
        if not (firmware / required).exists():
            raise ValueError(f"{firmware}: {required} is missing; is this an hls4ml project?")
    sources, macros = _read_all(firmware)
    top = _find_top([s for s in sources if s.path.suffix == ".cpp"], firmware)
    cpp = top.source

    constants: dict[str, str] = dict(macros)
    types = TypeTable()
    configs: dict[str, _Config] = {}
    enumerators: set[str] = set()
    for library in sorted((firmware / "nnet_utils").glob("*.h")):  # base config structs, enums
        source = read_source(library, {})
        configs.update(_configs(source))
        for m in _ENUM_RE.finditer(source.text):
            enumerators.update(re.findall(r"(\w+)\s*(?:=[^,]*)?(?:,|$)", m.group(1).strip()))
    for source in sources:
        outside = _without_structs(source.text)
        types.add(source, outside)
        constants.update({k: v.strip() for k, v in _GLOBAL_CONST_RE.findall(outside)})
        if source.path.suffix == ".h":
            configs.update(_configs(source))
    nnet_dense_h = firmware / "nnet_utils" / "nnet_dense.h"
    nnet_dense = nnet_dense_h.read_text(errors="replace") if nnet_dense_h.exists() else None
    weights = WeightArrays(
        [s for s in sources if s.path.parent.name == "weights" or s is cpp],
        cpp,
        firmware / "weights",
    )
    ports = _ports(top, types, constants)

    # io_parallel Reshape/Flatten write no call, only a reference to the same array
    alias = dict(re.findall(r"\bauto\s*&\s*(\w+)\s*=\s*(\w+)\s*;", top.body))

    def resolve(var: str) -> str:
        for _ in range(len(alias) + 1):
            var = alias.get(var, var)
        return var

    layer_names = _layer_names(cpp.path.read_text(errors="replace"))
    calls = []
    for m in _CALL_RE.finditer(top.body):
        if m.group(1).startswith("load_"):
            continue
        text = re.sub(r"\s+", "", m.group(0))
        calls.append(CallText(m.group(1), split_top_level(m.group(2)), [resolve(a) for a in split_top_level(m.group(3))],
                              layer_names.get(text, m.group(1)), cpp.where(top.body_at + m.start()), text))  # fmt: skip
    if not calls:
        raise ValueError(f"{cpp.where(top.body_at)}: no nnet:: layer calls in {top.name}")
    return ProjectText(path, firmware, sources, top, constants, types, configs, frozenset(enumerators),
                       nnet_dense, weights, ports, calls)  # fmt: skip


def _load_dense_chain(path: str | os.PathLike[str]) -> HLSProject:
    """The reader of sequential dense/ReLU/linear projects (``load_hls_project`` falls back to the graph)."""
    project = read_project_text(path)
    top, configs, constants, weights = (
        project.top,
        project.configs,
        project.constants,
        project.weights,
    )
    calls, top_at = project.calls, project.top_at
    written = {c.args[1] for c in calls if len(c.args) > 1}
    inputs = tuple(p for p in project.ports if p.name not in written)
    outputs = tuple(p for p in project.ports if p.name in written)
    if len(inputs) != 1 or len(outputs) != 1:
        raise NotAChain(
            f"{top_at}: top function {top.name} has inputs ({', '.join(p.name for p in inputs) or 'none'}) and "
            f"outputs ({', '.join(p.name for p in outputs) or 'none'}); the emulator runs one input through a "
            "sequential chain to one output (non-sequential graphs are not supported)"
        )
    (inp,), (out,) = inputs, outputs

    layers: list[DenseLayer | ActivationLayer] = []
    current, width = inp.name, inp.size
    for call in calls:
        at, func, targs, cargs, name = (
            call.where,
            call.function,
            call.template_args,
            call.args,
            call.name,
        )
        if (
            func not in ("dense", "dense_latency", "relu", "linear")
            or len(targs) != 3
            or len(cargs) < 2
        ):
            raise NotAChain(
                f"{at}: layer '{name}' (nnet::{func}) is not supported by the emulator (supported: {SUPPORTED})"
            )
        in_t, out_t, config_name = targs
        src, dst = cargs[0], cargs[1]
        if src != current:
            raise NotAChain(f"{at}: layer '{name}' reads {src!r}, not the previous output {current!r}; "
                             "only sequential networks are supported")  # fmt: skip
        cfg = configs.get(unqualify(config_name))
        if cfg is None:
            raise ValueError(
                f"{at}: config struct {config_name!r} of layer '{name}' is defined in no firmware header"
            )
        ltypes = project.types.local(cfg.source, cfg.body, cfg.body_at)
        local = {**constants, **cfg.constants}
        input_type, result_type = ltypes.resolve(in_t, at), ltypes.resolve(out_t, at)
        if func in ("dense", "dense_latency"):
            strategy = (
                "latency"
                if func == "dense_latency"
                else dense_strategy(cfg.name, cfg.body, local, project.nnet_dense, cfg.where)
            )
            if strategy != "latency":
                raise NotAChain(f"{cfg.where}: layer '{name}' uses the dense {strategy} strategy; "
                                 "only the Latency strategy is supported")  # fmt: skip
            product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)", cfg.body)
            if product is not None and product.group(1) != "mult":
                raise NotAChain(
                    f"{cfg.where}: layer '{name}' uses product {product.group(1)}; only 'mult' is supported"
                )
            for key in ("n_in", "n_out"):
                if key not in cfg.constants:
                    raise ValueError(
                        f"{cfg.where}: config {cfg.name} of layer '{name}' has no {key}"
                    )
            n_i = resolve_size(cfg.constants["n_in"], local, cfg.where)
            n_o = resolve_size(cfg.constants["n_out"], local, cfg.where)
            if n_i != width:
                raise ValueError(
                    f"{cfg.where}: layer '{name}' has n_in={n_i} but its input has {width} values"
                )
            if len(cargs) != 4:
                raise ValueError(f"{at}: layer '{name}': expected (input, output, weights, biases)")
            wt, bt, acc = (ltypes.resolve(k, cfg.where) for k in ("weight_t", "bias_t", "accum_t"))
            w = weights.values(cargs[2], ltypes, local, n_i * n_o, wt, at).reshape(n_i, n_o)
            b = weights.values(cargs[3], ltypes, local, n_o, bt, at)
            layers.append(DenseLayer(name, n_i, n_o, input_type, w, wt, b, bt, acc, result_type))
            width = n_o
        else:
            n = resolve_size(cfg.constants.get("n_in", width), local, cfg.where)
            if n != width:
                raise ValueError(
                    f"{cfg.where}: layer '{name}' has n_in={n} but its input has {width} values"
                )
            layers.append(ActivationLayer(name, func, n, input_type, result_type))
        current = dst
    if current != out.name:
        raise ValueError(
            f"{top_at}: the last layer writes {current!r}, not the output {out.name!r}"
        )
    if width != out.size:
        raise ValueError(
            f"{top_at}: the network gives {width} outputs, the top function declares {out.size}"
        )
    return HLSProject(
        path=Path(path),
        top=top.name,
        input_name=inp.name,
        input_type=inp.type,
        n_inputs=inp.size,
        output_type=out.type,
        n_outputs=out.size,
        layers=tuple(layers),
        inputs=inputs,
        outputs=outputs,
    )


def _layer_names(raw_cpp: str) -> dict[str, str]:
    """hls4ml ends each layer call with ``// layer_name``; map the call text to it."""
    out = {}
    for m in re.finditer(r"(nnet::\w+\s*<.*?>\s*\([^;]*?\)\s*;)[ \t]*//[ \t]*(\S+)", raw_cpp):
        out[re.sub(r"\s+", "", m.group(1))] = m.group(2)
    return out
