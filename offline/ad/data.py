"""Model inputs from event files: the deterministic background split, the preprocessing, batch sources.

Model inputs are ``Preprocessing.apply(to_hardware(events.features))`` (float32),
with the preprocessing fitted on the training background only.

Training reads its sets through a :class:`BatchSource`: :class:`ArraySource` (in memory) or
:class:`EventFileSource` (streamed from the HDF5 file, for files larger than memory). With a
shuffle chunk (``TrainConfig.shuffle_chunk``) an epoch visits contiguous chunks in a shuffled
order, shuffling events within groups of chunks (:func:`chunk_order`), so both sources give the
same batches and streamed training equals in-memory training.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from offline.ad.defaults import DEFAULT_FRACTIONS
from offline.events.io import DEFAULT_CHUNK, Events, iter_events, read_events
from offline.events.schema import N_FEATURES
from offline.preprocess import Preprocessing, to_hardware


@dataclass(frozen=True)
class Split:
    """Event indices (sorted) of the training, validation and test background."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n: int, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Split:
    """Deterministic random split of n events (same n, seed, fractions -> same split)."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"split fractions must be three positive numbers summing to 1, got {fractions}"
        )
    if n < 10:
        raise ValueError(f"need at least 10 background events to split, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    a = round(n * fractions[0])
    b = a + round(n * fractions[1])
    return Split(np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:]))


def inputs(events: Events, preprocessing: Preprocessing) -> np.ndarray:
    """(N, 57) float32 model inputs of a block of events."""
    return preprocessing.apply(to_hardware(events.features)).astype(np.float32)


def fit_preprocessing(events: Events, path: str | os.PathLike[str] | None = None) -> Preprocessing:
    """Fit on (training) background hardware words with event weights; save as JSON if ``path``."""
    pre = Preprocessing.fit(to_hardware(events.features), events.event_weights)
    if path is not None:
        pre.save(path)
    return pre


class BatchSource(Protocol):
    """Model inputs and weights of one event set, read by contiguous ranges of its positions."""

    def __len__(self) -> int: ...

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs float32 (k, 57), weights float64 (k,)) of positions [start, stop)."""
        ...


@dataclass(frozen=True)
class ArraySource:
    """A set held in memory."""

    x: np.ndarray
    w: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.w):
            raise ValueError(
                f"features and weights differ in length ({len(self.x)} and {len(self.w)})"
            )

    def __len__(self) -> int:
        return len(self.x)

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.x[start:stop], dtype=np.float32), np.asarray(
            self.w[start:stop], dtype=np.float64
        )


@dataclass(frozen=True)
class EventFileSource:
    """A set streamed from an event file: the file rows ``file_rows`` (sorted), preprocessed on read.

    Positions [start, stop) span one contiguous range of file rows (the rows between belong to
    other sets of the split and are skipped), so a chunk costs one contiguous HDF5 read.
    """

    path: Path
    file_rows: np.ndarray
    preprocessing: Preprocessing

    def __len__(self) -> int:
        return len(self.file_rows)

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        wanted = self.file_rows[start:stop]
        if len(wanted) == 0:
            return np.zeros((0, N_FEATURES), np.float32), np.zeros(0)
        first = int(wanted[0])
        block = read_events(self.path, first, int(wanted[-1]) + 1)[wanted - first]
        return inputs(block, self.preprocessing), block.event_weights


def chunk_order(
    n: int, chunk: int, group: int, seed: int, epoch: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch's visiting order in chunks: (chunk ids, permutation of their concatenated events) per group.

    Chunk c holds positions [c·chunk, (c+1)·chunk). The chunk order is shuffled, chunks are taken
    ``group`` at a time, and the events of a group are shuffled among themselves; the whole
    order is a function of (n, chunk, group, seed, epoch) alone, so an in-memory and a streamed
    source see identical batches.
    """
    if chunk < 1 or group < 1:
        raise ValueError(f"shuffle chunk and group must be >= 1, got {chunk} and {group}")
    rng = np.random.default_rng([seed, epoch])
    ids = rng.permutation(-(-n // chunk))
    for g in range(0, len(ids), group):
        members = ids[g : g + group]
        size = sum(min(chunk, n - c * chunk) for c in members)
        yield members, rng.permutation(size)


def load_chunks(source: BatchSource, ids: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and weights of the chunks ``ids`` of ``source``, concatenated in that order."""
    parts = [source.rows(int(c) * chunk, min((int(c) + 1) * chunk, len(source))) for c in ids]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def file_sha256(path: str | os.PathLike[str], chunk: int = DEFAULT_CHUNK) -> str:
    """sha256 of an event file's contents (particles, weights, labels as read), chunk by chunk."""
    digest = hashlib.sha256()
    for block in iter_events(path, chunk):
        for array in (block.particles, block.weights, block.labels):
            digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def fit_preprocessing_streamed(
    path: str | os.PathLike[str], file_rows: np.ndarray, chunk: int = DEFAULT_CHUNK
) -> Preprocessing:
    """:func:`fit_preprocessing` on the rows ``file_rows`` of a file, in two passes of bounded memory."""
    path = Path(path)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(file_rows), chunk):
            wanted = file_rows[start : start + chunk]
            first = int(wanted[0])
            block = read_events(path, first, int(wanted[-1]) + 1)[wanted - first]
            yield to_hardware(block.features).astype(np.float64), block.event_weights

    total, first_moment = 0.0, np.zeros(N_FEATURES)
    for words, w in blocks():
        total += w.sum()
        first_moment += w @ words
    mean = first_moment / total
    second = np.zeros(N_FEATURES)
    for words, w in blocks():
        second += w @ (words - mean) ** 2
    return Preprocessing.from_moments(mean, np.sqrt(second / total))
