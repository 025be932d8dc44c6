"""Generate events: Pythia 8 -> FastJet -> L1 response -> ADC2021 layout, in parallel.

Work is cut into *tasks* of at most ``task_size`` accepted events. Each task
builds its own Pythia instance, seeded (with the numpy generator of the L1
response) from ``SeedSequence(seed, spawn_key=(shard, shards, label, task))``.
Tasks are independent of which worker runs them, so a file depends on
(process, events, seed, shard) only: the worker count changes the speed, not
the bytes. ``shard=(i, n)`` generates the i-th of n independent slices (its
share of the events, its own seeds); the n shard files concatenate into one
sample, so a batch system can run them anywhere.

Measured throughput (CPU time of one worker, Pythia + FastJet + L1 response,
events written per CPU second; in brackets the fraction of generated events
passing the pre-selection, pre-filter vetoes included): wlnu 54 (31 %), qcd
12.8 (9.6 %, effective sample size 45 % from the p-hat-T weights), zll 46
(45 %), ttbar 52 (40 %), Ato4l 40 (6 %), leptoquark 44 (37 %), hToTauTau 19.5
(11 %), hChToTauNu 6.6 (3 %). Pythia itself runs at 100-140 full events per
CPU second here. Tasks are independent, so workers scale until the slowest task.
These figures are of generator v1; v2 (MET and jets only for events passing
the pre-selection) gains 4 % on the background mixture
(benchmarks/bench_generate.py): Pythia's showers and multi-parton
interactions take most of the time (benchmarks/profile_generate.py).

Tasks run in this process or as Dask tasks (:mod:`offline.events.engine`),
on a local or a remote cluster; finished tasks can be kept in a parts
directory so that an interrupted job resumes. A ``LocalCluster`` spawns its
workers, so scripts calling with ``workers > 1`` need an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from offline.events.defaults import DEFAULT_TASK_SIZE
from offline.events.engine import (
    PartStore,
    TaskResult,
    check_scheduler,
    execute,
    parts_directory_for,
    remove_parts,
)
from offline.events.io import Events, effective_events, write_events
from offline.events.l1_response import (
    DEFAULT_L1,
    L1Config,
    l1_objects,
    passes_preselection,
    preselected_l1_objects,
)
from offline.events.processes import (
    GENERATABLE,
    MIX_FRACTIONS,
    PREFILTER_ETA,
    PREFILTER_FRACTION,
    check_enrichment,
    enriched_mix_counts,
    get_process,
    mix_counts,
)
from offline.events.schema import process_label

# Bump when anything changes the generated events (settings, L1 response, seeding): it keys the cache.
GENERATOR_VERSION = "2"  # 2: MET and jets only for events passing the pre-selection
# events per CPU second measured here (see above): only orders the tasks, longest first
_EXPECTED_RATE = {
    "wlnu": 54,
    "qcd": 12.8,
    "zll": 46,
    "ttbar": 52,
    "Ato4l": 40,
    "leptoquark": 44,
    "hToTauTau": 19.5,
    "hChToTauNu": 6.6,
}
_MAX_TRIES_WITHOUT_PASS = 20_000


@dataclass(frozen=True)
class Task:
    process: str
    index: int
    events: int
    seed: int
    shard: tuple[int, int]
    l1: L1Config = DEFAULT_L1
    stream: int = (
        0  # 0: a standalone sample, 1: part of the background mixture (never the same events)
    )
    # generator version 1 (benchmarks only): the full L1 response of every event, then the pre-selection
    baseline: bool = False

    def seeds(self) -> tuple[int, np.random.SeedSequence]:
        """Pythia's seed (1..900 000 000) and the L1 response's seed sequence, both from the task's key."""
        seq = np.random.SeedSequence(
            self.seed, spawn_key=(*self.shard, self.stream, process_label(self.process), self.index)
        )
        pythia_seq, response_seq = seq.spawn(2)
        return int(pythia_seq.generate_state(1)[0]) % 900_000_000 + 1, response_seq


@dataclass
class Generated:
    """Events of one request and what generating them took."""

    events: Events
    metadata: dict[str, Any] = field(default_factory=dict)


def _hook_class():
    import pythia8mc

    class LeptonPrefilter(pythia8mc.UserHooks):
        """Veto, right after the hard process, events without a hard e/mu/tau that could pass the pre-selection."""

        def __init__(self, pt_min: dict[int, float], eta_max: float) -> None:
            super().__init__()
            self.pt_min, self.eta_max, self.vetoed = pt_min, eta_max, 0

        def canVetoProcessLevel(self) -> bool:
            return True

        def doVetoProcessLevel(self, process) -> bool:
            for i in range(process.size()):
                particle = process[i]
                if (
                    particle.isFinal()
                    and particle.idAbs() in self.pt_min
                    and particle.pT() > self.pt_min[particle.idAbs()]
                    and abs(particle.eta()) < self.eta_max
                ):
                    return False
            self.vetoed += 1
            return True

    return LeptonPrefilter


