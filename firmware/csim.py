"""Bridge to hls4ml's C simulation of plain network projects: the reference the emulator is checked against.

``CSimulation(project_dir)`` links an hls4ml project (``hls4ml_config.yml`` +
``firmware/``), compiles it with g++ through hls4ml (its ``build_lib.sh``) and runs
``predict`` (hls4ml's per-event ctypes loop, ~10^4 events/s). ``write_qkeras_project``
converts a plain QKeras model with hls4ml (io_parallel, Latency or distributed_arithmetic,
granularity='name') and writes and compiles it: projects that l1ad did not design.

:func:`compare_plain_csim` checks ``emulation.emulate_plain``'s outputs against it (``l1ad emulate
--inputs --compare-csim``). hls4ml and QKeras are imported through ``quantize.keras_compat``
(tf_keras workaround).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["CSimulation", "build_qkeras_dense", "compare_plain_csim", "write_qkeras_project"]


def _hls4ml() -> ModuleType:
    from quantize.keras_compat import import_hls4ml

    return import_hls4ml()


class CSimulation:
    """hls4ml C simulation of an existing project directory."""

    def __init__(self, project_dir: str | os.PathLike[str], compile: bool = True) -> None:
        """Link the project; with ``compile``, build it (or load the library an earlier build left)."""
        self.path = Path(project_dir).resolve()
        if not (self.path / "hls4ml_config.yml").exists():
            raise ValueError(
                f"{self.path}: no hls4ml_config.yml; C simulation needs a project written by hls4ml"
            )
        if shutil.which("g++") is None:
            raise OSError("g++ not found: hls4ml C simulation needs a C++ compiler")
        hls4ml = _hls4ml()
        with warnings.catch_warnings():
            # hls4ml's link_existing_project leaves its yaml file handle to the garbage collector.
            warnings.simplefilter("ignore", ResourceWarning)
            self.model = hls4ml.converters.link_existing_project(str(self.path))
        written_in = Path(str(self.model.config.get_output_dir())).resolve()
        # The config records the directory it was written to; compile where it is now.
        self.model.config.config["OutputDir"] = str(self.path)
        self._order_like_the_bridge()
        self.compile_seconds = 0.0
        if compile and not (written_in == self.path and self._load_existing()):
            self.compile()

    def _order_like_the_bridge(self) -> None:
        """Inputs and outputs in the order of the compiled bridge's arguments.

        Why: hls4ml's ``link_existing_project`` takes them from ``hls4ml_config.yml``, whose
        keys YAML sorts by name; with several outputs (``layer11_out`` before ``layer3_out``)
        ``predict`` would then hand the library buffers of the wrong sizes.
        """
        bridge = self.path / f"{self.model.config.get_project_name()}_bridge.cpp"
        if not bridge.exists():
            return
        m = re.search(r"void\s+\w+_double\s*\(([^)]*)\)", bridge.read_text(errors="replace"))
        if m is None:
            return
        order = {arg.split("*")[-1].strip(): i for i, arg in enumerate(m.group(1).split(","))}
        for variables in (self.model.in_vars, self.model.out_vars):
            variables.sort(key=lambda v: order.get(v.name, len(order)))

    def _load_existing(self) -> bool:
        """Load the library an earlier compile left, if it is newer than every source file.

        Only for a project still where it was written: the library holds its weights path.
        """
        config = self.model.config
        lib = (
            self.path
            / "firmware"
            / f"{config.get_project_name()}-{config.get_config_value('Stamp')}.so"
        )
        if not lib.exists():
            return False
        sources = [
            p for p in (self.path / "firmware").rglob("*") if p.suffix in (".h", ".cpp", ".txt")
        ]
        if any(p.stat().st_mtime > lib.stat().st_mtime for p in sources):
            return False
        self.model._top_function_lib = ctypes.cdll.LoadLibrary(str(lib))
        return True

    def compile(self) -> None:
        start = time.perf_counter()
        try:
            self.model.compile()
        except Exception as err:  # hls4ml raises bare Exception on compiler errors
            raise OSError(
                f"{self.path}: hls4ml could not compile the C simulation: {err}"
            ) from None
        self.compile_seconds = time.perf_counter() - start

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float64 outputs (N, n_out) for float inputs (N, n_in); inputs are cast to input_t in C++."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
        n = len(x)
        sizes = [v.size() for v in self.model.in_vars]
        inputs: np.ndarray | list[np.ndarray] = x
        if len(sizes) > 1:  # several inputs: their columns side by side, in argument order
            inputs = [
                np.ascontiguousarray(part)
                for part in np.split(x.reshape(n, -1), np.cumsum(sizes)[:-1], axis=1)
            ]
        y = self.model.predict(inputs)
        if isinstance(y, list):  # several outputs: side by side, as the emulator writes them
            return np.concatenate(
                [np.asarray(part, dtype=np.float64).reshape(n, -1) for part in y], axis=1
            )
        return np.asarray(y, dtype=np.float64).reshape(n, -1)


def build_qkeras_dense(
    layer_sizes: list[int],
    seed: int = 0,
    weight_bits: tuple[int, int] = (8, 2),
    relu_bits: tuple[int, int] = (8, 3),
    output_bits: tuple[int, int] | None = None,
) -> Any:
    """A plain QKeras dense network (random weights, no training needed for emulation tests).

    ``layer_sizes = [n_in, h1, ..., n_out]``: QDense with ``quantized_bits(*weight_bits,
    alpha=1)`` weights and biases, ``quantized_relu(*relu_bits)`` between layers and, when
    ``output_bits`` is given, a ``quantized_bits`` QActivation on the output.
    """
    from quantize.keras_compat import import_qkeras, use_legacy_keras

    keras = use_legacy_keras()
    qkeras = import_qkeras()
    keras.utils.set_random_seed(seed)
    wq = qkeras.quantized_bits(*weight_bits, alpha=1)
    inputs = keras.Input((layer_sizes[0],), name="x")
    h = inputs
    for k, n in enumerate(layer_sizes[1:]):
        h = qkeras.QDense(n, kernel_quantizer=wq, bias_quantizer=wq, name=f"dense{k}",
                          kernel_initializer=keras.initializers.RandomUniform(-1.5, 1.5, seed=seed + k),
                          bias_initializer=keras.initializers.RandomUniform(-1, 1, seed=seed + 100 + k))(h)  # fmt: skip
        if k < len(layer_sizes) - 2:
            h = qkeras.QActivation(qkeras.quantized_relu(*relu_bits), name=f"relu{k}")(h)
    if output_bits is not None:
        h = qkeras.QActivation(qkeras.quantized_bits(*output_bits, alpha=1), name="out")(h)
    return keras.Model(inputs, h)


def write_qkeras_project(
    model: Any,
    output_dir: str | os.PathLike[str],
    project_name: str = "myproject",
    backend: str = "Vivado",
    precision: dict[str, dict[str, str]] | None = None,
    compile: bool = True,
    strategy: str = "Latency",
    **writer: Any,
) -> CSimulation | Path:
    """Convert a QKeras model with hls4ml (io_parallel, granularity='name') and write it.

    ``strategy``: hls4ml's ``Strategy`` for every layer (``"Latency"``, or
    ``"distributed_arithmetic"``: da4ml's shift-and-add functions in ``nnet_code_gen.h``).

    ``precision`` overrides per layer, e.g. ``{"dense0": {"accum": "fixed<12,4,RND,SAT>"}}``;
    ``writer`` goes to hls4ml's writer config (``namespace="ns"``, ``write_weights_txt=False``).
    Returns a compiled :class:`CSimulation` (or the project path with ``compile=False``).
    """
    hls4ml = _hls4ml()
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=backend)
    config["Model"]["Strategy"] = strategy
    for layer, overrides in (precision or {}).items():
        if layer not in config["LayerName"]:
            raise ValueError(
                f"precision override for unknown layer {layer!r}; layers: {sorted(config['LayerName'])}"
            )
        config["LayerName"][layer].setdefault("Precision", {}).update(overrides)
    output_dir = Path(output_dir).resolve()
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, output_dir=str(output_dir), io_type="io_parallel",
        backend=backend, project_name=project_name, **writer,
    )  # fmt: skip
    hls_model.write()
    if not compile:
        return output_dir
    return CSimulation(output_dir)


def compare_plain_csim(
    project: str | os.PathLike[str], inputs: np.ndarray, outputs: np.ndarray, n: int
) -> dict[str, Any]:
    """C-simulate the first ``n`` rows of ``inputs`` through ``project`` and count the rows whose
    outputs differ from ``outputs`` (the emulator's): ``csim_events_compared``, ``csim_mismatches``,
    ``csim_events_per_s``."""
    n = min(n, len(inputs))
    sim = CSimulation(project)
    start = time.perf_counter()
    expected = sim.predict(inputs[:n])
    seconds = time.perf_counter() - start
    return {
        "csim_events_compared": n,
        "csim_mismatches": int(np.any(expected != outputs[:n], axis=1).sum()),
        "csim_events_per_s": n / seconds if seconds > 0 else None,
    }
