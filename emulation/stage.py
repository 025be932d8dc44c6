"""The ``emulation`` stage of ``l1ad run``: the trigger of a FirmwareSpec on every event file of the
run. The check against the C simulation of the run's firmware project, when there is one, is
``firmware``'s (:func:`firmware.trigger_csim.check_emulation` fills the ``csim_*`` figures)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from emulation.workflow import emulate_trigger_files, overflow_table


@dataclass
class TriggerEmulation:
    """Per-event outputs (``scores``, HDF5) and the trigger's figures."""

    scores: Path
    events_emulated: int
    events_per_s: (
        float | None
    )  # steady state: measured on speed_events events (the files' first events repeated)
    events_per_cpu_s: float | None
    speed_events: int
    rate_khz: float | None  # of the background at 40 MHz
    rate_sigma_khz: float | None
    efficiency: dict[str, float | None]  # per signal process
    table: pd.DataFrame  # per process: fired fraction and ABCD region counts
    overflows: pd.DataFrame  # per cast that overflowed (empty: none did)
    csim_events_compared: int = 0
    csim_mismatches: int | None = None
    csim_events_per_s: float | None = None
    csim_project: str | None = None


def emulate_stage(
    spec_dir: str | os.PathLike[str],
    events: list[Path],
    out: str | os.PathLike[str],
    chunk_size: int = 200_000,
    console: Console | None = None,
    workers: int = 1,
    speed_events: int = 100_000,
) -> TriggerEmulation:
    """Emulate the trigger of ``spec_dir`` on ``events`` into ``out`` (no C-simulation figures yet). The
    speed is measured on ``speed_events`` events (``emulation.workflow.emulator_speed``), not on a small
    test set."""
    summary = emulate_trigger_files(spec_dir, list(events), out, chunk_size, console, workers,
                                    speed_events=speed_events)  # fmt: skip
    return TriggerEmulation(
        scores=Path(out),
        events_emulated=summary["events_emulated"],
        events_per_s=summary["events_per_s"],
        events_per_cpu_s=summary.get("events_per_cpu_s"),
        speed_events=summary.get("speed_events", summary["events_emulated"]),
        rate_khz=summary["rate_khz"],
        rate_sigma_khz=summary["rate_sigma_khz"],
        efficiency=summary["efficiency"],
        table=summary["table"],
        overflows=overflow_table(summary["overflows"]),
    )
