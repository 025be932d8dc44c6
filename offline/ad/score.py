"""Scoring: R1, R2 for every event of a file, in chunks, written beside its labels and weights.

A scores file is HDF5 with datasets ``R1``, ``R2`` (float64), ``weights`` (float64; ones
when the events carry none) and ``labels`` (int32, -1 when unknown), one row per event
in file order, and attributes naming the event file and the checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from offline.ad.data import inputs
from offline.ad.train import load_pair
from offline.artifacts import atomic_path
from offline.events.io import DEFAULT_CHUNK, Events, event_count, iter_events
from offline.preprocess import Preprocessing

SCORE_DATASETS = ("R1", "R2", "weights", "labels")


@dataclass(frozen=True)
class Scores:
    r1: np.ndarray
    r2: np.ndarray
    weights: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.r1)

    def __getitem__(self, index: int | slice | np.ndarray) -> Scores:
        return Scores(self.r1[index], self.r2[index], self.weights[index], self.labels[index])


@torch.no_grad()
def score_inputs(
    model: nn.Module, x: np.ndarray, batch: int = 65_536, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(R1, R2) as float64 arrays for preprocessed inputs ``x``."""
    model = model.to(device).eval()
    out1, out2 = [], []
    for start in range(0, len(x), batch):
        xb = torch.as_tensor(np.asarray(x[start : start + batch], dtype=np.float32), device=device)
        r1, r2 = model(xb)
        out1.append(r1.double().cpu().numpy())
        out2.append(r2.double().cpu().numpy())
    if not out1:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(out1), np.concatenate(out2)


def score_events(
    model: nn.Module,
    preprocessing: Preprocessing,
    events: Events,
    device: str | torch.device = "cpu",
) -> Scores:
    r1, r2 = score_inputs(model, inputs(events, preprocessing), device=device)
    labels = (
        np.full(len(events), -1, np.int32)
        if events.labels is None
        else events.labels.astype(np.int32)
    )
    return Scores(r1, r2, events.event_weights, labels)


def write_scores(
    path: str | os.PathLike[str], scores: Scores, attrs: dict[str, Any] | None = None
) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("R1", data=scores.r1.astype(np.float64))
        f.create_dataset("R2", data=scores.r2.astype(np.float64))
        f.create_dataset("weights", data=scores.weights.astype(np.float64))
        f.create_dataset("labels", data=scores.labels.astype(np.int32))
        f.attrs["l1ad_scores"] = json.dumps(attrs or {}, sort_keys=True, default=str)
    return path


def read_scores(path: str | os.PathLike[str]) -> Scores:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: scores file does not exist")
    try:
        with h5py.File(path, "r") as f:
            missing = [d for d in SCORE_DATASETS if d not in f]
            if missing:
                raise ValueError(f"{path}: not a scores file, missing {', '.join(missing)}")
            data = {d: f[d][:] for d in SCORE_DATASETS}
    except (
        OSError,
        RuntimeError,
        KeyError,
        TypeError,
    ) as err:  # HDF5's ways of reporting a damaged file
        raise ValueError(f"{path}: not a readable HDF5 file: {err}") from None
    if len({len(v) for v in data.values()}) != 1:
        raise ValueError(f"{path}: R1, R2, weights and labels differ in length")
    return Scores(data["R1"], data["R2"], data["weights"], data["labels"].astype(np.int32))


def score_file(
    checkpoint: str | os.PathLike[str],
    events_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    preprocessing: str | os.PathLike[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Score every event of ``events_path`` with a checkpoint directory, chunk by chunk, into ``out_path``.

    The preprocessing defaults to ``preprocessing.json`` in the checkpoint directory or its parent.
    """
    checkpoint = Path(checkpoint)
    model = load_pair(checkpoint)
    pre_path = Path(preprocessing) if preprocessing else _find_preprocessing(checkpoint)
    pre = Preprocessing.load(pre_path)
    n = event_count(events_path)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as f:
        ds = {
            "R1": f.create_dataset("R1", (n,), np.float64),
            "R2": f.create_dataset("R2", (n,), np.float64),
            "weights": f.create_dataset("weights", (n,), np.float64),
            "labels": f.create_dataset("labels", (n,), np.int32),
        }
        start = 0
        with tqdm(total=n, desc="score", unit="ev", disable=not progress) as bar:
            for block in iter_events(events_path, chunk_size):
                s = score_events(model, pre, block, device)
                stop = start + len(s)
                ds["R1"][start:stop], ds["R2"][start:stop] = s.r1, s.r2
                ds["weights"][start:stop], ds["labels"][start:stop] = s.weights, s.labels
                start = stop
                bar.update(len(s))
        f.attrs["l1ad_scores"] = json.dumps(
            {
                "events": str(events_path),
                "checkpoint": str(checkpoint),
                "preprocessing": str(pre_path),
            },
            sort_keys=True,
        )
    return out_path


def _find_preprocessing(checkpoint: Path) -> Path:
    for candidate in (checkpoint / "preprocessing.json", checkpoint.parent / "preprocessing.json"):
        if candidate.exists():
            return candidate
    raise ValueError(
        f"{checkpoint}: no preprocessing.json beside the checkpoint; pass one explicitly"
    )