_BANNER_SILENCED = False


def _silence_fastjet_banner() -> None:
    """FastJet prints its banner to C stdout on first use; cluster one dummy event with fd 1 muted."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    import awkward as ak
    import fastjet

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            parts = ak.Array(
                [[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]], with_name="Momentum4D"
            )
            fastjet.ClusterSequence(
                parts, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
            ).inclusive_jets()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SILENCED = True


def run_task(task: Task, progress: Callable[[int], None] | None = None) -> TaskResult:
    """Generate one task's events until ``task.events`` pass the pre-selection."""
    import awkward as ak
    import pythia8mc

    _silence_fastjet_banner()
    started = time.process_time()
    spec = get_process(task.process)
    pythia_seed, response_seq = task.seeds()
    rng = np.random.default_rng(response_seq)
    pythia = pythia8mc.Pythia("", False)
    for line in spec.pythia_settings(pythia_seed):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected setting {line!r} of process {task.process}")
    hook = None
    if spec.prefilter:
        thresholds = {pid: f * task.l1.preselection_pt for pid, f in PREFILTER_FRACTION.items()}
        hook = _hook_class()(thresholds, PREFILTER_ETA)
        pythia.setUserHooksPtr(hook)
    if not pythia.init():
        raise RuntimeError(f"Pythia initialisation failed for process {task.process}")

    kept_particles, kept_weights = [], []
    kept = generated = passed = 0
    while kept < task.events:
        efficiency = (passed + 1) / (generated + 2) if generated else 0.5
        batch_size = int(np.clip(math.ceil(1.1 * (task.events - kept) / efficiency), 20, 500))
        batch = pythia.nextBatch(batch_size)
        weights = ak.to_numpy(ak.firsts(batch.info.weights)).astype(np.float64)
        if task.baseline:
            particles = l1_objects(batch, rng, task.l1)
            selected = np.flatnonzero(passes_preselection(particles, task.l1))
            particles = particles[selected]
        else:
            particles, selected = preselected_l1_objects(batch, rng, task.l1)
        generated += len(batch)
        passed += len(selected)
        take = slice(0, task.events - kept)
        kept_particles.append(particles[take])
        kept_weights.append(weights[selected][take])
        kept += len(kept_weights[-1])
        if progress is not None and len(kept_weights[-1]):
            progress(len(kept_weights[-1]))
        if passed == 0 and generated >= _MAX_TRIES_WITHOUT_PASS:
            raise RuntimeError(f"{task.process}: no event in {generated} passes the pre-selection")
    vetoed = hook.vetoed if hook is not None else 0
    sigma = float(pythia.infoPython().sigmaGen())
    return TaskResult(
        np.concatenate(kept_particles),
        np.concatenate(kept_weights),
        generated + vetoed,
        vetoed,
        passed,
        sigma,
        time.process_time() - started,
    )


def make_tasks(
    process: str,
    events: int,
    seed: int,
    shard: tuple[int, int] = (0, 1),
    task_size: int = DEFAULT_TASK_SIZE,
    l1: L1Config = DEFAULT_L1,
    stream: int = 0,
    baseline: bool = False,
) -> list[Task]:
    """The tasks that generate ``events`` events of one process (not ``background``)."""
    get_process(process)
    n_tasks = math.ceil(events / task_size)
    sizes = [events // n_tasks + (i < events % n_tasks) for i in range(n_tasks)]
    return [Task(process, i, n, seed, shard, l1, stream, baseline) for i, n in enumerate(sizes)]


def check_request(
    process: str, events: int, seed: int, workers: int | None, shard: tuple[int, int]
) -> None:
    """Validate user input; raises ValueError naming the bad value."""
    if process not in GENERATABLE:
        raise ValueError(f"unknown process {process!r}; known: {', '.join(GENERATABLE)}")
    if isinstance(events, bool) or not isinstance(events, int) or events <= 0:
        raise ValueError(f"number of events must be a positive integer, got {events!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be I/N with 0 <= I < N, got {index}/{count}")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N)."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be I/N with 0 <= I < N, got {text!r}")
    return index, count


def _shard_events(events: int, shard: tuple[int, int]) -> int:
    index, count = shard
    return events // count + (index < events % count)


