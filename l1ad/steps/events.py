"""``l1ad generate``, ``l1ad merge`` and the ``events`` stage of ``l1ad run``: Pythia 8 + FastJet + L1 response.

The pipeline stage makes the default dataset (the SM background mixture and
one file per signal), cached under ``cache_dir/events`` so that it is
generated once; real ADC2021 files can be used instead by naming them in the
run config (``background_file``, ``signal_files``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from l1ad.config import GLOBAL_DEFAULTS
from l1ad.interrupts import Interrupted, handling_interrupts
from offline.events.defaults import DEFAULT_TASK_SIZE
from offline.events.engine import check_scheduler
from offline.events.processes import GENERATABLE, check_enrichment
from offline.events.schema import SIGNAL_PROCESSES

if TYPE_CHECKING:
    from l1ad.pipeline import RunContext
    from offline.events.stage import EventSamples

NAME = "events"
# Sized to generate in a few minutes on 2 cores, then cached. Measured here (CPU time of one
# worker, L1 response included; fraction of all Pythia events passing the pre-selection):
#   wlnu 54 ev/s (31 %), qcd 12.8 (9.6 %), zll 46 (45 %), ttbar 52 (40 %),
#   Ato4l 40 (6 %), leptoquark 44 (37 %), hToTauTau 19.5 (11 %), hChToTauNu 6.6 (3 %).
# Defaults: ~195 CPU-s of background + ~250 of signals (H+- alone 150): ~3.7 min on 2 cores.
DEFAULTS: dict[str, Any] = {
    "background_events": 6000,
    "signal_events": 1500,
    "signals": list(SIGNAL_PROCESSES),
    "workers": None,  # None: every CPU core
    "scheduler": None,  # None: in-process (1 worker) or a LocalCluster; "local"; or a Dask scheduler address/file
    "background_file": None,  # a real ADC2021 (or other) file instead of generating
    "signal_files": {},  # {process: file} instead of generating those signals
    "enrich": {},  # {background process: factor}, e.g. {ttbar: 20}: more of it at weights 1/factor
}
NEEDS: tuple[str, ...] = ()


def generate(
    process: Annotated[str, typer.Option(help=f"Process: {', '.join(GENERATABLE)}.")],
    events: Annotated[int, typer.Option(help="Events to write (after the pre-selection).")],
    out: Annotated[
        Path, typer.Option(help="Output HDF5 file (ADC2021 layout + labels, weights, metadata).")
    ],
    seed: Annotated[
        int, typer.Option(help="Master seed; every task's seed derives from it.")
    ] = GLOBAL_DEFAULTS["seed"],
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: every CPU core).")
    ] = DEFAULTS["workers"],
    shard: Annotated[
        str, typer.Option(help="Generate shard I of N (I/N); `l1ad merge` joins the shard files.")
    ] = "0/1",
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Where tasks run: 'local' (a Dask LocalCluster of --workers processes), a Dask scheduler "
            "address (tcp://host:8786) or scheduler file. Default: in-process for 1 worker, else 'local'."
        ),
    ] = DEFAULTS["scheduler"],
    task_size: Annotated[
        int, typer.Option(help="Accepted events per task (the unit of work and of resuming).")
    ] = DEFAULT_TASK_SIZE,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    enrich: Annotated[
        list[str] | None,
        typer.Option(
            help="PROCESS=FACTOR (repeatable; background only): generate that process of the "
            "mixture FACTOR times more, at weights 1/FACTOR (e.g. ttbar=20 for the tail)."
        ),
    ] = None,
) -> None:
    """Generate pp events at 13 TeV with Pythia 8, cluster jets with FastJet, apply the L1 response.

    Finished tasks are kept in OUT.parts until OUT is written: rerun an interrupted command to resume.
    """
    from offline.events.engine import parts_directory_for
    from offline.events.generate import check_request, generate_to_file, parse_shard

    shard_tuple = parse_shard(shard)
    check_request(process, events, seed, workers, shard_tuple)
    check_scheduler(scheduler)
    factors = parse_enrichment(enrich or [])
    console = Console(stderr=True, markup=False)
    try:
        with handling_interrupts():
            result = generate_to_file(
                out,
                process,
                events,
                seed,
                workers,
                shard_tuple,
                progress,
                task_size,
                scheduler,
                factors,
            )
    except Interrupted as stop:
        parts = parts_directory_for(out)
        kept = len(list(parts.glob("task-*.npz"))) if parts.is_dir() else 0
        console.print(
            f"{stop}: {out} not written; {kept} finished tasks kept in {parts}, "
            "rerun the same command to resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(stop.exit_code) from None
    meta = result.metadata
    for name, stats in meta["components"].items():
        console.print(
            f"{name}: {stats['events']} events, pre-selection efficiency {stats['preselection_efficiency']:.3g}, "
            f"{stats['events_per_cpu_s']:.3g} events/s per core"
        )
    resumed = (
        f", {meta['tasks_resumed']} of {meta['tasks']} tasks resumed"
        if meta["tasks_resumed"]
        else ""
    )
    console.print(
        f"wrote {out}: {meta['events']} events, {meta['events_per_s']:.3g} events/s{resumed}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def parse_enrichment(items: list[str]) -> dict[str, float]:
    """``["ttbar=20"]`` -> {"ttbar": 20.0}, each factor checked."""
    factors = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            factors[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--enrich expects PROCESS=FACTOR (e.g. ttbar=20), got {item!r}")
    check_enrichment(factors)
    return factors


def merge(
    inputs: Annotated[
        list[Path], typer.Argument(help="Event files of one sample (shards or productions).")
    ],
    out: Annotated[Path, typer.Option(help="Merged HDF5 file (written atomically).")],
) -> None:
    """Merge independent event files of one sample (e.g. the shards of a batch system) into one.

    Refuses files of different samples (process, generator, L1 response) and two files with the
    same seed and shard, which hold the same events.
    """
    from offline.events.merge import merge_event_files

    meta = merge_event_files(inputs, out)
    counts = ", ".join(f"{k} {v}" for k, v in meta.get("label_counts", {}).items())
    Console(stderr=True, markup=False).print(
        f"wrote {out}: {meta['events']} events from {len(inputs)} files"
        + (f" ({counts})" if counts else ""),
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(merge)


def _check_config(cfg: dict[str, Any]) -> None:
    for key in ("background_events", "signal_events"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise ValueError(f"events.{key} must be a positive integer, got {cfg[key]!r}")
    if cfg["workers"] is not None and (not isinstance(cfg["workers"], int) or cfg["workers"] < 1):
        raise ValueError(
            f"events.workers must be a positive integer or null, got {cfg['workers']!r}"
        )
    if cfg["scheduler"] is not None and not isinstance(cfg["scheduler"], str):
        raise ValueError(
            f"events.scheduler must be 'local', a Dask scheduler address or null, got {cfg['scheduler']!r}"
        )
    try:
        check_scheduler(cfg["scheduler"])
        check_enrichment(cfg["enrich"])
    except ValueError as err:
        raise ValueError(f"events.{err}") from None
    for name in cfg["signals"]:
        if name not in SIGNAL_PROCESSES:
            raise ValueError(
                f"events.signals: unknown signal {name!r}; known: {', '.join(SIGNAL_PROCESSES)}"
            )


def run(ctx: RunContext) -> EventSamples:
    """Generate (or take from the cache, or from given files) the background mixture and each signal."""
    from offline.events.stage import prepare_samples

    cfg = ctx.config[NAME]
    _check_config(cfg)
    given = {p: Path(f) for p, f in cfg["signal_files"].items()}
    if cfg["background_file"]:
        given["background"] = Path(cfg["background_file"])
    return prepare_samples(
        ctx.step_dir(NAME),
        ctx.cache_dir,
        ctx.seed,
        cfg["background_events"],
        cfg["signal_events"],
        list(cfg["signals"]),
        given,
        cfg["workers"],
        cfg["scheduler"],
        cfg["enrich"],
    )
