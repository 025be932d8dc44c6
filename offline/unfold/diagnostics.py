"""Per-iteration weight diagnostics: effective sample size, extreme weights, clipping.

The OmniFold issue trackers show that replacing NaN/inf weights by a constant hides
classifier blow-ups (f → 1). Here non-finite weights are an error, and each step
records how peaked its weights are, so a bad iteration is visible rather than hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size (Σw)² / Σw²; equals N for uniform weights."""
    w = np.asarray(weights, dtype=float)
    denom = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / denom) if denom > 0 else 0.0


def largest_weights(weights: np.ndarray, k: int = 5) -> list[float]:
    """The k largest weights relative to the mean weight (1 = typical event)."""
    w = np.asarray(weights, dtype=float)
    if w.size == 0:
        return []
    mean = float(np.mean(np.abs(w))) or 1.0
    top = np.sort(w)[::-1][:k]
    return [float(v / mean) for v in top]


@dataclass
class StepDiagnostics:
    """What one OmniFold step did: its training and the weights it produced."""

    iteration: int
    step: int
    member: int
    epochs: int
    val_loss: float
    ess: float
    ess_fraction: float
    max_weight: float
    largest: list[float] = field(default_factory=list)
    clipped: int = 0
    seconds: float = 0.0

    @classmethod
    def from_weights(
        cls,
        weights: np.ndarray,
        *,
        iteration: int,
        step: int,
        member: int,
        epochs: int,
        val_loss: float,
        clipped: int,
        seconds: float,
    ) -> StepDiagnostics:
        ess = effective_sample_size(weights)
        largest = largest_weights(weights)
        return cls(
            iteration=iteration,
            step=step,
            member=member,
            epochs=epochs,
            val_loss=float(val_loss),
            ess=ess,
            ess_fraction=ess / max(len(weights), 1),
            max_weight=largest[0] if largest else 0.0,
            largest=largest,
            clipped=int(clipped),
            seconds=float(seconds),
        )


def diagnostics_table(records: list[StepDiagnostics]) -> pd.DataFrame:
    """One row per (member, iteration, step); ``largest`` joined as text for CSV."""
    rows = []
    for rec in records:
        row = asdict(rec)
        row["largest"] = " ".join(f"{v:.3g}" for v in rec.largest)
        rows.append(row)
    columns = list(StepDiagnostics.__dataclass_fields__)
    return pd.DataFrame(rows, columns=columns)


def weight_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute change of the push weights between iterations (convergence monitor)."""
    return float(np.mean(np.abs(np.asarray(current) - np.asarray(previous))))
