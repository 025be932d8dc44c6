"""Summaries and control plots of event files, streamed chunk by chunk."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from offline.events.io import iter_events, read_metadata
from offline.events.schema import OBJECT_ROWS, PROCESSES
from offline.preprocess import HARDWARE_LSB

# fixed binning, so chunks can be histogrammed one at a time
# eta/phi bins span whole hardware steps (4 LSB each), so quantised L1 values show no aliasing
_ETA_STEP = 4 * HARDWARE_LSB["eta"]
_PHI_STEP = 4 * HARDWARE_LSB["phi"]
BINS = {
    "pt": np.linspace(0, 500, 51),
    "eta": (np.arange(-28, 29) - 0.5 / 4) * _ETA_STEP,
    "phi": (np.arange(-18, 19) - 0.5 / 4) * _PHI_STEP,
}
COLUMNS = {"pt": 0, "eta": 1, "phi": 2}
_COLORS = (
    "black",
    "tab:orange",
    "tab:blue",
    "tab:green",
)  # one colour per object type in every plot


@dataclass
class EventSummary:
    """Per-object-type statistics of one event file."""

    path: Path
    events: int = 0
    weight_sum: float = 0.0
    weight_min: float = np.inf
    weight_max: float = -np.inf
    has_weights: bool = False
    label_counts: dict[str, int] = field(default_factory=dict)
    multiplicity: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # counts of events with k objects
    minimum: dict[tuple[str, str], float] = field(default_factory=dict)
    maximum: dict[tuple[str, str], float] = field(default_factory=dict)
    histograms: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per object type: mean multiplicity and pT/eta/phi ranges of present objects."""
        rows = []
        for obj, (_, count, _) in OBJECT_ROWS.items():
            mult = self.multiplicity[obj]
            row = {
                "object": obj,
                "max per event": count,
                "mean multiplicity": float(
                    (mult * np.arange(count + 1)).sum() / max(self.events, 1)
                ),
                "events with >=1": int(mult[1:].sum()),
            }
            for var in COLUMNS:
                lo, hi = self.minimum.get((obj, var), np.nan), self.maximum.get((obj, var), np.nan)
                row[f"{var} range"] = f"[{lo:.3g}, {hi:.3g}]"
            rows.append(row)
        return pd.DataFrame(rows).set_index("object")


def summarize(path: str | os.PathLike[str], chunk_size: int = 200_000) -> EventSummary:
    """Stream a file once and collect its summary and histograms."""
    summary = EventSummary(Path(path), metadata=read_metadata(path))
    for obj, (_, count, _) in OBJECT_ROWS.items():
        summary.multiplicity[obj] = np.zeros(count + 1, dtype=np.int64)
        for var, bins in BINS.items():
            summary.histograms[(obj, var)] = np.zeros(len(bins) - 1)
    for block in iter_events(path, chunk_size):
        summary.events += len(block)
        w = block.event_weights
        if block.weights is not None:
            summary.has_weights = True
            summary.weight_min = min(summary.weight_min, float(w.min()))
            summary.weight_max = max(summary.weight_max, float(w.max()))
        summary.weight_sum += float(w.sum())
        if block.labels is not None:
            ids, counts = np.unique(block.labels, return_counts=True)
            for i, c in zip(ids, counts, strict=True):
                summary.label_counts[PROCESSES[i]] = summary.label_counts.get(
                    PROCESSES[i], 0
                ) + int(c)
        for obj, (first, count, _) in OBJECT_ROWS.items():
            rows = block.particles[:, first : first + count]
            present = rows[:, :, 0] > 0
            summary.multiplicity[obj] += np.bincount(present.sum(axis=1), minlength=count + 1)
            weights = np.broadcast_to(w[:, None], present.shape)[present]
            for var, col in COLUMNS.items():
                values = rows[:, :, col][present]
                if values.size:
                    key = (obj, var)
                    summary.minimum[key] = min(
                        summary.minimum.get(key, np.inf), float(values.min())
                    )
                    summary.maximum[key] = max(
                        summary.maximum.get(key, -np.inf), float(values.max())
                    )
                    summary.histograms[key] += np.histogram(values, BINS[var], weights=weights)[0]
    return summary


def plot_summary(
    summary: EventSummary, out_dir: str | os.PathLike[str], label: str | None = None
) -> list[Path]:
    """PNG histograms: pT, eta, phi and multiplicity of each object type."""
    import mplhep

    from offline.plotting import new_figure, save_figure

    out_dir = Path(out_dir)
    label = label or summary.path.stem
    written = []
    for var, bins in BINS.items():
        fig, ax = new_figure()
        for color, obj in zip(_COLORS, OBJECT_ROWS, strict=True):
            if obj == "met" and var == "eta":  # MET has no eta
                continue
            mplhep.histplot(summary.histograms[(obj, var)], bins, ax=ax, label=obj, color=color)
        ax.set_xlabel({"pt": r"$p_T$ [GeV]", "eta": r"$\eta$", "phi": r"$\phi$"}[var])
        ax.set_ylabel("weighted objects / bin")
        if var == "pt":
            ax.set_yscale("log")
        ax.set_title(label, fontsize=14)
        ax.legend()
        written.append(save_figure(fig, out_dir / f"{label}_{var}.png"))
    fig, ax = new_figure()
    for color, (obj, (_, count, _)) in zip(_COLORS, OBJECT_ROWS.items(), strict=True):
        if obj != "met":
            mplhep.histplot(
                summary.multiplicity[obj], np.arange(count + 2) - 0.5, ax=ax, label=obj, color=color
            )
    ax.set_xlabel("objects per event")
    ax.set_ylabel("events")
    ax.set_title(label, fontsize=14)
    ax.legend()
    written.append(save_figure(fig, out_dir / f"{label}_multiplicity.png"))
    return written
