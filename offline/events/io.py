"""Read and write event files in the ADC2021 HDF5 layout.

Real ADC2021 files load unchanged: only ``Particles`` is required. Files this
project writes add ``weights`` (N,) and ``labels`` (N,) (index into
:data:`~offline.events.schema.PROCESSES`) and a JSON ``l1ad_metadata``
attribute. Reading is chunked, so files larger than memory can be streamed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from offline.artifacts import FileFormatError, atomic_path
from offline.events.schema import (
    CLASS_NAMES,
    COLUMN_NAMES,
    LABELS_DATASET,
    N_COLUMNS,
    N_FEATURES,
    N_OBJECTS,
    OBJECT_ROWS,
    PARTICLES_DATASET,
    PROCESSES,
    WEIGHTS_DATASET,
)

METADATA_ATTR = "l1ad_metadata"
DEFAULT_CHUNK = 200_000


class EventFileError(FileFormatError):
    """An event file is missing, malformed or holds bad values; the message names file and problem."""


@dataclass(frozen=True)
class Events:
    """A block of events: particles (N, 19, 4) float32, optional weights (N,) and labels (N,)."""

    particles: np.ndarray
    weights: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.particles)

    @property
    def features(self) -> np.ndarray:
        """The 57 model features (pT, eta, phi of each object), shape (N, 57)."""
        return flatten_features(self.particles)

    @property
    def event_weights(self) -> np.ndarray:
        """Per-event weights; ones when the file carries none."""
        if self.weights is None:
            return np.ones(len(self), dtype=np.float64)
        return self.weights.astype(np.float64)

    def __getitem__(self, index: slice | np.ndarray) -> Events:
        return Events(
            self.particles[index],
            None if self.weights is None else self.weights[index],
            None if self.labels is None else self.labels[index],
        )


def effective_events(weights: np.ndarray) -> float:
    """Kish effective sample size (Σw)²/Σw²."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / (w**2).sum()) if (w**2).sum() > 0 else 0.0


def flatten_features(particles: np.ndarray) -> np.ndarray:
    """(N, 19, 4) particles -> (N, 57) features, dropping the class column."""
    if particles.ndim != 3 or particles.shape[1:] != (N_OBJECTS, N_COLUMNS):
        raise ValueError(
            f"particles must have shape (N, {N_OBJECTS}, {N_COLUMNS}), got {particles.shape}"
        )
    return particles[:, :, :3].reshape(len(particles), N_FEATURES)


def concatenate(blocks: list[Events]) -> Events:
    """Join blocks of events; weights/labels are kept only if every block has them."""
    if not blocks:
        raise ValueError("no event blocks to concatenate")

    def join(name: str) -> np.ndarray | None:
        arrays = [getattr(b, name) for b in blocks]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)

    return Events(np.concatenate([b.particles for b in blocks]), join("weights"), join("labels"))


@contextlib.contextmanager
def _corruption_as_error(path: Path, what: str) -> Iterator[None]:
    """HDF5 reports damaged files with many exception types: turn each into an EventFileError."""
    try:
        yield
    except EventFileError:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, IndexError) as err:
        raise EventFileError(path, f"{what} (truncated or corrupt?): {err}") from None


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise EventFileError(path, "file does not exist")
    with _corruption_as_error(path, "not a readable HDF5 file"):
        return h5py.File(path, "r")


