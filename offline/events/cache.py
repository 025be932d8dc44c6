"""A cache of generated event files, so that ``l1ad run`` generates its default dataset once.

A file's name carries a hash of everything that decides its bytes: process,
number of events, seed, shard, the generator version, the Pythia settings and
the L1 response. Change any of them and a new file is generated; a cached
file that no longer reads (truncated, corrupt) is regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.events.engine import remove_parts
from offline.events.generate import GENERATOR_VERSION, generate_many
from offline.events.io import EventFileError, event_count, read_metadata, write_events
from offline.events.l1_response import DEFAULT_L1, L1Config
from offline.events.processes import MIX_FRACTIONS, PROCESS_SETTINGS, enriched_mix_counts


@dataclass(frozen=True)
class CachedFile:
    path: Path
    from_cache: bool
    metadata: dict[str, Any]


def cache_key(
    process: str,
    events: int,
    seed: int,
    shard: tuple[int, int] = (0, 1),
    l1: L1Config = DEFAULT_L1,
    enrich: Mapping[str, float] | None = None,
) -> str:
    """Short hash of everything that determines a generated file."""
    components = list(MIX_FRACTIONS) if process == "background" else [process]
    payload: dict[str, Any] = {
        "process": process,
        "events": events,
        "seed": seed,
        "shard": list(shard),
        "generator_version": GENERATOR_VERSION,
        "settings": {c: PROCESS_SETTINGS[c].settings for c in components},
        "mix": MIX_FRACTIONS if process == "background" else None,
        "l1": l1.to_dict(),
    }
    if enrich and process == "background":  # absent otherwise: the plain files keep their names
        payload["enrich"] = {p: float(k) for p, k in sorted(enrich.items())}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(
    cache_dir: str | os.PathLike[str],
    process: str,
    events: int,
    seed: int,
    shard: tuple[int, int] = (0, 1),
    l1: L1Config = DEFAULT_L1,
    enrich: Mapping[str, float] | None = None,
) -> Path:
    key = cache_key(process, events, seed, shard, l1, enrich)
    return Path(cache_dir) / "events" / f"{process}_n{events}_seed{seed}_{key}.h5"


def _usable(path: Path, events: int) -> bool:
    try:
        return path.is_file() and event_count(path) == events
    except EventFileError:
        return False


def parts_path(
    cache_dir: str | os.PathLike[str],
    requests: dict[str, int],
    seed: int,
    enrich: Mapping[str, float] | None = None,
) -> Path:
    """The parts directory of the job generating these requests (finished tasks, for resuming)."""
    keys = sorted(cache_key(p, n, seed, enrich=enrich) for p, n in requests.items())
    return (
        Path(cache_dir)
        / "events"
        / f"job_{hashlib.sha256(''.join(keys).encode()).hexdigest()[:16]}.parts"
    )


def cached_generate(
    cache_dir: str | os.PathLike[str],
    requests: dict[str, int],
    seed: int,
    workers: int | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    enrich: Mapping[str, float] | None = None,
) -> dict[str, CachedFile]:
    """Event files for each (process, events) request: from the cache, or generated in one job and cached.

    ``enrich`` applies to the background mixture (:func:`offline.events.processes.enriched_mix_counts`).
    Finished tasks of the job are kept until every file is written, so an interrupted run resumes.
    """
    paths = {p: cache_path(cache_dir, p, n, seed, enrich=enrich) for p, n in requests.items()}
    expected = {
        p: sum(enriched_mix_counts(n, enrich).values()) if p == "background" else n
        for p, n in requests.items()
    }
    missing = {p: n for p, n in requests.items() if not _usable(paths[p], expected[p])}
    parts = parts_path(cache_dir, missing, seed, enrich)
    generated = (
        generate_many(
            missing,
            seed,
            workers,
            progress=progress,
            scheduler=scheduler,
            parts=parts,
            enrich=enrich,
        )
        if missing
        else {}
    )
    out = {}
    for process, path in paths.items():
        if process in generated:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_events(path, generated[process].events, generated[process].metadata)
            out[process] = CachedFile(path, False, generated[process].metadata)
        else:
            out[process] = CachedFile(path, True, read_metadata(path))
    if generated:
        remove_parts(parts)
    return out
