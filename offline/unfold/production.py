"""Jet samples for unfolding, produced as tasks by the event generator's engine.

A sample (one Pythia configuration of ``jets.CONFIGURATIONS``, one seed) is a sequence of
tasks of ``task_events`` events each; task ``i`` has its own Pythia seed, drawn from
``SeedSequence([seed, i])``, so its events do not depend on how many tasks a job asks for.
The tasks run where :func:`offline.events.engine.execute` puts them (in this process,
a Dask ``LocalCluster`` or an existing Dask cluster) and each finished one is kept in a
parts directory, ``unfold_jets_<configuration>_<seed>.parts`` in the cache directory:
a killed job resumes, and a larger job extends a smaller one's sample instead of
starting over. The manifest holds everything that decides the events (settings, seed,
task size, particles kept), not the number of tasks.

Each task records its CPU time, so a sample reports its jets per CPU second.
"""

from __future__ import annotations

import math
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from offline.artifacts import atomic_path
from offline.events.engine import PartStore, execute
from offline.unfold.jets import COMMON, CONFIGURATIONS, MAX_PARTICLES, generate_jets

FORMAT = 1  # bump when a task's content changes for the same manifest
ARRAYS = ("gen", "reco", "pass_gen", "pass_reco", "gen_particles", "reco_particles")


@dataclass(frozen=True)
class JetTask:
    """One task: ``events`` Pythia events of ``configuration`` with Pythia seed ``seed``."""

    configuration: str
    index: int
    seed: int
    events: int
    max_particles: int


def task_seed(seed: int, index: int) -> int:
    """Pythia's seed for task ``index`` of a sample (1 .. 900 000 000, Pythia's range)."""
    return 1 + int(np.random.SeedSequence([seed, index]).generate_state(1)[0]) % 899_999_999


def run_task(task: JetTask, advance=None) -> dict[str, np.ndarray]:
    """Generate one task's events; its arrays (``ARRAYS``) and ``cpu_seconds``."""
    start = time.process_time()
    sample = generate_jets(
        task.events, task.configuration, task.seed, max_particles=task.max_particles
    )
    out = {key: sample[key] for key in ARRAYS}
    out["cpu_seconds"] = np.float64(time.process_time() - start)
    if advance is not None:
        advance(task.events)
    return out


class JetPartStore(PartStore):
    """A :class:`~offline.events.engine.PartStore` whose parts hold a task's jet arrays."""

    def save(self, index: int, result: dict[str, np.ndarray]) -> None:  # type: ignore[override]
        with atomic_path(self.path(index)) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f, allow_pickle=False, **result
            )  # the particle padding compresses well

    def load(self, index: int) -> dict[str, np.ndarray] | None:  # type: ignore[override]
        """A finished task, or None (and the part removed) if it does not read back whole."""
        path = self.path(index)
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
                out = {key: data[key] for key in (*ARRAYS, "cpu_seconds")}
            n = len(out["gen"])
            if any(len(out[key]) != n for key in ARRAYS) or n != self.job["task_events"]:
                raise ValueError("wrong shapes")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None
        return out


def parts_directory(cache_dir: str | os.PathLike[str], configuration: str, seed: int) -> Path:
    return Path(cache_dir) / f"unfold_jets_{configuration}_{seed}.parts"


def produce_jets(
    events: int,
    configuration: str,
    seed: int,
    cache_dir: str | os.PathLike[str] | None,
    *,
    task_events: int = 1000,
    workers: int = 1,
    scheduler: str | None = None,
    max_particles: int = MAX_PARTICLES,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """At least ``events`` events of ``configuration`` (whole tasks), as :func:`generate_jets`
    returns them plus ``cpu_seconds`` (per task) and ``resumed_tasks``.

    ``cache_dir``: where the finished tasks are kept (None: nowhere, nothing resumes).
    ``workers``/``scheduler``: as for the event generator (:mod:`offline.events.engine`).
    """
    if configuration not in CONFIGURATIONS:
        raise ValueError(
            f"unknown jet configuration {configuration!r} (known: {', '.join(CONFIGURATIONS)})"
        )
    if events < 1:
        raise ValueError(f"events must be >= 1, got {events}")
    if task_events < 1:
        raise ValueError(f"task_events must be >= 1, got {task_events}")
    n_tasks = math.ceil(events / task_events)
    tasks = [
        JetTask(configuration, i, task_seed(seed, i), task_events, max_particles)
        for i in range(n_tasks)
    ]
    store = None
    if cache_dir is not None:
        import pythia8mc

        job = {
            "kind": "unfold-jets",
            "format": FORMAT,
            "configuration": configuration,
            "settings": [*COMMON, *CONFIGURATIONS[configuration]],
            "pythia8mc": getattr(pythia8mc, "__version__", "unknown"),
            "seed": seed,
            "task_events": task_events,
            "max_particles": max_particles,
        }
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        store = JetPartStore(parts_directory(cache_dir, configuration, seed), job)
    with _progress(progress, configuration, n_tasks * task_events) as advance:
        # the engine's TaskResult is the generator's part; a jet task returns its arrays instead
        finished, resumed = execute(
            cast(Callable[..., Any], run_task),
            tasks,
            workers=workers,
            scheduler=scheduler,
            store=store,
            priority=[0.0] * n_tasks,
            advance=advance,
            events=lambda task: task.events,
        )
    results = cast(list[dict[str, np.ndarray]], finished)
    out = {key: np.concatenate([r[key] for r in results]) for key in ARRAYS}
    for level in ("gen", "reco"):
        out[f"{level}_mask"] = out[f"{level}_particles"][..., 0] > 0  # pT fraction > 0: real
    out["cpu_seconds"] = np.array([float(r["cpu_seconds"]) for r in results])
    out["resumed_tasks"] = np.array(resumed, dtype=np.int64)
    return out


class _progress:
    """``advance(k)``: a rich progress bar of events (or nothing)."""

    def __init__(self, show: bool, configuration: str, total: int) -> None:
        self.show, self.description, self.total = show, f"Pythia 8 jets ({configuration})", total

    def __enter__(self):
        if not self.show:
            return lambda k: None
        from rich.progress import Progress

        self.bar = Progress(transient=False)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return lambda k: self.bar.advance(task, k)

    def __exit__(self, *exc) -> None:
        if self.show:
            self.bar.stop()


def jets_per_cpu_second(sample: dict[str, np.ndarray]) -> float:
    """Jets passing the particle-level selection per CPU second of generation."""
    return float(np.sum(sample["pass_gen"]) / np.sum(sample["cpu_seconds"]))
