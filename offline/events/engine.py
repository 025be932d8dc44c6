"""Where generation tasks run: in this process, or as Dask tasks on a local or remote cluster.

A job is an ordered list of independent tasks (see :mod:`offline.events.generate`).
The executor only decides *where* each task runs; results are put back in task
order, so the output is the same for any executor and any number of workers.

- ``scheduler=None`` and one worker: in this process, no Dask.
- ``scheduler=None`` and more workers, or ``scheduler="local"``: a Dask
  ``LocalCluster`` of worker processes with one thread each (Pythia is not
  thread-safe), closed with the job.
- ``scheduler="tcp://host:port"`` (or the path of a scheduler JSON file): an
  existing Dask cluster, e.g. one that ``dask-jobqueue`` runs on HTCondor or
  Slurm. Its workers need this package importable.

Finished tasks are kept in a *parts directory* (:class:`PartStore`): the client
writes each result there atomically as it arrives, with a manifest of the
job's parameters, so that a killed job resumes without redoing them and a
different job never reuses them. Workers need no shared file system.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offline.artifacts import atomic_path

MANIFEST = "manifest.json"
_PART = re.compile(r"task-(\d{6})\.npz")
_STATS = ("tried", "vetoed", "passed", "sigma_mb", "cpu_seconds")


@dataclass
class TaskResult:
    particles: np.ndarray
    weights: np.ndarray
    tried: int  # events Pythia generated, pre-filter vetoes included
    vetoed: int  # of those, vetoed by the pre-filter right after the hard process
    passed: int  # of those, passing the pre-selection (>= events kept)
    sigma_mb: float
    cpu_seconds: float  # CPU time of the task's process: independent of how loaded the machine is


class PartStore:
    """Finished tasks of one job, one ``task-NNNNNN.npz`` each, beside a manifest of the job.

    The manifest holds everything that decides the job's events (processes,
    counts, seed, shard, task split, generator version and settings, L1
    response). Parts of another job (a different manifest) are discarded; a
    directory that is not a part store is never touched.
    """

    def __init__(self, directory: str | os.PathLike[str], job: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.job = json.loads(json.dumps(job, sort_keys=True))  # canonical: tuples become lists
        self._open()

    def _open(self) -> None:
        manifest = self.directory / MANIFEST
        if self.directory.exists():
            if not self.directory.is_dir() or not manifest.is_file():
                raise ValueError(
                    f"{self.directory}: exists and is not an l1ad parts directory (no {MANIFEST}); "
                    "move it away or choose another output"
                )
            try:
                same = json.loads(manifest.read_text()) == self.job
            except (OSError, ValueError):
                same = False
            if same:
                return
            self.remove()  # another job's parts (or a damaged manifest): ours to replace
        self.directory.mkdir(parents=True)
        with atomic_path(manifest) as tmp:
            tmp.write_text(json.dumps(self.job, sort_keys=True, indent=1))

    def path(self, index: int) -> Path:
        return self.directory / f"task-{index:06d}.npz"

    def finished(self) -> set[int]:
        return {int(m.group(1)) for p in self.directory.iterdir() if (m := _PART.fullmatch(p.name))}

    def save(self, index: int, result: TaskResult) -> None:
        stats = np.array([getattr(result, name) for name in _STATS], dtype=np.float64)
        with atomic_path(self.path(index)) as tmp, open(tmp, "wb") as f:
            np.savez(f, particles=result.particles, weights=result.weights, stats=stats)

    def load(self, index: int) -> TaskResult | None:
        """A finished task, or None (and the part removed) if it does not read back whole."""
        path = self.path(index)
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
                particles, weights, stats = data["particles"], data["weights"], data["stats"]
            if (
                particles.ndim != 3
                or weights.shape != (len(particles),)
                or stats.shape != (len(_STATS),)
            ):
                raise ValueError("wrong shapes")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None
        tried, vetoed, passed, sigma, cpu = stats.tolist()
        return TaskResult(particles, weights, int(tried), int(vetoed), int(passed), sigma, cpu)

    def remove(self) -> None:
        remove_parts(self.directory)


def remove_parts(directory: str | os.PathLike[str]) -> None:
    """Delete a parts directory: only its manifest and part files, then the directory if that left it empty."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        return
    for p in directory.iterdir():
        if p.name == MANIFEST or _PART.fullmatch(p.name) or p.name.endswith(".partial"):
            p.unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()


