"""One event file from several independent ones: the shards of a batch system, or two productions.

Files from ``l1ad generate`` must describe one sample: the same process, generator version,
L1 response and pre-selection. Two files with the same task seeds (seed, shard, and whether
they come from the ``background`` mixture) hold the same events, so merging them would count
every event twice: that is refused.

A background mixture may also take files of its own components (``wlnu``, ``qcd``, ``zll``,
``ttbar``): that *enriches* a rare process, such as tt̄ (0.3 % of the mixture but a large part
of both autoencoders' tails), without changing the physics, because every process's weights
are rescaled to its share of the mixture: the least enriched process gets mean weight 1, an
enriched one 1/factor, as ``l1ad generate --enrich`` writes them. Without a mixture each
process's weights get mean 1 again. The per-process production figures are summed, and ``merged_from`` lists the inputs.
Foreign files (no metadata, such as ADC2021's) are concatenated as they are.

The events are kept in input order: every consumer splits by a seeded permutation
(:func:`offline.ad.data.split_indices`), so the order carries no information.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from offline.events.io import (
    EventFileError,
    Events,
    concatenate,
    effective_events,
    read_events,
    read_metadata,
    write_events,
)
from offline.events.schema import BACKGROUND_PROCESSES, PROCESSES, process_label

# metadata that must agree for the inputs to be one sample (besides the process)
SAME_SAMPLE_KEYS = ("generator", "generator_version", "beam", "preselection", "l1_config")
# per-process production figures that add up over inputs
SUMMED = ("events", "generated", "prefilter_vetoed", "cpu_seconds")


def _identity(meta: dict[str, Any]) -> tuple[Any, ...] | None:
    """What seeds a generated file's tasks (a mixture draws other seeds than a lone process):
    two inputs with the same one hold the same events."""
    if "seed" not in meta:
        return None
    return meta["seed"], tuple(meta.get("shard", (0, 1))), meta.get("process")


def _fits(process: Any, sample: Any) -> bool:
    """Whether a file of ``process`` belongs in a merge of ``sample`` (itself, or a mixture component)."""
    return process == sample or (sample == "background" and process in BACKGROUND_PROCESSES)


def check_mergeable(paths: Sequence[Path], metas: Sequence[dict[str, Any]]) -> Any:
    """The merged sample's process; raises EventFileError naming the first input that is not part
    of the same sample as the first."""
    if len(paths) < 2:
        raise ValueError(f"merging needs at least two input files, got {len(paths)}")
    if len(set(map(os.path.realpath, paths))) < len(paths):
        raise ValueError("an input file is named twice")
    first, first_meta = paths[0], metas[0]
    sample = _sample(metas)
    seen: dict[tuple[Any, ...], Path] = {}
    mixtures: dict[str, Any] = {}
    for path, meta in zip(paths, metas, strict=True):
        if bool(meta) != bool(first_meta):
            raise EventFileError(
                path, f"cannot merge an l1ad-generated file with a foreign one ({first})"
            )
        if meta and not _fits(meta.get("process"), sample):
            raise EventFileError(
                path,
                f"process is {meta.get('process')!r}, not part of the {sample!r} sample of "
                f"{first}: not the same sample",
            )
        for key in SAME_SAMPLE_KEYS:
            if meta.get(key) != first_meta.get(key):
                raise EventFileError(
                    path,
                    f"{key} is {meta.get(key)!r} but {first_meta.get(key)!r} in {first}: "
                    "not the same sample",
                )
        fractions = meta.get("mix_fractions")
        if fractions is not None and fractions != mixtures.setdefault("mix_fractions", fractions):
            raise EventFileError(
                path,
                f"mix_fractions {fractions} differ from an earlier input's: not the same sample",
            )
        identity = _identity(meta)
        if identity is not None:
            if identity in seen:
                raise EventFileError(
                    path,
                    f"same seed {identity[0]} and shard {identity[1][0]}/{identity[1][1]} as "
                    f"{seen[identity]}: the same events would be counted twice",
                )
            seen[identity] = path
    return sample


def _sample(metas: Sequence[dict[str, Any]]) -> Any:
    """The merged sample's process: ``background`` when a mixture file is among the inputs."""
    processes = [m.get("process") for m in metas]
    return "background" if "background" in processes else processes[0]


