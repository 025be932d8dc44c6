"""Figures of merit: ROC/AUC per signal, TPR at a fixed FPR or L1 rate, decorrelation.

Which score makes the ROC? The trigger fires in the ABCD signal region
(R1 > x and R2 > y). The one-number score that reproduces that family of
rectangular cuts is ``s = min(F1(R1), F2(R2))`` with Fi the background CDF of Ri
(:func:`combined_score`): a cut s > 1 − √ε_B keeps R1 and R2 both above their
√ε_B quantiles, which is the ABCD choice when R1 and R2 are independent. The ROC of s
is therefore the trigger's efficiency curve; ROCs of R1 and R2 alone are reported too.

Rates: an L1 trigger sees 40 MHz of bunch crossings, so a rate r [kHz] is the
background efficiency (FPR) r / 40 000. The default, 400 kHz (FPR 1 %), is the
ABCD working point ε_B = 1 % in the middle of the paper's 0.5–5 % scan; it is
more than an anomaly trigger gets in CMS (AXOL1TL runs at a few kHz of the
~100 kHz Run-3 L1 budget) but it is resolvable on the ~10³ held-out background
events of a default run, where 100 kHz (FPR 2.5·10⁻³) is not. Targets below the
resolution of the sample — fewer than ``min_background`` effective (Kish)
background events beyond the threshold, e.g. FPR 10⁻⁵ with 10⁴ events — give
``None`` rather than an extrapolation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from offline.ad.abcd import count_regions, thresholds
from offline.ad.defaults import DEFAULT_RATE_KHZ
from offline.events.io import effective_events

BUNCH_CROSSING_KHZ = 40_000.0


def rate_to_fpr(rate_khz: float) -> float:
    """Background efficiency giving ``rate_khz`` at the 40 MHz bunch-crossing rate."""
    if not 0 < rate_khz < BUNCH_CROSSING_KHZ:
        raise ValueError(f"rate must be in (0, {BUNCH_CROSSING_KHZ:.0f}) kHz, got {rate_khz}")
    return rate_khz / BUNCH_CROSSING_KHZ


def fpr_to_rate(fpr: float) -> float:
    return fpr * BUNCH_CROSSING_KHZ


def weights_or_ones(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``weights`` as float64, or unit weights for each of ``values`` when None."""
    return np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)


