"""ABCD background estimate from the two decorrelated reconstruction errors.

Regions (Mikuni, Nachman, Shih, arXiv 2111.06417): A = (R1 > x, R2 > y) is the
signal region — the trigger fires there — and B = (>, <), C = (<, >), D = (<, <).
If R1 and R2 are independent on background, N_A = N_B·N_C/N_D.

Thresholds for a target background efficiency ε_B (as in the paper): x is the
R1 threshold keeping √ε_B of the background, then y is chosen among events with
R1 > x so that the signal region keeps ε_B in total. Thresholds are set on
background alone — the trigger is configured by its rate — and then applied to
data (background plus injected signal).

Uncertainties are statistical with weights: σ²(N_X) = Σ w² in region X, and the
prediction's relative variance is the sum of those of N_B, N_C, N_D. A point gets a pull only
where every region holds enough *effective* events, (Σw)²/Σw² (Kish): a region of many light
events and one heavy one counts as about one event, and its pull would not be Gaussian. The
closure pull and the significance both divide by σ = sqrt(σ²(N_A) + σ²(pred)).
(The paper quotes (N_A − pred)/√N_A, which leaves out the prediction's own
uncertainty; ours is the more conservative of the two.)
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from offline.ad.defaults import DEFAULT_EPS_B


def check_scores(
    r1: np.ndarray, r2: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    w = np.ones_like(r1) if w is None else np.asarray(w, dtype=np.float64)
    if r1.ndim != 1 or r1.shape != r2.shape or w.shape != r1.shape:
        raise ValueError(
            f"R1, R2 and weights must be 1-d of one length, got {r1.shape}, {r2.shape}, {w.shape}"
        )
    if len(r1) == 0:
        raise ValueError("no events for ABCD")
    if not (np.isfinite(r1).all() and np.isfinite(r2).all() and np.isfinite(w).all()):
        raise ValueError("ABCD inputs hold NaN or inf")
    if (w < 0).any():
        raise ValueError("ABCD needs non-negative weights")
    return r1, r2, w


def upper_threshold(
    values: np.ndarray, weights: np.ndarray, efficiency: float, order: np.ndarray | None = None
) -> float:
    """Threshold t such that the weighted fraction of ``values > t`` is as close as possible to ``efficiency``.

    ``order`` (``np.argsort(values, kind="stable")``) may be passed to skip the sort.
    """
    if not 0 < efficiency < 1:
        raise ValueError(f"efficiency must be in (0, 1), got {efficiency}")
    order = np.argsort(values, kind="stable") if order is None else order
    v, w = values[order], weights[order]
    above = 1.0 - np.cumsum(w) / w.sum()  # fraction strictly above v[i] (no ties)
    i = int(np.argmin(np.abs(above - efficiency)))
    return float(v[i])


def thresholds(
    r1: np.ndarray, r2: np.ndarray, weights: np.ndarray | None, eps_b: float
) -> tuple[float, float]:
    """(x, y) on background: x keeps √ε_B, then y among R1 > x so that A keeps ε_B."""
    r1, r2, w = check_scores(r1, r2, weights)
    return thresholds_presorted(r1, r2, w, eps_b, np.argsort(r1, kind="stable"))


def thresholds_presorted(
    r1: np.ndarray, r2: np.ndarray, w: np.ndarray, eps_b: float, order1: np.ndarray
) -> tuple[float, float]:
    """:func:`thresholds` on checked arrays with R1's sort order given (bootstrap replicas reuse it)."""
    root = math.sqrt(eps_b)
    x = upper_threshold(r1, w, root, order1)
    sel = r1 > x
    if sel.sum() < 2:
        raise ValueError(f"too few background events above the R1 threshold for eps_B = {eps_b}")
    y = upper_threshold(r2[sel], w[sel], min(eps_b * w.sum() / w[sel].sum(), 0.999999))
    return x, y


@dataclass(frozen=True)
class RegionCounts:
    """Weighted counts N and Σw² of the four regions."""

    n: dict[str, float]
    var: dict[str, float]
    raw: dict[str, int]

    @property
    def effective(self) -> dict[str, float]:
        """Kish effective events (Σw)²/Σw² per region (0 for an empty one)."""
        return {k: self.n[k] ** 2 / v if v > 0 else 0.0 for k, v in self.var.items()}

    @property
    def predicted(self) -> float:
        return self.n["B"] * self.n["C"] / self.n["D"] if self.n["D"] > 0 else math.nan

    @property
    def predicted_sigma(self) -> float:
        if min(self.n["B"], self.n["C"], self.n["D"]) <= 0:
            return math.nan
        rel = sum(self.var[k] / self.n[k] ** 2 for k in "BCD")
        return self.predicted * math.sqrt(rel)

    @property
    def sigma(self) -> float:
        """σ of N_A − predicted: observed and predicted statistical errors in quadrature."""
        return math.sqrt(self.var["A"] + self.predicted_sigma**2)

    @property
    def pull(self) -> float:
        """(N_A − N_B·N_C/N_D)/σ: the closure pull on background, the significance with signal."""
        s = self.sigma
        return (self.n["A"] - self.predicted) / s if s > 0 else math.nan


