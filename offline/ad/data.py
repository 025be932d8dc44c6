"""Model inputs from event files: the deterministic background split and the preprocessing.

Model inputs are ``Preprocessing.apply(to_hardware(events.features))`` (float32),
with the preprocessing fitted on the training background only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from offline.events.io import Events
from offline.preprocess import Preprocessing, to_hardware

DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class Split:
    """Event indices (sorted) of the training, validation and test background."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n: int, seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> Split:
    """Deterministic random split of n events (same n, seed, fractions -> same split)."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
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
