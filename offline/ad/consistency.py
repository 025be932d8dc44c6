"""Is the ABCD closure scan, as a whole, consistent with statistical fluctuations?

The closure pulls of a scan are not independent: the signal region at ε_B = 0.02 contains the
one at 0.01, and every point's D region is most of the sample. So "the largest of nine pulls
is 2.06" cannot be read against one N(0, 1). Two global figures read it right:

- **χ²** = pᵀ Σ⁻¹ p over the resolved points, with Σ the covariance of the pull vector, and
  its p-value from χ²(k) for k points (k the rank of Σ);
- **the largest pull's global p-value**: the probability that a pull vector drawn from
  N(0, Σ) has some |pᵢ| at least as large as the observed largest (the look-elsewhere effect
  over the scan's own correlations).

Each pull is N(0, 1) when R1 ⟂ R2 (``tests/test_ad_abcd.py``), so Σ is the pulls' correlation
matrix. The correlations come from a Poisson bootstrap of the background (every event's weight
times a Poisson(1) count; :func:`offline.ad.rates.poisson_bootstrap`), each replica setting its
thresholds again as the analysis does, so the nesting of the regions and the thresholds' own
fluctuation are in them. A replica contributes its non-closure N_A − N_B·N_C/N_D in units of
the observed pull's σ. (The replicas' variances run about 20 % above the pulls' true ones, from
the ties Poisson counts put at the thresholds; their correlations match independent samples.)
Σ̂⁻¹ of R replicas overestimates Σ⁻¹ by about (R − 1)/(R − k − 2) (Hotelling); χ² is corrected
for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from offline.ad.abcd import check_scores, count_regions, thresholds_presorted
from offline.ad.defaults import DEFAULT_BOOTSTRAP
from offline.ad.rates import poisson_bootstrap

# N(0, Σ) draws behind the largest pull's global p-value (its binomial error is ≤ 0.0016)
MAX_PULL_DRAWS = 100_000


@dataclass(frozen=True)
class ClosureConsistency:
    """Global closure figures of a scan over the ε_B points that got a pull."""

    eps_b: tuple[float, ...]
    chi2: float
    ndof: int
    p_value: float
    max_abs_pull: float
    max_pull_p_value: float
    replicas: int
    correlation: tuple[tuple[float, ...], ...]  # of the pulls, from the bootstrap

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "eps_b": list(self.eps_b),
            "correlation": [list(row) for row in self.correlation],
        }


def scan_nonclosure(
    r1: np.ndarray, r2: np.ndarray, w: np.ndarray, eps_b: Sequence[float], order1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """N_A − N_B·N_C/N_D and its σ at each ε_B, thresholds set on this (checked) sample;
    ``order1`` is R1's stable sort order (replicas change weights, not scores)."""
    counts = [
        count_regions(r1, r2, w, *thresholds_presorted(r1, r2, w, eps, order1)) for eps in eps_b
    ]
    return (
        np.array([c.n["A"] - c.predicted for c in counts]),
        np.array([c.sigma for c in counts]),
    )


def closure_consistency(
    r1: np.ndarray,
    r2: np.ndarray,
    weights: np.ndarray | None,
    eps_b: Sequence[float],
    replicas: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> ClosureConsistency:
    """χ² and the largest pull's global p-value of the closure pulls at ``eps_b`` (the points
    the scan resolved), with the pulls' correlations from ``replicas`` Poisson-bootstrap
    replicas. Raises ValueError where they cannot be had (no point, too few replicas, an empty
    region, a pull that does not vary)."""
    r1, r2, w = check_scores(r1, r2, weights)
    points = tuple(float(e) for e in eps_b)
    k = len(points)
    if k == 0:
        raise ValueError("closure consistency needs at least one resolved ε_B point")
    if replicas < k + 3:
        raise ValueError(f"{k} points need at least {k + 3} bootstrap replicas, got {replicas}")
    order1 = np.argsort(r1, kind="stable")
    difference, sigma = scan_nonclosure(r1, r2, w, points, order1)
    observed = difference / sigma
    if not np.isfinite(observed).all():
        raise ValueError(f"a closure pull is undefined at ε_B {points}: a region is empty")
    draws = poisson_bootstrap(
        lambda wb: scan_nonclosure(r1, r2, wb, points, order1)[0] / sigma, [w], replicas, seed
    ).reshape(-1, k)
    draws = draws[np.isfinite(draws).all(axis=1)]
    n = len(draws)
    if n < k + 3:
        raise ValueError(f"only {n} of {replicas} bootstrap replicas give every pull")
    corr = np.atleast_2d(np.corrcoef(draws, rowvar=False))
    if not np.isfinite(corr).all():
        raise ValueError(
            f"a closure pull does not vary over the bootstrap replicas at ε_B {points}"
        )
    # the pseudo-inverse and the rank keep χ² defined where two points share their regions
    rank = int(np.linalg.matrix_rank(corr))
    hotelling = (n - rank - 2) / (n - 1)
    chi2 = float(hotelling * observed @ np.linalg.pinv(corr) @ observed)
    largest = float(np.abs(observed).max())
    null = np.random.default_rng(seed).multivariate_normal(np.zeros(k), corr, MAX_PULL_DRAWS)
    return ClosureConsistency(
        eps_b=points,
        chi2=chi2,
        ndof=rank,
        p_value=float(stats.chi2.sf(chi2, rank)),
        max_abs_pull=largest,
        max_pull_p_value=float((np.abs(null).max(axis=1) >= largest).mean()),
        replicas=n,
        correlation=tuple(tuple(float(v) for v in row) for row in corr),
    )
