"""What ``l1ad emulate`` runs, callable from Python: files in, summary dicts and output files out.

- :func:`emulate_plain`: any hls4ml dense/ReLU project on float inputs (``.npy``), outputs to
  ``.npy``;
- :func:`emulate_trigger_files`: the trigger of a run or spec directory on event files, per-event
  scores and bits to HDF5, rate, efficiencies, ABCD counts, the emulator's steady-state speed.

The comparisons with the C simulation sit above, in ``firmware`` (``firmware.csim.compare_plain_csim``,
``firmware.trigger_csim.compare_trigger_files_csim``). Progress bars go to a ``rich`` console
(stderr by default).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from emulation.spec import FirmwareSpec
from offline.artifacts import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from emulation.fixed import OverflowCounter

__all__ = [
    "emulate_plain",
    "emulate_trigger_files",
    "emulator_speed",
    "load_inputs",
    "overflow_table",
]


def load_inputs(path: str | os.PathLike[str]) -> np.ndarray:
    """A numeric ``.npy`` array (no pickles); a missing or unreadable file is a ``ValueError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: inputs file does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array: {err}") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise ValueError(f"{path}: expected a numeric array, got {getattr(x, 'dtype', type(x))}")
    return x


def emulate_plain(
    model: str | os.PathLike[str],
    inputs: str | os.PathLike[str],
    out: str | os.PathLike[str],
    console: Console | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Emulate an hls4ml project on ``inputs`` (.npy, (N, n_in) floats); write outputs (N, n_out) float64.

    ``device``: where the float path runs ("cpu": numpy, "cuda": torch on the GPU, "auto").
    """
    from emulation.hls_project import load_hls_project
    from emulation.network import emulate_project

    console = console or Console(stderr=True, markup=False)
    project = load_hls_project(model)
    x = load_inputs(inputs)
    if x.ndim != 2 or x.shape[1] != project.n_inputs:
        raise ValueError(
            f"{inputs}: shape {x.shape}, the project {project.top} expects (N, {project.n_inputs})"
        )
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"emulating {project.top}", total=len(x))
        result = emulate_project(project, x, progress=lambda n: bar.advance(task, n), device=device)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, result.outputs)
    summary: dict[str, Any] = {
        "events_emulated": len(x),
        "events_per_s": result.events_per_s,
        "overflows": result.overflows.as_dict(),
    }
    return summary


def emulator_speed(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    words: np.ndarray,
    min_events: int = 100_000,
    repeat: int = 3,
    workers: int = 1,
    device: str | None = None,
) -> dict[str, float]:
    """The emulator's steady-state speed on ``words`` repeated to at least ``min_events`` events.

    Why: a run's test set can be a few thousand events, which one call emulates in
    milliseconds: timing that would measure start-up, not throughput. The fastest of
    ``repeat`` timings counts. Returns ``speed_events``, ``events_per_s`` (wall) and
    ``events_per_cpu_s`` (CPU time of all threads).
    """
    from emulation.trigger import TriggerEmulator

    words = np.asarray(words)
    if len(words) == 0:
        raise ValueError("no events to measure the emulator's speed on")
    n = max(min_events, len(words))
    sample = np.tile(words, (-(-n // len(words)), 1))[:n]
    emulator = TriggerEmulator(spec, weights, device=device)
    emulator(sample[:1000], workers=workers)  # warm-up: plans, caches, the allocator
    wall, cpu = [], []
    for _ in range(max(1, repeat)):
        w, c = time.perf_counter(), time.process_time()
        emulator(sample, workers=workers)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {
        "speed_events": n,
        "events_per_s": n / max(min(wall), 1e-9),
        "events_per_cpu_s": n / max(min(cpu), 1e-9),
    }


def overflow_table(overflows: OverflowCounter) -> pd.DataFrame:
    """The casts that overflowed (name, overflows, values, fraction), indexed by name."""
    frame = overflows.report()
    return frame[frame["overflows"] > 0].set_index("name") if len(frame) else frame


def emulate_trigger_files(
    model: str | os.PathLike[str],
    events: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    chunk_size: int = 200_000,
    console: Console | None = None,
    workers: int = 1,
    device: str | None = None,
    speed_events: int = 100_000,
) -> dict[str, Any]:
    """Trigger mode of ``l1ad emulate``; returns the ``emulation`` summary (plus ``table``/``overflows``).

    ``events_per_s`` is the emulator's steady-state speed (:func:`emulator_speed` on the first
    background events, repeated to ``speed_events``; 0: the files' own timing).

    ``model``: a run directory, spec directory or spec file.
    """
    from emulation.events import background_and_edge_words, emulate_events, load_trigger
    from offline.events.io import event_count

    console = console or Console(stderr=True, markup=False)
    paths = [Path(p) for p in events]
    spec, weights, spec_path = load_trigger(model)
    total = sum(event_count(p) if p.exists() else 0 for p in paths)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("emulating the trigger", total=total)
        result = emulate_events((spec, weights), paths, chunk_size, out, lambda n: bar.advance(task, n), workers,
                                device)  # fmt: skip
    summary: dict[str, Any] = result.summary()
    if speed_events > 0 and result.events:
        # Throughput on >= speed_events events (the files' own timing is start-up for small test sets).
        summary.update(emulator_speed(spec, weights, background_and_edge_words(paths, min(result.events, 20_000), spec),
                                      speed_events, workers=workers, device=device))  # fmt: skip
    summary.update({"spec": str(spec_path), "out": str(out)})
    summary["table"] = result.table
    summary["overflows"] = result.overflows
    return summary
