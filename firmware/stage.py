"""The ``firmware`` stage of ``l1ad run``: the HLS project of a quantized model, checked bit for bit
against the reference, costed and budget-checked (:func:`firmware.build.build_firmware`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from firmware.build import FirmwareResult, build_firmware, load_quantized
from firmware.calibration import estimate_error
from firmware.convert import ConversionSettings
from firmware.defaults import DEFAULT_CSIM_EVENTS
from firmware.example import event_words
from firmware.options import check_spec_types


@dataclass
class FirmwareStageResult:
    """The built project and where its model came from."""

    build: FirmwareResult
    frontend: str  # "qonnx" or "keras"
    origin: str  # the files the model was read from
    # measured estimate / published Vivado figure per metric on the calibration set (firmware.calibration)
    estimate_error: dict[str, object]


def print_result(result: FirmwareResult, console: Console) -> None:
    """What ``l1ad firmware`` prints: the checks, the cost table, its notes and the budget verdict."""
    # console: markup=False (the table holds ap_fixed<...>[...] text rich would parse)
    console.print(
        f"wrote {result.project.path} ({result.settings.backend}, {result.project.frontend} frontend, "
        f"dense layers: {result.settings.strategy} strategy)"
    )
    console.print(
        f"C simulation (g++) of the whole trigger vs the integer emulator: "
        f"{result.csim_mismatches} mismatching events of {result.csim_events}"
    )
    if result.emulator_library is not None:
        console.print(
            f"emulator library {result.emulator_library} (hls4mlEmulator::Model) vs the integer emulator: "
            f"{result.emulator_mismatches} mismatching events of {result.csim_events}"
        )
    if result.cost.rtl_mismatches is not None:
        console.print(
            f"RTL (Verilator) vs emulator: {result.cost.rtl_mismatches} mismatches of {result.cost.rtl_events}"
        )
    console.print(result.cost.table().to_string())
    for note in result.cost.notes:
        console.print(f"note: {note}")
    console.print(result.verdict.summary())


def firmware_stage(
    quantized_dir: str | os.PathLike[str],
    project_dir: str | os.PathLike[str],
    settings: ConversionSettings,
    latency_budget_ns: float,
    framework: str | None = None,
    models: list[Path] | None = None,
    events: Path | None = None,
    csim_events: int = DEFAULT_CSIM_EVENTS,
    seed: int = 0,
    tb_events: int = 1000,
    rtl_events: int = 2000,
    use_verilator: bool = True,
    use_yosys: bool = True,
    emulator: bool = False,
    fail_over_budget: bool = False,
    console: Console | None = None,
) -> FirmwareStageResult:
    """Build the project of the model in ``quantized_dir`` (``models``: its exported files) into
    ``project_dir``, C-simulating ``csim_events`` events of ``events`` (toy events without a file)
    against the trigger emulator of its spec and weights; prints the outcome on ``console``.

    Raises ``ValueError`` when the C simulation or the emulator library differs from the reference,
    and ``BudgetError`` over the budget when ``fail_over_budget``."""
    quantized_dir = Path(quantized_dir)
    model = load_quantized(quantized_dir, framework, models)
    check_spec_types(model.spec, str(quantized_dir / "spec.json"), settings.strategy)
    words = event_words(events, csim_events, model.spec, seed)
    result = build_firmware(
        model,
        project_dir,
        settings,
        words,
        latency_budget_ns,
        tb_events=tb_events,
        rtl_events=rtl_events,
        use_verilator=use_verilator,
        use_yosys=use_yosys,
        emulator=emulator,
    )
    if console is not None:
        print_result(result, console)
    if result.csim_mismatches:
        raise ValueError(
            f"firmware: {result.project.path}: C simulation differs from the emulator in {result.csim_mismatches} events"
        )
    if result.emulator_mismatches:
        raise ValueError(
            f"firmware: {result.project.path}: the emulator library differs from the emulator in "
            f"{result.emulator_mismatches} events"
        )
    if fail_over_budget:
        result.verdict.raise_if_over()
    return FirmwareStageResult(result, model.frontend, model.origin, estimate_error())
