"""Distances between unfolded and true distributions, as quoted in the OmniFold papers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from offline.unfold.examples import UnfoldingProblem


def weighted_histogram(
    values: np.ndarray, bins: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Weighted counts in ``bins``; entries outside the range are dropped (as in the papers' tables)."""
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=bins, weights=weights)
    return counts


def triangular_discriminator(p: np.ndarray, q: np.ndarray) -> float:
    """Δ(p, q) = ½ Σ (p_i − q_i)² / (p_i + q_i) on unit-normalised histograms, returned ×10³.

    The ×10³ is the convention of the OmniFold tables, so values compare directly. Bins
    empty in both histograms add nothing.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("triangular discriminator needs two histograms with positive total weight")
    p = p / p.sum()
    q = q / q.sum()
    total = p + q
    nonzero = total > 0
    return float(0.5 * np.sum((p[nonzero] - q[nonzero]) ** 2 / total[nonzero]) * 1e3)


def sample_discriminator(
    x: np.ndarray,
    y: np.ndarray,
    bins: np.ndarray,
    x_weights: np.ndarray | None = None,
    y_weights: np.ndarray | None = None,
) -> float:
    """Triangular discriminator (×10³) between two weighted samples histogrammed in ``bins``."""
    return triangular_discriminator(
        weighted_histogram(x, bins, x_weights), weighted_histogram(y, bins, y_weights)
    )


def weighted_moments(values: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Weighted mean and standard deviation."""
    values = np.asarray(values, dtype=float)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    mean = float(np.sum(weights * values) / np.sum(weights))
    var = float(np.sum(weights * (values - mean) ** 2) / np.sum(weights))
    return mean, float(np.sqrt(var))


def metric_table(
    problem: UnfoldingProblem, weights: dict[str, np.ndarray], iterations: int
) -> pd.DataFrame:
    """Triangular discriminator ×10³ against the truth, one row per observable.

    Columns: each entry of ``weights`` (unfolded particle-level weights of the simulated
    events, e.g. ``{"omnifold": result.weights}``), then ``ibu`` (IBU of the same
    observable alone, ``iterations`` iterations, same bins at reco and gen) and ``prior``
    (the simulation as generated).
    """
    f = problem.flags()
    pg, dg = f["pass_gen"], f["data_pass_gen"]
    prior = np.ones(len(problem.sim_gen)) if problem.sim_weights is None else problem.sim_weights
    data_w = (
        np.ones(len(problem.data_gen)) if problem.data_weights is None else problem.data_weights
    )
    unfolded = problem.ibu(iterations)
    rows = {}
    for j, obs in enumerate(problem.observables):
        bins = problem.bins[obs]
        truth = weighted_histogram(problem.data_gen[dg, j], bins, data_w[dg])
        row = {
            label: triangular_discriminator(
                weighted_histogram(problem.sim_gen[pg, j], bins, w[pg]), truth
            )
            for label, w in weights.items()
        }
        row["ibu"] = triangular_discriminator(unfolded[obs], truth)
        row["prior"] = triangular_discriminator(
            weighted_histogram(problem.sim_gen[pg, j], bins, prior[pg]), truth
        )
        rows[obs] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "observable"
    return table
