"""What ``l1ad emulate`` runs, callable from Python: files in, summary dicts and output files out.

- :func:`emulate_plain`: any hls4ml dense/ReLU project on float inputs (``.npy``), outputs to
  ``.npy``;
- :func:`emulate_trigger_files`: the trigger of a run or spec directory on event files, per-event
  scores and bits to HDF5, rate, efficiencies, ABCD counts.

The comparisons with the C simulation sit above, in ``firmware`` (``firmware.csim.compare_plain_csim``,
``firmware.trigger_csim.compare_trigger_files_csim``). Progress bars go to a ``rich`` console
(stderr by default).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from offline.artifacts import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from emulation.fixed import OverflowCounter

__all__ = [
    "emulate_plain",
    "emulate_trigger_files",
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
) -> dict[str, Any]:
    """Emulate an hls4ml project on ``inputs`` (.npy, (N, n_in) floats); write outputs (N, n_out) float64."""
    from emulation.hls_project import load_hls_project
    from emulation.network import emulate_project

    console = console or Console(stderr=True, markup=False)
    project = load_hls_project(model)
    x = load_inputs(inputs)
    if x.ndim != 2 or x.shape[1] != project.n_inputs:
        raise ValueError(f"{inputs}: shape {x.shape}, the project {project.top} expects (N, {project.n_inputs})")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"emulating {project.top}", total=len(x))
        result = emulate_project(project, x, progress=lambda n: bar.advance(task, n))
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, result.outputs)
    summary: dict[str, Any] = {
        "events_emulated": len(x),
        "events_per_s": result.events_per_s,
        "overflows": result.overflows.as_dict(),
    }
    return summary


def overflow_table(overflows: OverflowCounter) -> pd.DataFrame:
    """The casts that overflowed (name, overflows, values, fraction), indexed by name."""
    frame = overflows.report()
    return frame[frame["overflows"] > 0].set_index("name") if len(frame) else frame


def emulate_trigger_files(
    model: str | os.PathLike[str],
    events: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    chunk_size: int = 200_000,
    console: Console | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Trigger mode of ``l1ad emulate``; returns the ``emulation`` summary (plus ``table``/``overflows``).

    ``model``: a run directory, spec directory or spec file.
    """
    from emulation.events import emulate_events, load_trigger
    from offline.events.io import event_count

    console = console or Console(stderr=True, markup=False)
    paths = [Path(p) for p in events]
    spec, weights, spec_path = load_trigger(model)
    total = sum(event_count(p) if p.exists() else 0 for p in paths)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("emulating the trigger", total=total)
        result = emulate_events((spec, weights), paths, chunk_size, out, lambda n: bar.advance(task, n), workers)
    summary: dict[str, Any] = result.summary()
    summary.update({"spec": str(spec_path), "out": str(out)})
    summary["table"] = result.table
    summary["overflows"] = result.overflows
    return summary
