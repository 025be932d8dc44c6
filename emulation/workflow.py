"""What ``l1ad emulate`` runs, callable from Python: files in, summary dicts and output files out.

- :func:`emulate_plain`: any hls4ml dense/ReLU project on float inputs (``.npy``), outputs to
  ``.npy``, optionally compared with the project's C simulation;
- :func:`emulate_trigger_files`: the trigger of a run or spec directory on event files, per-event
  scores and bits to HDF5, rate, efficiencies, ABCD counts, optionally compared with the C
  simulation of the firmware project (written on the fly when the run has none);
- :func:`exact_trigger`: the emulator as ``quantize``'s exact executor
  (:class:`quantize.workflow.ExactTrigger`).

Progress bars go to a ``rich`` console (stderr by default).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from offline.artifacts import atomic_path
from quantize.spec import FirmwareSpec

if TYPE_CHECKING:
    import pandas as pd

    from emulation.fixed import OverflowCounter
    from quantize.workflow import ExactTrigger

__all__ = [
    "csim_words",
    "emulate_plain",
    "emulate_trigger_files",
    "emulator_speed",
    "exact_trigger",
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
    compare_csim: int = 0,
    console: Console | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Emulate an hls4ml project on ``inputs`` (.npy, (N, n_in) floats); write outputs (N, n_out) float64.

    ``device``: where the float path runs ("cpu": numpy, "cuda": torch on the GPU, "auto").
    """
    from emulation.csim import CSimulation
    from emulation.hls_project import load_hls_project
    from emulation.network import emulate_project

    console = console or Console(stderr=True, markup=False)
    project = load_hls_project(model)
    x = load_inputs(inputs)
    if x.ndim != 2 or x.shape[1] != project.n_inputs:
        raise ValueError(f"{inputs}: shape {x.shape}, the project {project.top} expects (N, {project.n_inputs})")
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
    if compare_csim > 0:
        n = min(compare_csim, len(x))
        sim = CSimulation(model)
        start = time.perf_counter()
        expected = sim.predict(x[:n])
        seconds = time.perf_counter() - start
        summary["csim_events_compared"] = n
        summary["csim_mismatches"] = int(np.any(expected != result.outputs[:n], axis=1).sum())
        summary["csim_events_per_s"] = n / seconds if seconds > 0 else None
    return summary


def csim_words(
    background: list[str | os.PathLike[str]], n: int, spec: FirmwareSpec, seed: int = 0
) -> np.ndarray:
    """The first events of the background files plus edge words (empty, saturating, extreme): n in all."""
    from firmware.example import edge_words
    from offline.events.io import iter_events
    from offline.preprocess import to_hardware

    n_edges = max(8, n // 10)
    blocks, have = [], 0
    for path in background:
        for block in iter_events(path, max(1, n - n_edges - have)):
            blocks.append(to_hardware(block.features))
            have += len(block)
            break
        if have >= n - n_edges:
            break
    words = np.concatenate(blocks) if blocks else np.zeros((0, 57), dtype=np.int64)
    return np.concatenate([words[: n - n_edges], edge_words(spec, np.random.default_rng(seed), n - min(len(words), n - n_edges))])


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
    return {"speed_events": n, "events_per_s": n / max(min(wall), 1e-9), "events_per_cpu_s": n / max(min(cpu), 1e-9)}


def overflow_table(overflows: OverflowCounter) -> pd.DataFrame:
    """The casts that overflowed (name, overflows, values, fraction), indexed by name."""
    frame = overflows.report()
    return frame[frame["overflows"] > 0].set_index("name") if len(frame) else frame


def emulate_trigger_files(
    model: str | os.PathLike[str],
    events: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    compare_csim: int = 0,
    project: str | os.PathLike[str] | None = None,
    chunk_size: int = 200_000,
    console: Console | None = None,
    workers: int = 1,
    device: str | None = None,
    speed_events: int = 100_000,
) -> dict[str, Any]:
    """Trigger mode of ``l1ad emulate``; returns the ``emulation`` summary (plus ``table``/``overflows``).

    ``events_per_s`` is the emulator's steady-state speed (:func:`emulator_speed` on the first
    background events, repeated to ``speed_events``; 0: the files' own timing).

    ``model``: a run directory, spec directory or spec file. ``compare_csim`` > 0 C-simulates that
    many words (the first background events plus edge words) through ``project`` (default: the
    run's firmware project; without one, a QKeras-frontend project is written to a temporary
    directory) and counts the events whose outputs differ from the emulator's.
    """
    import tempfile

    from emulation.events import emulate_events, load_trigger
    from emulation.trigger_csim import (
        compare_trigger_csim,
        find_trigger_project,
        write_trigger_project,
    )
    from offline.events.io import event_count

    console = console or Console(stderr=True, markup=False)
    events = [Path(p) for p in events]
    spec, weights, spec_path = load_trigger(model)
    total = sum(event_count(p) if p.exists() else 0 for p in events)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("emulating the trigger", total=total)
        result = emulate_events((spec, weights), events, chunk_size, out, lambda n: bar.advance(task, n), workers,
                                device)  # fmt: skip
    summary: dict[str, Any] = result.summary()
    if speed_events > 0 and result.events:
        # Throughput on >= speed_events events (the files' own timing is start-up for small test sets).
        summary.update(emulator_speed(spec, weights, csim_words(events, min(result.events, 20_000), spec),
                                      speed_events, workers=workers, device=device))  # fmt: skip
    summary.update({"spec": str(spec_path), "out": str(out),
                    "csim_events_compared": 0, "csim_mismatches": None, "csim_events_per_s": None})
    if compare_csim > 0:
        words = csim_words(events, compare_csim, spec)
        project = project or find_trigger_project(model)
        with tempfile.TemporaryDirectory(prefix="l1ad_trigger_prj_") as tmp:
            if project is None:
                console.print("no firmware project recorded for this model: writing one (hls4ml, QKeras frontend)")
                project = write_trigger_project(spec, weights, Path(tmp) / "trigger", words)
            comparison = compare_trigger_csim(spec, weights, project, words)
        summary.update({"csim_events_compared": comparison.events, "csim_mismatches": comparison.mismatches,
                        "csim_events_per_s": comparison.csim_events_per_s, "csim_project": str(project)})
    summary["table"] = result.table
    summary["overflows"] = result.overflows
    return summary


def exact_trigger() -> ExactTrigger:
    """The emulator as ``quantize``'s exact executor (inputs, thresholds, quantized scores).

    ``quantize`` cannot import ``emulation`` (imports run ``emulation`` -> ``quantize``), so the
    caller hands this to ``quantize.workflow.quantize_checkpoint``/``quantize.scan.run_scan``
    (``exact=exact_trigger()``): QAT inputs, thresholds and TPRs are then those of the trigger itself.
    """
    # late: quantize.workflow loads torch and the float model code
    from emulation.trigger import emulate_trigger, input_mantissas, place_thresholds
    from quantize.workflow import ExactTrigger

    def scores(spec, weights, words):
        out = emulate_trigger(spec, weights, words)
        return out.r1_float, out.r2_float

    return ExactTrigger(input_mantissas=input_mantissas, scores=scores, place_thresholds=place_thresholds)
