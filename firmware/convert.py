"""hls4ml conversion of the quantized pair with every type taken from the FirmwareSpec.

hls4ml infers types from the model (QKeras quantizers, QONNX Quant nodes) and fills
the rest with defaults; the spec must win, so the conversion runs twice: a first,
throw-away pass reveals the layer names hls4ml gives each frontend's graph
(QKeras keeps Keras names, QONNX gets names from its optimizer passes), the
layers are matched to the spec by walking each output branch back to the input
(branch i = autoencoder i, the k-th dense layer = the spec's k-th layer), and
the second pass sets every precision by name (``granularity='name'``): input,
weight, bias, accumulator, result and activation result. Nothing is left to
``auto``.

io_parallel, reuse factor 1 by default: every product exists once per weight, so the design
accepts one event per clock (II = 1); see :class:`ConversionSettings` for the bound a larger
reuse factor must respect. The dense layers use hls4ml's ``distributed_arithmetic`` strategy by
default: da4ml solves each constant matrix-vector product into shift-and-add logic (no DSPs),
the implementation the headline cost estimate (:mod:`firmware.cost`) describes, solved with the
same depth option (``firmware.trace.SOLVER_OPTIONS``). It computes every weighted sum exactly and
ignores the accumulator type, so it equals the Latency strategy (and the emulator) exactly when
each accumulator holds every sum (:func:`firmware.options.check_spec_types` checks this).
``strategy="latency"`` writes hls4ml's Latency strategy instead.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.defaults import BACKENDS, DEFAULT_PART, DEFAULT_STRATEGY, STRATEGIES
from quantize.keras_compat import import_hls4ml
from quantize.spec import FirmwareSpec

__all__ = [
    "BACKENDS",
    "BUNCH_SPACING_NS",
    "FRONTENDS",
    "NETS_NAME",
    "STRATEGIES",
    "ConversionSettings",
    "clean_qonnx",
    "convert",
    "cycles_per_bunch_crossing",
    "precision_config",
]

FRONTENDS = ("keras", "qonnx")
NETS_NAME = "trigger_nets"
BUNCH_SPACING_NS = 25.0
# hls4ml's spelling of each strategy
HLS4ML_STRATEGY = {"distributed_arithmetic": "distributed_arithmetic", "latency": "Latency"}
# how hls4ml 1.3 refuses a layer for DA ("Layer X of type T is not supported by DA optimizer.",
# "Layer X has rf = N != 1, but has strategy = DA.")
_DA_REFUSAL = re.compile(r"^Layer \S+ .*(not supported by DA optimizer|but has strategy = )")


def cycles_per_bunch_crossing(clock_period_ns: float) -> int:
    """Clock cycles in one 25 ns bunch crossing (at least 1): the largest II that keeps up with 40 MHz.

    The 1e-9 tolerance keeps clocks such as 25/6 ns from losing a cycle to float rounding.
    """
    return max(1, math.floor(BUNCH_SPACING_NS / clock_period_ns + 1e-9))


@dataclass(frozen=True)
class ConversionSettings:
    """Backend, part, clock, reuse factor and the dense layers' strategy.

    With io_parallel and the Latency strategy the design's II is the reuse factor (in clock
    cycles); a new event arrives every 25 ns, so the reuse factor may be at most
    floor(25 ns / clock). The default 1 (every multiplication in parallel) gives II = 1 and
    the lowest latency, which is what a trigger wants; a larger one trades latency for
    fewer multipliers. ``strategy``: ``distributed_arithmetic`` (da4ml's shift-and-add logic,
    reuse factor 1 only) or ``latency`` (hls4ml's products and adder trees).
    """

    backend: str = "Vitis"
    part: str = DEFAULT_PART
    clock_period_ns: float = 5.0
    reuse_factor: int = 1
    strategy: str = DEFAULT_STRATEGY

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if not self.clock_period_ns > 0:
            raise ValueError(f"clock period must be positive, got {self.clock_period_ns} ns")
        if not 1 <= self.reuse_factor <= self.max_reuse_factor:
            raise ValueError(
                f"reuse factor {self.reuse_factor} must be in 1..{self.max_reuse_factor}: II = reuse factor "
                f"cycles of {self.clock_period_ns:g} ns must fit one bunch crossing ({BUNCH_SPACING_NS:g} ns)"
            )
        if self.strategy == "distributed_arithmetic" and self.reuse_factor != 1:
            raise ValueError(
                f"reuse factor {self.reuse_factor}: the distributed_arithmetic strategy builds every "
                "product in logic (reuse factor 1); use strategy latency to share multipliers"
            )

    @property
    def max_reuse_factor(self) -> int:
        return cycles_per_bunch_crossing(self.clock_period_ns)


def _model_config(settings: ConversionSettings) -> dict[str, Any]:
    return {
        "Model": {
            "Precision": "ap_fixed<16,6>",  # never used: every layer gets its own below
            "ReuseFactor": settings.reuse_factor,
            "Strategy": HLS4ML_STRATEGY[settings.strategy],
            "BramFactor": 1_000_000_000,  # weights as constants, never BRAM
            "TraceOutput": False,
        },
        "LayerName": {},
    }


def _branches(hls_model: Any) -> list[list[Any]]:
    """For each model output, its layers from the input to the output (in order)."""
    producer = {}
    for layer in hls_model.get_layers():
        for out in layer.outputs:
            producer[out] = layer
    branches = []
    for out in hls_model.outputs:
        chain, layer = [], producer[out]
        while True:
            chain.append(layer)
            if layer.class_name == "Input" or not layer.inputs or layer.inputs[0] not in producer:
                break
            if len(layer.inputs) != 1:
                raise ValueError(
                    f"hls4ml layer {layer.name!r} has {len(layer.inputs)} inputs: not a dense autoencoder"
                )
            layer = producer[layer.inputs[0]]
        branches.append(chain[::-1])
    return branches


def _is_dense(layer: Any) -> bool:
    return layer.class_name in ("Dense", "QDense")


def precision_config(spec: FirmwareSpec, hls_model: Any) -> dict[str, dict[str, Any]]:
    """``LayerName`` config setting every type of the hls4ml graph from the spec."""
    branches = _branches(hls_model)
    if len(branches) != 2:
        raise ValueError(
            f"the hls4ml model has {len(branches)} outputs; the trigger needs 2 (one per autoencoder)"
        )
    config: dict[str, dict[str, Any]] = {}
    for a, (chain, ae) in enumerate(zip(branches, spec.autoencoders, strict=True)):
        dense_at = [i for i, layer in enumerate(chain) if _is_dense(layer)]
        if len(dense_at) != len(ae.layers):
            raise ValueError(
                f"autoencoder {a + 1}: the model has {len(dense_at)} dense layers, the FirmwareSpec {len(ae.layers)}"
            )
        for layer in chain[: dense_at[0]]:  # input layer and any input quantizer
            config[layer.name] = {"Precision": {"result": str(spec.input)}}
        for k, (i, d) in enumerate(zip(dense_at, ae.layers, strict=True)):
            layer = chain[i]
            n_out = layer.get_attr("n_out")
            if n_out is not None and n_out != d.n_out:
                raise ValueError(
                    f"{layer.name}: {n_out} outputs in the model, {d.n_out} in spec layer {d.name}"
                )
            prec = {"weight": str(d.weight), "accum": str(d.accumulator), "result": str(d.result)}
            if d.bias is not None:
                prec["bias"] = str(d.bias)
            config[layer.name] = {"Precision": prec}
            end = dense_at[k + 1] if k + 1 < len(dense_at) else len(chain)
            after = chain[i + 1 : end]
            for j, act in enumerate(after):
                last = j == len(after) - 1
                config[act.name] = {
                    "Precision": {"result": str(d.activation_result if last else d.result)}
                }
            if not after and d.activation != "linear":
                raise ValueError(
                    f"{layer.name}: spec says {d.activation} but the model has no activation layer"
                )
            if not after and d.activation_result != d.result:
                raise ValueError(
                    f"{layer.name}: no activation layer to cast {d.result} to the spec's {d.activation_result}"
                )
    return config


def convert(
    model: Any,
    spec: FirmwareSpec,
    output_dir: str | os.PathLike[str],
    settings: ConversionSettings,
    frontend: str = "keras",
) -> Any:
    """hls4ml ModelGraph of the two-output pair (``models.load_*_pair``), written nowhere yet."""
    hls4ml = import_hls4ml()
    if frontend not in FRONTENDS:
        raise ValueError(f"frontend {frontend!r} is not one of {', '.join(FRONTENDS)}")
    if frontend == "qonnx":
        model = clean_qonnx(model)
    common = dict(
        output_dir=str(Path(output_dir)),
        project_name=NETS_NAME,
        backend=settings.backend,
        part=settings.part,
        clock_period=settings.clock_period_ns,
        io_type="io_parallel",
    )
    config = _model_config(settings)

    def _convert(cfg: dict[str, Any]) -> Any:
        # hls4ml prints every layer it converts; keep that for when conversion fails
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stdout(chatter), _da_solver_options(), _da_input_layers():
                if frontend == "keras":
                    return hls4ml.converters.convert_from_keras_model(
                        model, hls_config=cfg, **common
                    )
                return hls4ml.converters.convert_from_onnx_model(model, hls_config=cfg, **common)
        except Exception as err:
            sys.stderr.write(chatter.getvalue())
            if settings.strategy == "distributed_arithmetic" and _DA_REFUSAL.search(str(err)):
                # hls4ml names the layer it cannot implement with distributed arithmetic
                raise ValueError(f"strategy distributed_arithmetic: {err}") from None
            raise

    # the probe keeps every linear activation (the casts the spec may need) in the graph
    # (hls4ml drops a linear activation whose type equals its input's, so activations get a distinct one)
    probe_types = {"Precision": {"result": "ap_fixed<60,28>"}}
    # (and uses the Latency strategy: names do not depend on it, da4ml's solve would be wasted here)
    probe = _convert(
        {
            **config,
            "Model": {**config["Model"], "Strategy": "Latency"},
            "LayerType": {
                "Activation": probe_types,
                "Dense": {"Precision": {"result": "ap_fixed<61,29>"}},
            },
        }
    )
    config["LayerName"] = precision_config(spec, probe)
    # a layer hidden from the probe by an optimizer shows up once the spec's types differ: repeat
    for _ in range(3):
        hls_model = _convert(config)
        unset = [
            layer.name for layer in hls_model.get_layers() if layer.name not in config["LayerName"]
        ]
        if not unset:
            break
        config["LayerName"].update(precision_config(spec, hls_model))
    else:
        raise ValueError(f"hls4ml layers without a FirmwareSpec type: {', '.join(unset)}")
    if settings.strategy == "distributed_arithmetic":
        plain = [
            layer.name
            for layer in hls_model.get_layers()
            if _is_dense(layer) and "da_codegen" not in layer.attributes
        ]
        if plain:
            raise ValueError(
                f"strategy distributed_arithmetic: hls4ml left dense layers {', '.join(plain)} without DA code"
            )
    return hls_model


@contextlib.contextmanager
def _da_input_layers() -> Iterator[None]:
    """hls4ml 1.3's DA pass looks a dense layer's input up as a *layer* name, but a layer's inputs
    are its producers' *output variable* names. Keras graphs name both alike; the QONNX reader does
    not (layer ``Quant_18_act`` writes ``Quant_18_out0``), and the pass stops with "has input ...
    which is not in the model". While converting, resolve each input to the layer producing it
    (the pass only asks whether that layer is a quantizer it can fuse)."""
    from hls4ml.backends.vivado.passes import distributed_arithmetic as da

    original = da.get_input_layers

    def get_input_layers(layer: Any) -> list[Any]:
        graph = layer.model.graph
        producer = {out: node for node in graph.values() for out in node.outputs}
        return [producer.get(name) or graph[name] for name in layer.inputs]

    da.get_input_layers = get_input_layers
    try:
        yield
    finally:
        da.get_input_layers = original


@contextlib.contextmanager
def _da_solver_options() -> Iterator[None]:
    """hls4ml's DA pass reads da4ml's depth option from ``DA_HARD_DC`` (its default: 2); set it to the
    estimate's (``firmware.trace.SOLVER_OPTIONS``) so the project's kernels are solved as the cost
    table assumes, and restore the variable afterwards."""
    from firmware.trace import SOLVER_OPTIONS

    old = os.environ.get("DA_HARD_DC")
    os.environ["DA_HARD_DC"] = str(SOLVER_OPTIONS["hard_dc"])
    try:
        yield
    finally:
        if old is None:
            del os.environ["DA_HARD_DC"]
        else:
            os.environ["DA_HARD_DC"] = old


def clean_qonnx(model: Any) -> Any:
    """qonnx cleanup + channels-last + Gemm->MatMul, the preparation hls4ml's QONNX reader expects."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    wrapped = ModelWrapper(model)
    wrapped = cleanup_model(wrapped)
    wrapped = wrapped.transform(ConvertToChannelsLastAndClean())
    wrapped = wrapped.transform(GemmToMatMul())
    return cleanup_model(wrapped)
