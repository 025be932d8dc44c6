"""The events stage of ``l1ad run``: one file per sample (background mixture, each signal), taken from
files the user names, from the cache, or generated (Pythia 8 + FastJet + L1 response) and cached."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from offline.events.cache import cached_generate
from offline.events.io import event_count, read_metadata
from offline.events.summary import plot_summary, summarize

BACKGROUND = "background"


@dataclass
class EventSamples:
    """The samples of a run and what is known about them."""

    files: dict[str, Path]  # sample ("background" or a signal) -> event file; generated ones first
    counts: dict[str, int]  # events per sample
    table: pd.DataFrame  # per (sample, process): events, pre-selection efficiency, rate, source
    plots: dict[str, list[Path]]  # per sample: summary histograms
    events_per_s: float | None  # generation rate over the samples that record one
    from_cache: bool | None  # every generated sample came from the cache (None: none was generated)
    preselection_efficiency: dict[str, float]  # per generated process

    @property
    def background(self) -> Path:
        return self.files[BACKGROUND]

    @property
    def signals(self) -> dict[str, Path]:
        return {name: path for name, path in self.files.items() if name != BACKGROUND}


def prepare_samples(
    out_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    seed: int,
    background_events: int,
    signal_events: int,
    signals: list[str],
    given: dict[str, Path] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    enrich: Mapping[str, float] | None = None,
) -> EventSamples:
    """The background and each of ``signals``: from ``given`` ({sample: file}, checked first), else
    from the cache under ``cache_dir`` or generated there. Writes ``events.csv`` and summary plots
    into ``out_dir``."""
    given = dict(given or {})
    for path in given.values():
        event_count(path)  # validates the file, names it if bad
    requests = {BACKGROUND: background_events} | {s: signal_events for s in signals}
    requests = {p: n for p, n in requests.items() if p not in given}
    files = (
        cached_generate(
            cache_dir, requests, seed, workers, progress=True, scheduler=scheduler, enrich=enrich
        )
        if requests
        else {}
    )
    paths = {p: f.path for p, f in files.items()} | given

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    counts: dict[str, int] = {}
    plots: dict[str, list[Path]] = {}
    time_per_event = 0.0
    for sample, path in paths.items():
        meta = files[sample].metadata if sample in files else read_metadata(path)
        summary = summarize(path)
        counts[sample] = summary.events
        components = meta.get("components", {})
        for name, stats in components.items():
            rows.append(
                {
                    "sample": sample,
                    "process": name,
                    "events": stats["events"],
                    "generated": stats["generated"],
                    "pre-selection efficiency": stats["preselection_efficiency"],
                    "events/s per core": stats["events_per_cpu_s"],
                    "effective events": stats["effective_events"],
                    "source": "cache"
                    if sample in files and files[sample].from_cache
                    else "generated",
                }
            )
        if not components:
            rows.append(
                {"sample": sample, "process": "-", "events": summary.events, "source": str(path)}
            )
        if "events_per_s" in meta:
            time_per_event += summary.events / meta["events_per_s"]
        plots[sample] = plot_summary(summary, out_dir, label=sample)
    table = pd.DataFrame(rows).set_index(["sample", "process"])
    table.to_csv(out_dir / "events.csv")
    return EventSamples(
        files=paths,
        counts=counts,
        table=table,
        plots=plots,
        events_per_s=sum(counts.values()) / time_per_event if time_per_event else None,
        from_cache=all(f.from_cache for f in files.values()) if files else None,
        preselection_efficiency={
            r["process"]: r["pre-selection efficiency"]
            for r in rows
            if "pre-selection efficiency" in r
        },
    )
