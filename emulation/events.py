"""The trigger emulated on event files: per-event scores and bits, rate, efficiencies, ABCD counts.

Streams HDF5 event files (``offline.events.iter_events``), turns each block into hardware
words (``offline.preprocess.to_hardware``) and runs :class:`emulation.trigger.TriggerEmulator`.
Rates: an L1 trigger sees 40 MHz of bunch crossings, so the rate is 40 000 kHz times the
(weighted) fraction of background events that fire. Its uncertainty is the weighted
binomial one, ``var(eff) = [(1 - eff)**2 sum_pass w**2 + eff**2 sum_fail w**2] / (sum w)**2``
(``eff (1 - eff) / N`` for unit weights). Background = events labelled with a
``BACKGROUND_PROCESSES`` process or carrying no label at all.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from emulation.fixed import OverflowCounter
from emulation.spec import SPEC_FILE, FirmwareSpec, load_spec, load_weights
from emulation.trigger import REGIONS, TriggerEmulator, TriggerOutputs
from offline.ad.metrics import BUNCH_CROSSING_KHZ, fpr_to_rate
from offline.artifacts import atomic_path
from offline.events.io import Events, iter_events
from offline.events.schema import BACKGROUND_PROCESSES, N_FEATURES, PROCESSES
from offline.preprocess import to_hardware

__all__ = [
    "BUNCH_CROSSING_KHZ",
    "EventsEmulation",
    "background_and_edge_words",
    "binomial_efficiency",
    "edge_words",
    "emulate_events",
    "find_spec",
    "load_trigger",
    "trigger_rate",
]

UNLABELLED = "unlabelled"


def edge_words(spec: FirmwareSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Hardware words at the edges: all-empty events, zeros, saturating pT, extreme eta/phi words."""
    hw = spec.hardware_input
    words = np.zeros((n, N_FEATURES), dtype=np.int64)  # first block: all-empty events
    q = n // 4
    pt_cols = np.arange(0, N_FEATURES, 3)
    # saturating pT: the largest word the input type holds, in random objects
    mask = rng.random((q, len(pt_cols))) < 0.5
    words[q : 2 * q, pt_cols] = np.where(mask, hw.max_int, 0)
    # every word at the type's extremes
    words[2 * q : 3 * q] = rng.choice([hw.min_int, hw.max_int, 0, 1, -1], size=(q, N_FEATURES))
    # random words anywhere in the type's range
    words[3 * q :] = rng.integers(hw.min_int, hw.max_int + 1, size=(n - 3 * q, N_FEATURES))
    return words