def weighted_cdf(
    reference: np.ndarray, weights: np.ndarray | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The weighted empirical CDF of ``reference`` as a function (fraction of weight <= v)."""
    ref = np.asarray(reference, dtype=np.float64)
    w = weights_or_ones(ref, weights)
    order = np.argsort(ref, kind="stable")
    sorted_ref = ref[order]
    cum = np.concatenate([[0.0], np.cumsum(w[order]) / w.sum()])

    def cdf(values: np.ndarray) -> np.ndarray:
        return cum[np.searchsorted(sorted_ref, np.asarray(values, dtype=np.float64), side="right")]

    return cdf


def combined_score(
    r1: np.ndarray,
    r2: np.ndarray,
    bkg_r1: np.ndarray,
    bkg_r2: np.ndarray,
    bkg_w: np.ndarray | None = None,
) -> np.ndarray:
    """s = min(F1(R1), F2(R2)), Fi the background CDFs (see module docstring)."""
    return np.minimum(weighted_cdf(bkg_r1, bkg_w)(r1), weighted_cdf(bkg_r2, bkg_w)(r2))


def _labelled(
    bkg: np.ndarray, sig: np.ndarray, bkg_w: np.ndarray | None, sig_w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bkg = np.asarray(bkg, dtype=np.float64)
    sig = np.asarray(sig, dtype=np.float64)
    if len(bkg) == 0 or len(sig) == 0:
        raise ValueError("ROC needs background and signal events")
    if not (np.isfinite(bkg).all() and np.isfinite(sig).all()):
        raise ValueError("ROC scores hold NaN or inf")
    y = np.concatenate([np.zeros(len(bkg)), np.ones(len(sig))])
    s = np.concatenate([bkg, sig])
    w = np.concatenate([weights_or_ones(bkg, bkg_w), weights_or_ones(sig, sig_w)])
    return y, s, w


def auc(
    bkg: np.ndarray,
    sig: np.ndarray,
    bkg_w: np.ndarray | None = None,
    sig_w: np.ndarray | None = None,
) -> float:
    """Weighted ROC AUC (scikit-learn), signal = positive class."""
    y, s, w = _labelled(bkg, sig, bkg_w, sig_w)
    return float(roc_auc_score(y, s, sample_weight=w))


def roc(
    bkg: np.ndarray,
    sig: np.ndarray,
    bkg_w: np.ndarray | None = None,
    sig_w: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with weights (scikit-learn)."""
    y, s, w = _labelled(bkg, sig, bkg_w, sig_w)
    return roc_curve(y, s, sample_weight=w, drop_intermediate=False)


@dataclass(frozen=True)
class WorkingPoint:
    """A threshold chosen on background for a target FPR, and the signal efficiency there."""

    fpr_target: float
    rate_khz: float
    threshold: float | None
    fpr: float | None
    tpr: float | None
    resolvable: bool


def tpr_at_fpr(
    bkg: np.ndarray,
    sig: np.ndarray,
    fpr: float,
    bkg_w: np.ndarray | None = None,
    sig_w: np.ndarray | None = None,
    min_background: float = 5.0,
) -> WorkingPoint:
    """Signal efficiency of ``score > t`` with t set on background for ``fpr``.

    ``None`` (``resolvable=False``) when fewer than ``min_background`` effective background events
    would pass: the sample cannot resolve that FPR.
    """
    if not 0 < fpr < 1:
        raise ValueError(f"FPR must be in (0, 1), got {fpr}")
    bkg = np.asarray(bkg, dtype=np.float64)
    bw = weights_or_ones(bkg, bkg_w)
    rate = fpr_to_rate(fpr)
    if fpr * effective_events(bw) < min_background:
        return WorkingPoint(fpr, rate, None, None, None, False)
    order = np.argsort(bkg)[::-1]
    cum = np.cumsum(bw[order]) / bw.sum()  # fraction of background at or above each value
    k = int(np.searchsorted(cum, fpr, side="right"))  # events strictly above the threshold
    k = max(k, 1)
    t = float(bkg[order][k - 1]) if k >= len(bkg) else float(bkg[order][k])
    achieved = float(bw[bkg > t].sum() / bw.sum())
    sig = np.asarray(sig, dtype=np.float64)
    sw = weights_or_ones(sig, sig_w)
    return WorkingPoint(fpr, rate, t, achieved, float(sw[sig > t].sum() / sw.sum()), True)


def tpr_at_rate(
    bkg: np.ndarray,
    sig: np.ndarray,
    rate_khz: float = DEFAULT_RATE_KHZ,
    bkg_w: np.ndarray | None = None,
    sig_w: np.ndarray | None = None,
    min_background: float = 5.0,
) -> WorkingPoint:
    """:func:`tpr_at_fpr` at the FPR giving ``rate_khz`` at 40 MHz."""
    return tpr_at_fpr(bkg, sig, rate_to_fpr(rate_khz), bkg_w, sig_w, min_background)


def trigger_efficiency_at_rate(
    bkg_r1: np.ndarray,
    bkg_r2: np.ndarray,
    sig_r1: np.ndarray,
    sig_r2: np.ndarray,
    rate_khz: float = DEFAULT_RATE_KHZ,
    bkg_w: np.ndarray | None = None,
    sig_w: np.ndarray | None = None,
    min_background: float = 5.0,
) -> WorkingPoint:
    """Signal efficiency of the trigger — the ABCD signal region with thresholds set on background
    for ``rate_khz`` — as a :class:`WorkingPoint` (``threshold`` holds x; use
    :func:`offline.ad.abcd.thresholds` for both). This is the float-vs-quantized comparison figure.
    """
    fpr = rate_to_fpr(rate_khz)
    bw = weights_or_ones(np.asarray(bkg_r1), bkg_w)
    if fpr * effective_events(bw) < min_background:
        return WorkingPoint(fpr, rate_khz, None, None, None, False)
    x, y = thresholds(bkg_r1, bkg_r2, bw, fpr)
    b = count_regions(bkg_r1, bkg_r2, bw, x, y)
    s = count_regions(sig_r1, sig_r2, sig_w, x, y)
    return WorkingPoint(
        fpr, rate_khz, x, b.n["A"] / sum(b.n.values()), s.n["A"] / sum(s.n.values()), True
    )


def none_if_nan(value: float | None) -> float | None:
    """JSON-strict: NaN/inf become None."""
    return None if value is None or not math.isfinite(value) else float(value)