def _execute(
    tasks: list[Task],
    workers: int,
    progress: bool,
    description: str,
    scheduler: str | None,
    store: PartStore | None,
) -> tuple[list[TaskResult], int]:
    """Run the tasks (in-process, or on Dask) with a progress bar over accepted events; results in task order."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(
        *columns, console=Console(stderr=True, markup=False), disable=not progress
    ) as bar:
        job = bar.add_task(description, total=sum(t.events for t in tasks))
        # longest tasks first, so that no long task starts last while the other workers idle
        priority = [t.events / _EXPECTED_RATE[t.process] for t in tasks]
        return execute(
            run_task,
            tasks,
            workers=workers,
            scheduler=scheduler,
            store=store,
            priority=priority,
            advance=lambda k: bar.advance(job, k),
            events=lambda t: t.events,
        )


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in ("pythia8mc", "fastjet", "awkward", "numpy", "l1ad"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[name] = importlib_metadata.version(name)
    return versions


def job_description(
    requests: dict[str, int],
    seed: int,
    shard: tuple[int, int],
    task_size: int,
    l1: L1Config,
    tasks: list[Task],
) -> dict[str, Any]:
    """Everything that decides a job's events: the manifest of its parts directory."""
    components = sorted({t.process for t in tasks})
    return {
        "requests": requests,
        "seed": seed,
        "shard": list(shard),
        "task_size": task_size,
        "generator_version": GENERATOR_VERSION,
        "settings": {c: list(get_process(c).settings) for c in components},
        "l1": l1.to_dict(),
        "tasks": [[t.process, t.index, t.events, t.stream, t.baseline] for t in tasks],
    }


def generate_many(
    requests: dict[str, int],
    seed: int,
    workers: int | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    task_size: int = DEFAULT_TASK_SIZE,
    l1: L1Config = DEFAULT_L1,
    scheduler: str | None = None,
    parts: str | os.PathLike[str] | None = None,
    baseline: bool = False,
    enrich: Mapping[str, float] | None = None,
) -> dict[str, Generated]:
    """Generate several processes (``background`` = the ADC2021 mixture) as one job of tasks.

    ``enrich``: {process: factor} generates those processes of the mixture ``factor`` times
    more, at weights summing to their plain count (:func:`enriched_mix_counts`).

    ``baseline``: generator version 1 (full L1 response of every event), kept to benchmark
    and validate the current one against.

    ``scheduler``: where tasks run (see :mod:`offline.events.engine`). ``parts``: a directory
    keeping finished tasks, so that an interrupted job resumes; the caller removes it
    (``PartStore.remove``) once the output is written.
    """
    workers = workers or os.cpu_count() or 1
    check_scheduler(scheduler)
    parts_of: dict[str, dict[str, int]] = {}
    plain_of: dict[str, dict[str, int]] = {}  # what each process's weights sum to
    for process, events in requests.items():
        check_request(process, events, seed, workers, shard)
        n = _shard_events(events, shard)
        if n == 0:
            raise ValueError(f"shard {shard[0]}/{shard[1]} of {events} events holds no event")
        mixture = process == "background"
        plain_of[process] = mix_counts(n) if mixture else {process: n}
        parts_of[process] = enriched_mix_counts(n, enrich) if mixture else {process: n}
    tasks: list[Task] = []
    owners: list[tuple[str, str]] = []
    for process, counts in parts_of.items():
        # the background mixture draws its own seeds so that it never repeats a standalone sample
        stream = int(process == "background")
        for component, n in counts.items():
            if n:
                for task in make_tasks(component, n, seed, shard, task_size, l1, stream, baseline):
                    tasks.append(task)
                    owners.append((process, component))
    store = None
    if parts is not None:
        job = job_description(requests, seed, shard, task_size, l1, tasks)
        store = PartStore(parts, job | ({"enrich": dict(enrich)} if enrich else {}))
    started = time.perf_counter()
    results, resumed = _execute(
        tasks, workers, progress, f"generating {', '.join(requests)}", scheduler, store
    )
    wall = time.perf_counter() - started
    rate = sum(t.events for t in tasks) / wall
    run = {
        "workers": workers,
        "scheduler": scheduler,
        "baseline": baseline,
        "wall": wall,
        "rate": rate,
        "tasks": len(tasks),
        "tasks_resumed": resumed,
    }
    return {
        process: _assemble(
            process,
            [(o[1], r) for o, r in zip(owners, results, strict=True) if o[0] == process],
            seed,
            shard,
            run,
            l1,
            plain_of[process],
        )
        for process in parts_of
    }