def _check_layout(path: Path, f: h5py.File) -> int:
    if PARTICLES_DATASET not in f:
        found = ", ".join(f.keys()) or "nothing"
        raise EventFileError(path, f"missing dataset {PARTICLES_DATASET!r} (found: {found})")
    ds = f[PARTICLES_DATASET]
    if not isinstance(ds, h5py.Dataset):
        raise EventFileError(path, f"{PARTICLES_DATASET!r} is a group, expected a dataset")
    if ds.ndim != 3 or ds.shape[1:] != (N_OBJECTS, N_COLUMNS):
        raise EventFileError(
            path,
            f"dataset {PARTICLES_DATASET!r} has shape {ds.shape}, expected (N, {N_OBJECTS}, {N_COLUMNS})",
        )
    if ds.dtype.kind != "f":
        raise EventFileError(
            path, f"dataset {PARTICLES_DATASET!r} has dtype {ds.dtype}, expected float32"
        )
    n = ds.shape[0]
    if n == 0:
        raise EventFileError(path, "file holds no events (Particles has 0 rows)")
    for name in (WEIGHTS_DATASET, LABELS_DATASET):
        if name in f and f[name].shape != (n,):
            raise EventFileError(
                path, f"dataset {name!r} has shape {f[name].shape}, expected ({n},)"
            )
    if LABELS_DATASET in f and f[LABELS_DATASET].dtype.kind not in "iu":
        raise EventFileError(
            path,
            f"dataset {LABELS_DATASET!r} has dtype {f[LABELS_DATASET].dtype}, expected integers",
        )
    return n


def _read_block(path: Path, f: h5py.File, start: int, stop: int) -> Events:
    with _corruption_as_error(path, f"cannot read events {start}-{stop}"):
        particles = np.asarray(f[PARTICLES_DATASET][start:stop], dtype=np.float32)
        weights = f[WEIGHTS_DATASET][start:stop] if WEIGHTS_DATASET in f else None
        labels = f[LABELS_DATASET][start:stop] if LABELS_DATASET in f else None
    _check_finite(path, particles, PARTICLES_DATASET, start)
    _check_physical(path, particles, start)
    if weights is not None:
        with _corruption_as_error(path, f"dataset {WEIGHTS_DATASET!r} is not numeric"):
            weights = np.asarray(weights, dtype=np.float64)
        _check_finite(path, weights, WEIGHTS_DATASET, start)
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int32)
        bad = (labels < 0) | (labels >= len(PROCESSES))
        if bad.any():
            first = start + int(np.flatnonzero(bad)[0])
            raise EventFileError(
                path, f"label {labels[bad][0]} of event {first} is not a known process"
            )
    return Events(particles, weights, labels)


def _check_finite(path: Path, values: np.ndarray, name: str, start: int) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        event = start + int(np.argwhere(~finite)[0][0])
        raise EventFileError(path, f"dataset {name!r} holds NaN or inf (first at event {event})")


# |eta| of an L1 object never exceeds ~5 (the forward calorimeter); 10 leaves room for any detector
ETA_LIMIT = 10.0
# phi is stored in float32: allow its rounding of pi, nothing more
PHI_TOLERANCE = 1e-5
CLASS_CODES = (0, *(code for _, _, code in OBJECT_ROWS.values()))


def physics_problems(particles: np.ndarray) -> tuple[int, str] | None:
    """The first physically impossible value of (N, 19, 4) particles as (event, what), or None.

    pT must be >= 0, |eta| <= :data:`ETA_LIMIT`, |phi| <= pi (float32 rounding aside) and the
    class one of the ADC2021 codes.
    """
    checks = (
        ("pT", 0, lambda v: v < 0, "is negative"),
        ("eta", 1, lambda v: np.abs(v) > ETA_LIMIT, f"is outside [-{ETA_LIMIT:g}, {ETA_LIMIT:g}]"),
        ("phi", 2, lambda v: np.abs(v) > np.pi + PHI_TOLERANCE, "is outside [-pi, pi]"),
        (
            "class",
            3,
            lambda v: ~np.isin(v, CLASS_CODES),
            f"is not one of {', '.join(map(str, CLASS_CODES))}",
        ),
    )
    for field, column, is_bad, problem in checks:
        bad = is_bad(particles[..., column])
        if bad.any():
            event, obj = (int(i) for i in np.argwhere(bad)[0])
            return event, f"{field} {particles[event, obj, column]:g} of object {obj} {problem}"
    return None


def _check_physical(path: Path, particles: np.ndarray, start: int) -> None:
    found = physics_problems(particles)
    if found is not None:
        event, problem = found
        raise EventFileError(
            path, f"event {start + event}: {problem} (dataset {PARTICLES_DATASET!r})"
        )


