"""From a quantized model directory to a checked, costed HLS project: what ``l1ad firmware`` runs.

1. load the FirmwareSpec, its weights and the exported model (QONNX ``ae*.onnx`` from
   Brevitas or Keras ``ae*.h5`` from QKeras; without either, the QKeras pair is built
   from the spec itself);
2. convert with hls4ml (dense layers in the settings' strategy: distributed arithmetic by
   default) and write the project with the trigger wrapper and tb_data;
3. C-simulate the whole trigger (g++) on the events and compare every output bit with
   the integer trigger emulator (:class:`emulation.TriggerEmulator`);
4. with ``emulator``, build the ``hls4mlEmulator::Model`` library beside the project
   (:mod:`firmware.emulator_lib`) and compare it with the trigger emulator the same way;
5. estimate the hardware cost (da4ml; Verilator/Yosys when present; the hls4ml Latency model;
   vendor reports when present), the estimates of the project's strategy first, and check it
   against the latency budget and the part.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emulation.spec import FirmwareSpec, load_spec, load_weights
from emulation.trigger import TriggerEmulator
from firmware.budget import BudgetVerdict, check_budget
from firmware.convert import ConversionSettings
from firmware.cost import CostReport, estimate
from firmware.defaults import DEFAULT_LATENCY_BUDGET_NS
from firmware.emulator_lib import EMULATOR_DIR, EmulatorLibrary, build_emulator
from firmware.models import load_keras_pair, load_qonnx_pair, qkeras_pair_from_spec
from firmware.options import check_options, check_spec_types
from firmware.project import CSim, Project, compare, write_project
from firmware.trace import breakdown
from firmware.trigger_csim import PROJECT_FILE
from offline.artifacts import read_json, write_json


@dataclass
class QuantizedModel:
    spec: FirmwareSpec
    weights: dict[str, np.ndarray]
    model: Any
    frontend: str  # "qonnx" or "keras"
    origin: str


def load_quantized(
    directory: str | os.PathLike[str],
    framework: str | None = None,
    models: list[Path] | None = None,
) -> QuantizedModel:
    """The spec, weights and exported model of a ``quantize`` output directory (``models``: the
    exported files, when not ``ae1``/``ae2`` beside the spec)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory}: quantized model directory does not exist")
    spec = load_spec(directory)
    weights = load_weights(spec, directory)
    names = [ae.name for ae in spec.autoencoders]
    onnx = [directory / f"{n}.onnx" for n in names]
    keras = [directory / f"{n}.h5" for n in names]
    if models:
        models = [Path(m) for m in models]
        if all(m.suffix == ".onnx" for m in models):
            onnx = models
        else:
            keras = models
    want = {"brevitas": "qonnx", "qonnx": "qonnx", "qkeras": "keras", "keras": "keras", None: None}
    if framework not in want:
        raise ValueError(f"framework {framework!r} is not one of brevitas, qkeras")
    choice = want[framework]
    if choice in (None, "qonnx") and all(p.exists() for p in onnx):
        return QuantizedModel(
            spec, weights, load_qonnx_pair(onnx), "qonnx", ", ".join(map(str, onnx))
        )
    if choice in (None, "keras") and all(p.exists() for p in keras):
        return QuantizedModel(
            spec, weights, load_keras_pair(keras), "keras", ", ".join(map(str, keras))
        )
    if choice == "qonnx":
        raise ValueError(f"{directory}: no QONNX export ({', '.join(p.name for p in onnx)})")
    return QuantizedModel(
        spec,
        weights,
        qkeras_pair_from_spec(spec, weights),
        "keras",
        f"QKeras pair built from {directory / 'spec.json'}",
    )