def background_and_edge_words(
    background: Sequence[str | os.PathLike[str]], n: int, spec: FirmwareSpec, seed: int = 0
) -> np.ndarray:
    """The first events of the background files plus edge words (empty, saturating, extreme): n in all.

    The words the emulator is timed on (``emulation.workflow.emulator_speed``) and checked against
    the C simulation on (``firmware.trigger_csim``)."""
    n_edges = max(8, n // 10)
    blocks, have = [], 0
    for path in background:
        for block in iter_events(path, max(1, n - n_edges - have)):
            blocks.append(to_hardware(block.features))
            have += len(block)
            break
        if have >= n - n_edges:
            break
    words = np.concatenate(blocks) if blocks else np.zeros((0, N_FEATURES), dtype=np.int64)
    return np.concatenate(
        [
            words[: n - n_edges],
            edge_words(spec, np.random.default_rng(seed), n - min(len(words), n - n_edges)),
        ]
    )


def find_spec(path: str | os.PathLike[str]) -> Path:
    """The ``spec.json`` of a run directory (``RUN/quantize/spec.json``), a directory holding one, or the file."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such run, spec directory or spec file")
    if path.is_file():
        return path
    for candidate in (path / SPEC_FILE, path / "quantize" / SPEC_FILE):
        if candidate.exists():
            return candidate
    if (path / "l1ad_firmware.json").exists() or (path / "firmware" / "defines.h").exists():
        raise ValueError(
            f"{path}: an hls4ml project, not a FirmwareSpec; emulate the trigger from its quantized model "
            f"(a run directory or a directory with {SPEC_FILE}, with --project {path} for the C simulation), "
            "or emulate the plain network with --inputs/--out"
        )
    raise ValueError(
        f"{path}: holds neither {SPEC_FILE} nor quantize/{SPEC_FILE} (not a run or spec directory)"
    )


def load_trigger(path: str | os.PathLike[str]) -> tuple[FirmwareSpec, dict[str, np.ndarray], Path]:
    """Spec, weights and spec path of a run directory, spec directory or spec file."""
    spec_path = find_spec(path)
    spec = load_spec(spec_path)
    return spec, load_weights(spec, spec_path), spec_path


def binomial_efficiency(
    fired: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Weighted fraction of events that fired and its binomial uncertainty (NaN, NaN without events)."""
    fired = np.asarray(fired, dtype=bool)
    w = np.ones(len(fired)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if len(fired) == 0 or total <= 0:
        return math.nan, math.nan
    eff = float(w[fired].sum() / total)
    var = ((1 - eff) ** 2 * (w[fired] ** 2).sum() + eff**2 * (w[~fired] ** 2).sum()) / total**2
    return eff, float(math.sqrt(var))


def trigger_rate(fired: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Rate in kHz at 40 MHz of background events ``fired`` (weighted) and its uncertainty."""
    eff, sigma = binomial_efficiency(fired, weights)
    return fpr_to_rate(eff), fpr_to_rate(sigma)


@dataclass
class EventsEmulation:
    """What :func:`emulate_events` measured; ``table`` has one row per process."""

    events: int
    seconds: float
    rate_khz: float
    rate_sigma_khz: float
    efficiency: dict[str, float]
    efficiency_sigma: dict[str, float]
    table: pd.DataFrame
    overflows: OverflowCounter
    out: Path | None
    thresholds: tuple[float, float]
    notes: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if not math.isfinite(v) else float(v)

        return {
            "events_emulated": self.events,
            "events_per_s": clean(self.events_per_s),
            "rate_khz": clean(self.rate_khz),
            "rate_sigma_khz": clean(self.rate_sigma_khz),
            "efficiency": {k: clean(v) for k, v in self.efficiency.items()},
        }


class _Writer:
    """Resizable datasets appended block by block inside an atomically renamed file."""

    def __init__(self, f: h5py.File) -> None:
        self.f = f
        self.n = 0
        specs = {
            "r1": ((), np.float64), "r2": ((), np.float64),
            "r1_mantissa": ((), np.int64), "r2_mantissa": ((), np.int64),
            "regions": ((4,), np.uint8), "trigger": ((), np.uint8),
            "weights": ((), np.float64), "labels": ((), np.int32), "file_index": ((), np.int32),
        }  # fmt: skip
        for name, (shape, dtype) in specs.items():
            f.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(65536, *shape),
            )

    def append(self, **columns: np.ndarray) -> None:
        n = len(columns["r1"])
        for name, values in columns.items():
            ds = self.f[name]
            ds.resize(self.n + n, axis=0)
            ds[self.n : self.n + n] = values
        self.n += n


def _labels(path: Path, events: Events, n: int) -> np.ndarray:
    """Labels of a block (index into PROCESSES), else the file's generator process, else -1 (unlabelled)."""
    if events.labels is not None:
        return events.labels.astype(np.int32)
    from offline.events.io import read_metadata

    process = read_metadata(path).get("process")
    label = PROCESSES.index(process) if process in PROCESSES else -1
    return np.full(n, label, dtype=np.int32)


def emulate_events(
    spec_dir: str | os.PathLike[str] | tuple[FirmwareSpec, dict[str, np.ndarray]],
    event_files: Sequence[str | os.PathLike[str]],
    chunk_size: int = 200_000,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    device: str | None = None,
) -> EventsEmulation:
    """Emulate the trigger on every event of ``event_files``; write per-event results to ``out`` (HDF5).

    ``spec_dir``: a run directory, spec directory or spec file (or a ``(spec, weights)`` pair).
    ``out`` holds ``r1``, ``r2`` (values) and their mantissas, ``regions`` (N, 4) A,B,C,D,
    ``trigger``, the events' ``weights`` and ``labels`` (-1: none) and ``file_index`` (into the
    ``files`` attribute). ``progress(n)`` is called after each block; ``workers`` threads emulate
    each block (see :class:`TriggerEmulator`); ``device`` is where its float path runs.
    """
    from offline.events.io import iter_events
    from offline.preprocess import to_hardware

    if isinstance(spec_dir, tuple):
        spec, weights = spec_dir
        spec_name = "<in memory>"
    else:
        spec, weights, spec_path = load_trigger(spec_dir)
        spec_name = str(spec_path)
    files = [Path(p) for p in event_files]
    if not files:
        raise ValueError("no event files to emulate")
    for p in files:
        if not p.exists():
            raise ValueError(f"{p}: event file does not exist")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    emulator = TriggerEmulator(spec, weights, device=device)
    counter = OverflowCounter()
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("r1", "r2", "regions", "trigger", "weights", "labels")
    }
    seconds = 0.0

    def run(writer: _Writer | None) -> None:
        nonlocal seconds
        for i, path in enumerate(files):
            for block in iter_events(path, chunk_size):
                words = to_hardware(block.features)
                start = time.perf_counter()
                res: TriggerOutputs = emulator(words, counter, workers=workers)
                seconds += time.perf_counter() - start
                cols = {
                    "r1": res.r1_float, "r2": res.r2_float, "r1_mantissa": res.r1, "r2_mantissa": res.r2,
                    "regions": res.regions, "trigger": res.trigger, "weights": block.event_weights,
                    "labels": _labels(path, block, len(words)), "file_index": np.full(len(words), i, np.int32),
                }  # fmt: skip
                if writer is not None:
                    writer.append(**cols)
                for k in parts:
                    parts[k].append(cols[k])
                if progress is not None:
                    progress(len(words))

    if out is None:
        run(None)
    else:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["files"] = json.dumps([str(p) for p in files])
            f.attrs["spec"] = spec_name
            f.attrs["thresholds"] = [spec.trigger.threshold_r1, spec.trigger.threshold_r2]
            f.attrs["fire_on"] = json.dumps(list(spec.trigger.fire_on))
            f.attrs["regions"] = json.dumps(list(REGIONS))
            f.attrs["label_names"] = json.dumps(list(PROCESSES))
            run(_Writer(f))
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return _measure(cat, seconds, counter, None if out is None else Path(out), spec)


def _measure(
    cat: dict[str, np.ndarray],
    seconds: float,
    counter: OverflowCounter,
    out: Path | None,
    spec: FirmwareSpec,
) -> EventsEmulation:
    labels, w = cat["labels"].astype(np.int64), cat["weights"]
    fired = cat["trigger"].astype(bool)
    regions = cat["regions"].reshape(-1, 4).astype(bool)
    background = np.isin(labels, [PROCESSES.index(p) for p in BACKGROUND_PROCESSES]) | (labels < 0)
    rows = []
    efficiency, sigma = {}, {}
    for label in sorted(set(labels.tolist())):
        name = PROCESSES[label] if label >= 0 else UNLABELLED
        sel = labels == label
        eff, err = binomial_efficiency(fired[sel], w[sel])
        row = {
            "process": name,
            "background": bool(background[sel][0]),
            "events": int(sel.sum()),
            "weight": float(w[sel].sum()),
            "fired": eff,
            "fired_sigma": err,
        }
        for k, r in enumerate(REGIONS):
            row[f"N_{r}"] = int(regions[sel, k].sum())
        for k, r in enumerate(REGIONS):
            row[f"W_{r}"] = float(w[sel][regions[sel, k]].sum())
        rows.append(row)
        if not row["background"]:
            efficiency[name], sigma[name] = eff, err
    notes = []
    if background.any():
        rate, rate_sigma = trigger_rate(fired[background], w[background])
    else:
        rate, rate_sigma = math.nan, math.nan
        notes.append("no background events: no rate")
    table = pd.DataFrame(rows)
    if len(table):
        table = table.set_index("process")
    t = (spec.trigger.threshold_r1, spec.trigger.threshold_r2)
    return EventsEmulation(
        len(labels), seconds, rate, rate_sigma, efficiency, sigma, table, counter, out, t, notes
    )
