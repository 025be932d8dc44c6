"""The emulator against the C simulation of the whole trigger project (``firmware``'s hls4ml project).

The project (``hls_projects/NAME``, written by :func:`firmware.project.write_project`) holds the
hls4ml network function, the trigger wrapper and a ctypes bridge; :class:`firmware.project.CSim`
compiles it with g++ and runs ``trigger_top`` event by event. Every output (R1, R2, the
four region bits, the trigger bit) is compared with :class:`emulation.trigger.TriggerEmulator`:
for ``l1ad emulate --compare-csim`` (:func:`compare_trigger_files_csim`) and the ``emulation``
stage of ``l1ad run`` (:func:`check_emulation`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from emulation.events import background_and_edge_words, load_trigger
from emulation.spec import FirmwareSpec, SpecError
from emulation.stage import TriggerEmulation
from emulation.trigger import TriggerEmulator
from firmware.project import CSim, write_project
from offline.artifacts import read_json

__all__ = [
    "CSimComparison",
    "check_emulation",
    "compare_trigger_csim",
    "compare_trigger_files_csim",
    "find_trigger_project",
    "write_trigger_project",
]

PROJECT_FILE = "l1ad_firmware.json"


@dataclass
class CSimComparison:
    events: int
    mismatches: int
    csim_seconds: float
    emulator_seconds: float
    first_mismatches: list[int]

    @property
    def csim_events_per_s(self) -> float | None:
        return self.events / self.csim_seconds if self.csim_seconds > 0 else None

    @property
    def emulator_events_per_s(self) -> float | None:
        return self.events / self.emulator_seconds if self.emulator_seconds > 0 else None


def find_trigger_project(model: str | os.PathLike[str]) -> Path | None:
    """The firmware project of a run directory (its ``summary.json``), if it recorded one that exists."""
    summary = Path(model) / "summary.json"
    if not summary.exists():
        return None
    project = read_json(summary).get("firmware", {}).get("project")
    if project and (Path(project) / PROJECT_FILE).exists():
        return Path(project)
    return None


def _comparable(spec_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec_dict.items() if k != "metadata"}


def check_project(project: str | os.PathLike[str], spec: FirmwareSpec) -> Path:
    """The project directory, after checking it was written for this very spec."""
    project = Path(project)
    meta = project / PROJECT_FILE
    if not meta.exists():
        raise ValueError(
            f"{project}: not a trigger project written by l1ad firmware (no {PROJECT_FILE})"
        )
    written = read_json(meta).get("spec")
    try:  # a project written with a version-1 spec compares through the converter
        same = _comparable(FirmwareSpec.from_dict(written).to_dict()) == _comparable(spec.to_dict())
    except ValueError:
        same = False
    if not same:
        raise ValueError(f"{project}: written for a different FirmwareSpec than the one emulated")
    return project


def compare_trigger_csim(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    project: str | os.PathLike[str],
    words: np.ndarray,
) -> CSimComparison:
    """C-simulate ``words`` (N, 57) through the project's ``trigger_top`` and count events whose outputs differ."""
    project = check_project(project, spec)
    words = np.ascontiguousarray(words, dtype=np.int64)
    sim = CSim(project, spec)
    start = time.perf_counter()
    expected = sim(words)
    csim_seconds = time.perf_counter() - start
    emulator = TriggerEmulator(spec, weights)
    start = time.perf_counter()
    got = emulator(words)
    emu_seconds = time.perf_counter() - start
    bad = got.mismatches(expected)
    return CSimComparison(
        len(words), int(bad.sum()), csim_seconds, emu_seconds, np.flatnonzero(bad)[:10].tolist()
    )


def write_trigger_project(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    directory: str | os.PathLike[str],
    tb_words: np.ndarray,
) -> Path:
    """A trigger project for the spec (QKeras pair built from it, default conversion settings): when a run has none.

    The default strategy (distributed arithmetic) refuses an accumulator that rounds or saturates;
    such a spec gets hls4ml's Latency strategy, which carries it exactly."""
    # late: hls4ml and TensorFlow load with the conversion
    from firmware.convert import ConversionSettings
    from firmware.models import qkeras_pair_from_spec
    from firmware.options import check_spec_types

    try:
        check_spec_types(spec)
        settings = ConversionSettings()
    except SpecError:
        settings = ConversionSettings(strategy="latency")
    model = qkeras_pair_from_spec(spec, weights)
    return write_project(directory, spec, weights, model, settings, np.asarray(tb_words)[:100]).path


def compare_trigger_files_csim(
    model: str | os.PathLike[str],
    events: Sequence[str | os.PathLike[str]],
    n: int,
    project: str | os.PathLike[str] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """C-simulate ``n`` words (the first events of ``events``, background first, plus edge words)
    through ``project`` and count the events whose outputs differ from the emulator's.

    ``model``: a run directory, spec directory or spec file. ``project`` defaults to the run's
    firmware project; without one, a QKeras-frontend project is written to a temporary directory.
    Returns ``csim_events_compared``, ``csim_mismatches``, ``csim_events_per_s`` and ``csim_project``.
    """
    console = console or Console(stderr=True, markup=False)
    spec, weights, _ = load_trigger(model)
    words = background_and_edge_words(list(events), n, spec)
    project = project or find_trigger_project(model)
    with tempfile.TemporaryDirectory(prefix="l1ad_trigger_prj_") as tmp:
        if project is None:
            console.print(
                "no firmware project recorded for this model: writing one (hls4ml, QKeras frontend)"
            )
            project = write_trigger_project(spec, weights, Path(tmp) / "trigger", words)
        comparison = compare_trigger_csim(spec, weights, project, words)
    return {
        "csim_events_compared": comparison.events,
        "csim_mismatches": comparison.mismatches,
        "csim_events_per_s": comparison.csim_events_per_s,
        "csim_project": str(project),
    }


def check_emulation(
    emulation: TriggerEmulation,
    spec_dir: str | os.PathLike[str],
    events: list[Path],
    project: Path,
    n: int,
    console: Console | None = None,
) -> TriggerEmulation:
    """The ``emulation`` stage's result with its C-simulation figures: ``n`` events of ``events``
    (background first) through the run's firmware ``project``."""
    figures = compare_trigger_files_csim(spec_dir, list(events), n, project, console)
    return dataclasses.replace(emulation, **figures)