@dataclass
class FirmwareResult:
    project: Project
    settings: ConversionSettings
    cost: CostReport
    verdict: BudgetVerdict
    csim_events: int
    csim_mismatches: int
    emulator_library: Path | None = None
    emulator_mismatches: int | None = None

    def summary(self) -> dict[str, Any]:
        """The ``firmware`` object of summary.json."""

        def best(metric: str) -> float | None:
            return self.cost.best(metric)[0]

        sources = sorted(
            {self.cost.best(m)[1] for m in ("latency_cycles", "luts", "ffs", "dsps", "brams")}
        )
        cycles, ii = best("latency_cycles"), best("ii_cycles")
        beside = {
            m: self.cost.beside(m)[0]
            for m in ("latency_cycles", "latency_ns", "luts", "ffs", "dsps")
        }
        return {
            "project": str(self.project.path),
            "backend": self.settings.backend,
            # the dense layers' implementation, which the headline figures below describe
            "strategy": self.settings.strategy,
            "frontend": self.project.frontend,
            "part": self.settings.part,
            "clock_period_ns": self.settings.clock_period_ns,
            "latency_cycles": None if cycles is None else int(cycles),
            "latency_ns": best("latency_ns"),
            "ii_cycles": None if ii is None else int(ii),
            "luts": best("luts"),
            "ffs": best("ffs"),
            "dsps": best("dsps"),
            "brams": best("brams"),
            "estimate_source": "; ".join(sources),
            # the same trigger written with the other strategy: its estimate, labelled
            "beside": {
                "strategy": self.cost.other_strategy,
                "source": "; ".join(sorted({self.cost.beside(m)[1] for m in beside})),
                **beside,
            },
            "latency_budget_ns": self.verdict.latency_budget_ns,
            "within_budget": self.verdict.within_budget,
            "csim_events": self.csim_events,
            "csim_mismatches": self.csim_mismatches,
            "rtl_events": self.cost.rtl_events,
            "rtl_mismatches": self.cost.rtl_mismatches,
            "emulator_library": None
            if self.emulator_library is None
            else str(self.emulator_library),
            "emulator_mismatches": self.emulator_mismatches,
        }


def build_firmware(
    quantized: QuantizedModel,
    directory: str | os.PathLike[str],
    settings: ConversionSettings,
    words: np.ndarray,
    latency_budget_ns: float = DEFAULT_LATENCY_BUDGET_NS,
    tb_events: int = 1000,
    rtl_events: int = 2000,
    use_verilator: bool = True,
    use_yosys: bool = True,
    emulator: bool = False,
) -> FirmwareResult:
    """Write, C-simulate, cost and budget-check the trigger project (raises nothing on a budget miss:
    see ``result.verdict``).

    The trigger emulator of ``quantized``'s spec and weights gives the expected outputs: tb_data,
    the C simulation and the RTL are checked against it, and so is the emulator library when
    ``emulator`` asks for one.
    Options and spec types are checked before anything is written; a failure after the project
    is written removes it (``directory`` is whole or absent)."""
    check_options(
        settings.backend,
        settings.part,
        settings.clock_period_ns,
        latency_budget_ns,
        settings.reuse_factor,
        settings.strategy,
    )
    check_spec_types(quantized.spec, strategy=settings.strategy)
    words = np.asarray(words, dtype=np.int64)
    spec = quantized.spec
    project = write_project(
        directory,
        spec,
        quantized.weights,
        quantized.model,
        settings,
        words[:tb_events],
        quantized.frontend,
        emulator=emulator,
    )
    try:
        return _check_and_cost(quantized, project, settings, words, latency_budget_ns, rtl_events, use_verilator,
                               use_yosys, emulator)  # fmt: skip
    except BaseException:
        shutil.rmtree(
            project.path, ignore_errors=True
        )  # a build that failed leaves no project behind
        raise


def _check_and_cost(
    quantized: QuantizedModel,
    project: Project,
    settings: ConversionSettings,
    words: np.ndarray,
    latency_budget_ns: float,
    rtl_events: int,
    use_verilator: bool,
    use_yosys: bool,
    emulator: bool,
) -> FirmwareResult:
    spec, weights = quantized.spec, quantized.weights
    csim = CSim(project.path, spec)
    expected = TriggerEmulator(spec, weights)(words)
    mismatches = compare(csim(words), expected)
    library, emulator_mismatches = None, None
    if emulator:
        library = build_emulator(project.path / EMULATOR_DIR)
        emulator_mismatches = compare(EmulatorLibrary(library, spec)(words), expected)
    cost = estimate(
        spec,
        weights,
        settings.clock_period_ns,
        project.path / "cost",
        check_words=words[:rtl_events],
        part=settings.part,
        use_verilator=use_verilator,
        use_yosys=use_yosys,
        project=project.path,
        strategy=settings.strategy,
    )
    kernels = read_json(project.path / PROJECT_FILE).get("da_kernel_luts") or {}
    if kernels:
        cost.notes.append(
            f"this project's {len(kernels)} distributed-arithmetic dense kernels (hls4ml, solved by da4ml): "
            f"{sum(kernels.values()):.0f} LUTs by da4ml's count (the dense layers alone)"
        )
    verdict = check_budget(cost, latency_budget_ns, settings.part)
    if not verdict.within_budget:
        verdict = check_budget(
            cost, latency_budget_ns, settings.part, contributors=breakdown(spec, weights)
        )
    result = FirmwareResult(
        project, settings, cost, verdict, len(words), mismatches, library, emulator_mismatches
    )
    cost.table().to_csv(project.path / "cost" / "cost.csv")
    write_json(
        project.path / "cost" / "summary.json",
        {**result.summary(), "notes": cost.notes, "verdict": verdict.summary()},
    )
    return result