def _merged_components(metas: Sequence[dict[str, Any]], events: Events) -> dict[str, Any]:
    """Per-process figures summed over the inputs; ratios and effective events recomputed."""
    merged: dict[str, Any] = {}
    for meta in metas:
        for name, stats in meta.get("components", {}).items():
            total = merged.setdefault(name, {k: v for k, v in stats.items() if k not in SUMMED})
            for key in SUMMED:
                total[key] = total.get(key, 0) + stats.get(key, 0)
    for name, total in merged.items():
        w = events.event_weights[events.labels == process_label(name)]
        total["preselection_efficiency"] = total["events"] / total["generated"]
        total["events_per_cpu_s"] = total["events"] / total["cpu_seconds"]
        total["effective_events"] = effective_events(w)
    return merged


def _rescaled(events: Events, fractions: dict[str, float] | None) -> np.ndarray:
    """Each process's weights summing to its count in the plain mixture that holds the least
    enriched process's events (mean weight 1 there, 1/factor for an enriched one; as
    :func:`offline.events.generate.generate_many` writes them). Without a mixture: mean 1."""
    assert events.weights is not None and events.labels is not None
    weights = events.weights.astype(np.float64)
    labels, counts = np.unique(events.labels, return_counts=True)
    names = [PROCESSES[label] for label in labels]
    share = {n: fractions[n] / sum(fractions.values()) for n in names} if fractions else {}
    plain_total = min(c / share[n] for n, c in zip(names, counts, strict=True)) if share else 0
    for name, label, count in zip(names, labels, counts, strict=True):
        mine = events.labels == label
        weights[mine] *= (share[name] * plain_total if share else count) / weights[mine].sum()
    return weights


def merge_event_files(
    inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write the events of ``inputs`` into ``out`` (atomically); returns the merged metadata."""
    paths = [Path(p) for p in inputs]
    out = Path(out)
    if any(os.path.realpath(out) == os.path.realpath(p) for p in paths):
        raise ValueError(f"the output {out} is also an input: write the merge to a new file")
    metas = [read_metadata(p) for p in paths]
    sample = check_mergeable(paths, metas)
    blocks = [read_events(p) for p in paths]
    events = concatenate(blocks)
    fractions = next((m["mix_fractions"] for m in metas if m.get("mix_fractions")), None)
    if events.weights is not None and events.labels is not None:
        events = Events(events.particles, _rescaled(events, fractions), events.labels)
    meta: dict[str, Any] = {}
    if metas[0]:
        meta = {key: metas[0][key] for key in SAME_SAMPLE_KEYS if key in metas[0]}
        meta["process"], meta["mix_fractions"] = sample, fractions
        meta["components"] = _merged_components(metas, events)
        meta["package_versions"] = metas[0].get("package_versions")
    meta["events"] = len(events)
    meta["merged_from"] = [
        {
            "file": path.name,
            "events": len(block),
            **{k: m[k] for k in ("seed", "shard") if k in m},
        }
        for path, block, m in zip(paths, blocks, metas, strict=True)
    ]
    if events.labels is not None:
        ids, counts = np.unique(events.labels, return_counts=True)
        meta["label_counts"] = {PROCESSES[i]: int(c) for i, c in zip(ids, counts, strict=True)}
        if fractions:  # events per plain event (1/mean weight), for the enriched processes
            enrichment = {
                name: count / events.event_weights[events.labels == process_label(name)].sum()
                for name, count in meta["label_counts"].items()
            }
            meta["enrichment"] = {n: e for n, e in enrichment.items() if not np.isclose(e, 1)}
    write_events(out, events, meta)
    return meta