def region_masks(r1: np.ndarray, r2: np.ndarray, x: float, y: float) -> dict[str, np.ndarray]:
    """A = R1 > x & R2 > y, B = R1 > x & R2 <= y, C = R1 <= x & R2 > y, D = the rest.

    The one definition of the regions: offline, in the emulator (on score mantissas) and in
    the traced firmware logic (any arrays with ``>``, ``&`` and ``~`` do).
    """
    hi1, hi2 = r1 > x, r2 > y
    return {"A": hi1 & hi2, "B": hi1 & ~hi2, "C": ~hi1 & hi2, "D": ~hi1 & ~hi2}


def fire_mask(masks: Mapping[str, np.ndarray], fire_on: Sequence[str]) -> np.ndarray:
    """The trigger bit: OR of the ``region_masks`` of the regions in ``fire_on`` (not empty)."""
    if not fire_on:
        raise ValueError("fire_on must name at least one ABCD region")
    return functools.reduce(operator.or_, (masks[r] for r in fire_on))


def count_regions(
    r1: np.ndarray, r2: np.ndarray, weights: np.ndarray | None, x: float, y: float
) -> RegionCounts:
    r1, r2, w = check_scores(r1, r2, weights)
    masks = region_masks(r1, r2, x, y)
    return RegionCounts(
        {k: float(w[m].sum()) for k, m in masks.items()},
        {k: float((w[m] ** 2).sum()) for k, m in masks.items()},
        {k: int(m.sum()) for k, m in masks.items()},
    )


@dataclass(frozen=True)
class ABCDPoint:
    """One ε_B point: thresholds, counts, prediction and pull (None where a region is too small)."""

    eps_b: float
    x: float
    y: float
    n_a: float
    n_b: float
    n_c: float
    n_d: float
    predicted: float
    predicted_sigma: float
    pull: float | None
    min_region_events: float  # effective events of the smallest region


def abcd_point(
    r1: np.ndarray,
    r2: np.ndarray,
    weights: np.ndarray | None,
    x: float,
    y: float,
    eps_b: float,
    min_events: int,
) -> ABCDPoint:
    c = count_regions(r1, r2, weights, x, y)
    smallest = min(c.effective.values())
    pull = c.pull if smallest >= min_events and math.isfinite(c.pull) else None
    return ABCDPoint(
        eps_b,
        x,
        y,
        c.n["A"],
        c.n["B"],
        c.n["C"],
        c.n["D"],
        c.predicted,
        c.predicted_sigma,
        pull,
        smallest,
    )


def inject(
    bkg: tuple[np.ndarray, np.ndarray, np.ndarray],
    sig: tuple[np.ndarray, np.ndarray, np.ndarray],
    fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background plus every signal event, signal weights scaled to ``fraction`` of the background weight.

    Using all signal events at reduced weight gives the expected (Asimov-like) signal
    rather than one random draw of a handful of events.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"injection fraction must be in (0, 1), got {fraction}")
    b1, b2, bw = check_scores(*bkg)
    s1, s2, sw = check_scores(*sig)
    sw = sw * (fraction * bw.sum() / sw.sum())
    return np.concatenate([b1, s1]), np.concatenate([b2, s2]), np.concatenate([bw, sw])


def abcd_scan(
    bkg_r1: np.ndarray,
    bkg_r2: np.ndarray,
    bkg_w: np.ndarray | None = None,
    signals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None,
    eps_b: tuple[float, ...] = DEFAULT_EPS_B,
    injection: float = 1e-3,
    min_events: int = 100,
) -> pd.DataFrame:
    """Closure on background and significance with each signal injected, over ε_B.

    Returns one row per (ε_B, sample): sample ``background`` gives the closure pull, each
    signal name its significance at ``injection``. ``pull`` is NaN where a region holds fewer
    than ``min_events`` effective events (the paper, unweighted, skips regions below 100).
    """
    r1, r2, w = check_scores(bkg_r1, bkg_r2, bkg_w)
    rows = []
    for eps in eps_b:
        x, y = thresholds(r1, r2, w, eps)
        rows.append(
            {"sample": "background", **asdict(abcd_point(r1, r2, w, x, y, eps, min_events))}
        )
        for name, (s1, s2, sw) in (signals or {}).items():
            d1, d2, dw = inject(
                (r1, r2, w), (s1, s2, np.ones_like(np.asarray(s1)) if sw is None else sw), injection
            )
            point = abcd_point(d1, d2, dw, x, y, eps, min_events)
            rows.append({"sample": name, **asdict(point)})
    frame = pd.DataFrame(rows)
    frame["pull"] = frame["pull"].astype(float)
    return frame


def max_abs_closure_pull(scan: pd.DataFrame) -> float | None:
    """Largest |closure pull| on background over the scan (None if no point was usable)."""
    pulls = scan.loc[scan["sample"] == "background", "pull"].dropna()
    return None if pulls.empty else float(pulls.abs().max())


def significance_at(scan: pd.DataFrame, eps_b: float) -> dict[str, float | None]:
    """Significance of each injected signal at the scan point closest to ``eps_b``."""
    points = np.array(sorted(set(scan["eps_b"])))
    nearest = points[np.argmin(np.abs(np.log(points / eps_b)))]
    out: dict[str, float | None] = {}
    for _, row in scan[(scan["eps_b"] == nearest) & (scan["sample"] != "background")].iterrows():
        out[row["sample"]] = None if not np.isfinite(row["pull"]) else float(row["pull"])
    return out
