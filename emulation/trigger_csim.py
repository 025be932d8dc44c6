"""The emulator against the C simulation of the whole trigger project (``firmware``'s hls4ml project).

The project (``hls_projects/NAME``, written by ``firmware.write_project``) holds the hls4ml
network function, the trigger wrapper and a ctypes bridge; ``firmware.project.CSim``
compiles it with g++ and runs ``trigger_top`` event by event. Every output (R1, R2, the
four region bits, the trigger bit) is compared with :class:`emulation.trigger.TriggerEmulator`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulation.trigger import TriggerEmulator
from offline.artifacts import read_json
from quantize.spec import FirmwareSpec

__all__ = ["CSimComparison", "compare_trigger_csim", "find_trigger_project", "write_trigger_project"]

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


def _comparable(spec_dict: dict) -> dict:
    return {k: v for k, v in spec_dict.items() if k != "metadata"}


def check_project(project: str | os.PathLike[str], spec: FirmwareSpec) -> Path:
    """The project directory, after checking it was written for this very spec."""
    project = Path(project)
    meta = project / PROJECT_FILE
    if not meta.exists():
        raise ValueError(f"{project}: not a trigger project written by l1ad firmware (no {PROJECT_FILE})")
    written = read_json(meta).get("spec")
    if not isinstance(written, dict) or _comparable(written) != _comparable(spec.to_dict()):
        raise ValueError(f"{project}: written for a different FirmwareSpec than the one emulated")
    return project


def compare_trigger_csim(
    spec: FirmwareSpec, weights: dict[str, np.ndarray], project: str | os.PathLike[str], words: np.ndarray
) -> CSimComparison:
    """C-simulate ``words`` (N, 57) through the project's ``trigger_top`` and count events whose outputs differ."""
    from firmware.project import CSim

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
    return CSimComparison(len(words), int(bad.sum()), csim_seconds, emu_seconds, np.flatnonzero(bad)[:10].tolist())


def write_trigger_project(
    spec: FirmwareSpec, weights: dict[str, np.ndarray], directory: str | os.PathLike[str], tb_words: np.ndarray
) -> Path:
    """A trigger project for the spec (QKeras pair built from it, default conversion settings): when a run has none."""
    from firmware.convert import ConversionSettings
    from firmware.models import qkeras_pair_from_spec
    from firmware.project import write_project

    model = qkeras_pair_from_spec(spec, weights)
    reference = TriggerEmulator(spec, weights)
    return write_project(directory, spec, reference, model, ConversionSettings(), np.asarray(tb_words)[:100]).path