def event_count(path: str | os.PathLike[str]) -> int:
    """Number of events in a file, after validating its layout."""
    path = Path(path)
    with _open(path) as f, _corruption_as_error(path, "cannot read the file's layout"):
        return _check_layout(path, f)


def iter_events(
    path: str | os.PathLike[str],
    chunk_size: int = DEFAULT_CHUNK,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[Events]:
    """Yield validated blocks of at most ``chunk_size`` events from ``path``."""
    path = Path(path)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    with _open(path) as f:
        with _corruption_as_error(path, "cannot read the file's layout"):
            n = _check_layout(path, f)
        stop = n if stop is None else min(stop, n)
        for begin in range(start, stop, chunk_size):
            yield _read_block(path, f, begin, min(begin + chunk_size, stop))


def read_events(path: str | os.PathLike[str], start: int = 0, stop: int | None = None) -> Events:
    """Read (a slice of) an event file into memory, validated."""
    return concatenate(list(iter_events(path, start=start, stop=stop)))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Generator metadata written by :func:`write_events`; empty for foreign files."""
    path = Path(path)
    with _open(path) as f, _corruption_as_error(path, f"cannot read attribute {METADATA_ATTR!r}"):
        raw = f.attrs.get(METADATA_ATTR)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, TypeError) as err:
        raise EventFileError(
            path, f"attribute {METADATA_ATTR!r} is not valid JSON: {err}"
        ) from None
    if not isinstance(data, dict):
        raise EventFileError(path, f"attribute {METADATA_ATTR!r} must hold a JSON object")
    return data


def validate_events(events: Events, where: str = "events") -> None:
    """Check shapes and values before writing; raises ValueError naming the problem."""
    p = events.particles
    if p.ndim != 3 or p.shape[1:] != (N_OBJECTS, N_COLUMNS):
        raise ValueError(
            f"{where}: particles must have shape (N, {N_OBJECTS}, {N_COLUMNS}), got {p.shape}"
        )
    if not np.isfinite(p).all():
        raise ValueError(f"{where}: particles hold NaN or inf")
    found = physics_problems(p)
    if found is not None:
        raise ValueError(f"{where}: event {found[0]}: {found[1]}")
    for name in ("weights", "labels"):
        arr = getattr(events, name)
        if arr is not None and arr.shape != (len(p),):
            raise ValueError(f"{where}: {name} must have shape ({len(p)},), got {arr.shape}")
    if events.weights is not None and not np.isfinite(events.weights).all():
        raise ValueError(f"{where}: weights hold NaN or inf")


def write_events(
    path: str | os.PathLike[str], events: Events, metadata: dict[str, Any] | None = None
) -> Path:
    """Write events in the ADC2021 layout (plus weights/labels/metadata), atomically."""
    path = Path(path)
    validate_events(events, str(path))
    with atomic_path(path) as tmp:
        # Checksums make damage a read error instead of wrong values: Fletcher-32 on every data
        # chunk, and the HDF5 1.10 file format (libver "v110"): checksummed metadata and chunk indexes.
        with h5py.File(tmp, "w", libver="v110") as f:
            f.create_dataset(
                PARTICLES_DATASET,
                data=events.particles.astype(np.float32),
                chunks=True,
                compression="gzip",
                compression_opts=4,
                shuffle=True,
                fletcher32=True,
            )
            f.create_dataset("Particles_Names", data=np.array(COLUMN_NAMES, dtype="S"))
            f.create_dataset("Particles_Classes", data=np.array(CLASS_NAMES, dtype="S"))
            if events.weights is not None:
                f.create_dataset(
                    WEIGHTS_DATASET,
                    data=events.weights.astype(np.float64),
                    chunks=True,
                    fletcher32=True,
                )
            if events.labels is not None:
                f.create_dataset(
                    LABELS_DATASET,
                    data=events.labels.astype(np.int32),
                    chunks=True,
                    fletcher32=True,
                )
                f.attrs["label_names"] = json.dumps(list(PROCESSES))
            if metadata is not None:
                f.attrs[METADATA_ATTR] = json.dumps(metadata, sort_keys=True)
    return path