def _assemble(
    process: str,
    results: list[tuple[str, TaskResult]],
    seed: int,
    shard: tuple[int, int],
    run: dict[str, Any],
    l1: L1Config,
    plain: dict[str, int],
) -> Generated:
    blocks, stats = [], {}
    for component in dict.fromkeys(c for c, _ in results):
        mine = [r for c, r in results if c == component]
        particles = np.concatenate([r.particles for r in mine])
        weights = np.concatenate([r.weights for r in mine])
        # mean weight 1 within each process; an enriched one's sum to its plain count
        weights *= plain[component] / weights.sum()
        blocks.append(
            Events(particles, weights, np.full(len(particles), process_label(component), np.int32))
        )
        tried, passed = sum(r.tried for r in mine), sum(r.passed for r in mine)
        seconds = sum(r.cpu_seconds for r in mine)
        stats[component] = {
            "events": len(particles),
            "generated": tried,
            "prefilter_vetoed": sum(r.vetoed for r in mine),
            "preselection_efficiency": passed / tried,
            "sigma_mb": float(np.mean([r.sigma_mb for r in mine]))
            or None,  # 0 when Pythia has no estimate
            "cpu_seconds": seconds,
            "events_per_cpu_s": len(particles) / seconds,
            "effective_events": effective_events(weights),
            "pythia_settings": list(get_process(component).settings),
        }
    events = Events(
        np.concatenate([b.particles for b in blocks]),
        np.concatenate([b.weights for b in blocks]),
        np.concatenate([b.labels for b in blocks]),
    )
    if len(blocks) > 1:  # shuffle the mixture so that any slice of the file is representative
        order = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(*shard, 99))
        ).permutation(len(events))
        events = events[order]
    meta = {
        "process": process,
        "generator": "pythia8mc + fastjet + l1ad L1 response",
        "generator_version": "1" if run["baseline"] else GENERATOR_VERSION,
        "seed": seed,
        "shard": list(shard),
        "workers": run["workers"],
        "scheduler": run["scheduler"],
        "tasks": run["tasks"],
        "tasks_resumed": run[
            "tasks_resumed"
        ],  # finished tasks taken from the parts directory of a killed job
        "events": len(events),
        "components": stats,
        "mix_fractions": MIX_FRACTIONS if process == "background" else None,
        **({"enrichment": enrichment} if (enrichment := _enrichment(plain, stats)) else {}),
        "beam": "pp, 13 TeV",
        "preselection": f">= 1 e/gamma or muon object with pT > {l1.preselection_pt} GeV",
        "l1_config": l1.to_dict(),
        "package_versions": _package_versions(),
        "wall_seconds": run["wall"],
        "events_per_s": run[
            "rate"
        ],  # accepted events per wall-clock second of the whole generation call
    }
    return Generated(events, meta)


def _enrichment(plain: dict[str, int], stats: dict[str, Any]) -> dict[str, float]:
    """{process: events generated per plain event}, for the enriched processes only."""
    return {c: stats[c]["events"] / n for c, n in plain.items() if n and stats[c]["events"] != n}


def generate(
    process: str,
    events: int,
    seed: int,
    workers: int | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    task_size: int = DEFAULT_TASK_SIZE,
    l1: L1Config = DEFAULT_L1,
    scheduler: str | None = None,
    baseline: bool = False,
    enrich: Mapping[str, float] | None = None,
) -> Generated:
    """Generate ``events`` events of one process (or the ``background`` mixture, ``enrich``-ed)."""
    return generate_many(
        {process: events},
        seed,
        workers,
        shard,
        progress,
        task_size,
        l1,
        scheduler,
        baseline=baseline,
        enrich=enrich,
    )[process]


def generate_to_file(
    out: str | os.PathLike[str],
    process: str,
    events: int,
    seed: int,
    workers: int | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    task_size: int = DEFAULT_TASK_SIZE,
    scheduler: str | None = None,
    enrich: Mapping[str, float] | None = None,
) -> Generated:
    """Generate and write one event file (atomically), keeping finished tasks in ``OUT.parts`` until then."""
    out = Path(out)
    check_request(process, events, seed, workers, shard)
    check_scheduler(scheduler)
    if enrich and process != "background":
        raise ValueError(f"enrich applies to the background mixture, not to {process!r}")
    check_enrichment(enrich or {})
    if out.exists() and out.is_dir():
        raise ValueError(f"{out}: is a directory, expected an event file path")
    if isinstance(task_size, bool) or not isinstance(task_size, int) or task_size < 1:
        raise ValueError(f"task size must be a positive integer, got {task_size!r}")
    parts = parts_directory_for(out)
    result = generate_many(
        {process: events},
        seed,
        workers,
        shard,
        progress,
        task_size,
        DEFAULT_L1,
        scheduler,
        parts,
        enrich=enrich,
    )[process]
    write_events(out, result.events, result.metadata)
    remove_parts(parts)
    return result