def parts_directory_for(out: str | os.PathLike[str]) -> Path:
    """Where the finished tasks of the job writing ``out`` are kept: ``OUT.parts`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def check_scheduler(scheduler: str | None) -> None:
    """``None``, ``"local"``, a ``tcp://``/``tls://``/... address, or an existing scheduler file."""
    if scheduler is None or scheduler == "local":
        return
    if not isinstance(scheduler, str) or not scheduler:
        raise ValueError(
            f"scheduler must be 'local', a scheduler address or a scheduler file, got {scheduler!r}"
        )
    if "://" in scheduler or re.fullmatch(r"[\w.-]+:\d+", scheduler) or Path(scheduler).is_file():
        return
    raise ValueError(
        f"scheduler {scheduler!r} is neither 'local', an address (tcp://host:8786) "
        "nor an existing scheduler file"
    )


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client: on a new LocalCluster (closed on exit), or connected to an existing scheduler."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler is None or scheduler == "local":
            # any free port: None still binds the HTTP server to 8787, and a cluster already there (a
            # notebook, another job) would stop this one
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
        elif Path(scheduler).is_file():
            client = Client(scheduler_file=scheduler)
        else:
            client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
    except BaseException:
        # interrupted or failed: what follows is teardown, whose log lines (forgotten keys) say nothing
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        if cluster is not None:
            _kill_workers(
                cluster
            )  # interrupted: don't wait for tasks in flight (closing would, 5 s each)
        raise
    finally:
        if cluster is not None:
            cluster.close()


def _kill_workers(cluster: Any) -> None:
    """SIGKILL the worker processes of our own LocalCluster (its nannies stay, and close cleanly)."""
    for nanny in list(cluster.workers.values()):
        with contextlib.suppress(AttributeError, ProcessLookupError, TypeError):
            os.kill(nanny.pid, signal.SIGKILL)


def execute(
    run: Callable[..., TaskResult],
    tasks: Sequence[Any],
    *,
    workers: int,
    scheduler: str | None,
    store: PartStore | None,
    priority: Sequence[float],
    advance: Callable[[int], None],
    events: Callable[[Any], int],
) -> tuple[list[TaskResult], int]:
    """Run ``run(task)`` (in-process: ``run(task, advance)``) for every task not in ``store``.

    Returns the results in task order, and how many of them were resumed from ``store``.

    ``priority``: higher runs first on a cluster (the longest tasks, so none starts last).
    ``advance(k)``: called as k accepted events are finished; ``events(task)``: a task's events.
    """
    results: list[TaskResult | None] = [None] * len(tasks)
    if store is not None:
        for i in sorted(store.finished()):
            if i < len(tasks) and (r := store.load(i)) is not None:
                results[i] = r
                advance(events(tasks[i]))
    resumed = sum(r is not None for r in results)
    pending = [i for i, r in enumerate(results) if r is None]

    def keep(i: int, result: TaskResult) -> None:
        results[i] = result
        if store is not None:
            store.save(i, result)

    if scheduler is None and (workers == 1 or len(pending) <= 1):
        for i in pending:
            keep(i, run(tasks[i], advance))
        return results, resumed  # type: ignore[return-value]
    if pending:
        from distributed import as_completed

        with dask_client(scheduler, min(workers, len(pending))) as client:
            futures = {
                client.submit(
                    run,
                    tasks[i],
                    key=f"l1ad-task-{i}-{os.urandom(4).hex()}",
                    priority=priority[i],
                    pure=False,
                ): i
                for i in pending
            }
            for future in as_completed(futures):
                i = futures[future]
                keep(i, future.result())
                advance(events(tasks[i]))
                future.release()
    return results, resumed  # type: ignore[return-value]
