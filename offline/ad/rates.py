"""Operating points at target L1 rates, with statistical errors, on weighted background.

A rate r [kHz] of the 40 MHz bunch crossings is the background efficiency ε_B = r / 40 000:
1, 5 and 10 kHz are ε_B = 2.5·10⁻⁵, 1.25·10⁻⁴ and 2.5·10⁻⁴. The trigger is the ABCD
signal region A (R1 > x and R2 > y) with (x, y) set on weighted background by
:func:`offline.ad.abcd.thresholds`, as in the firmware.

Errors (all statistical, from the finite weighted samples):

- thresholds: **Poisson bootstrap** — every background event's weight is multiplied by
  an independent Poisson(1) count and the thresholds are set again; σ is the standard
  deviation over ``bootstrap`` replicas (seeded). It needs no density estimate, works for
  both thresholds at once and for any weights (p̂T-biased QCD included);
- efficiencies (background kept, TPR per signal): the weighted binomial error
  σ²(ε) = [(1 − ε)² Σ_pass w² + ε² Σ_fail w²] / (Σ w)² (the first-order propagation of
  independent Poisson fluctuations of every event; for unit weights it is ε(1 − ε)/N).

A point is *resolved* when the background in region A has a Kish effective sample
size (Σw)²/Σw² of at least ``min_tail_ess``; otherwise it reports how many events of
this weight mix the sample would need (assuming the tail keeps the whole sample's
ratio of effective to raw events).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offline.ad.abcd import check_scores, region_masks, thresholds_presorted
from offline.ad.defaults import DEFAULT_BOOTSTRAP, DEFAULT_RATES_KHZ
from offline.ad.metrics import fpr_to_rate, rate_to_fpr
from offline.events.io import effective_events

MIN_TAIL_ESS = 10.0


@dataclass(frozen=True)
class Efficiency:
    """A weighted efficiency and its weighted binomial error."""

    value: float
    sigma: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "sigma": self.sigma}


def weighted_efficiency(passed: np.ndarray, weights: np.ndarray | None = None) -> Efficiency:
    """Σ_pass w / Σ w with σ² = [(1 − ε)² Σ_pass w² + ε² Σ_fail w²] / (Σ w)²."""
    passed = np.asarray(passed, dtype=bool)
    w = np.ones(len(passed)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if len(w) == 0 or total <= 0:
        raise ValueError("efficiency needs events with positive total weight")
    eff = float(w[passed].sum() / total)
    var = ((1 - eff) ** 2 * (w[passed] ** 2).sum() + eff**2 * (w[~passed] ** 2).sum()) / total**2
    return Efficiency(eff, float(math.sqrt(var)))


def poisson_bootstrap(
    statistic: Callable[..., Any],
    weights: Sequence[np.ndarray],
    replicas: int,
    seed: int = 0,
) -> np.ndarray:
    """Values of ``statistic(*reweighted)`` over ``replicas`` Poisson-bootstrap replicas: every
    event's weight in each of ``weights`` times an independent Poisson(1) count. Replicas where the
    statistic is undefined (raises ValueError, e.g. too few events left) are dropped."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(replicas):
        reweighted = [w * rng.poisson(1.0, len(w)) for w in weights]
        try:
            values.append(statistic(*reweighted))
        except ValueError:
            continue
    return np.asarray(values, dtype=np.float64)


def bootstrap_sigma(
    statistic: Callable[..., float], weights: Sequence[np.ndarray], replicas: int, seed: int = 0
) -> float | None:
    """Standard deviation of a scalar ``statistic`` over :func:`poisson_bootstrap` replicas (None
    when fewer than 2 replicas are defined)."""
    values = poisson_bootstrap(statistic, weights, replicas, seed)
    return float(values.std(ddof=1)) if len(values) >= 2 else None


@dataclass(frozen=True)
class RatePoint:
    """The trigger at one target rate: thresholds with bootstrap errors, kept background, TPR per signal."""

    rate_khz: float
    eps_b: float
    resolved: bool
    tail_ess: float
    threshold: tuple[float, float] | None = None
    threshold_sigma: tuple[float, float] | None = None
    background: Efficiency | None = None
    tpr: dict[str, Efficiency] = field(default_factory=dict)
    needs_events: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: thresholds as {r1, r2}; an unresolved point says how many events it needs."""
        out: dict[str, Any] = {
            "eps_b": self.eps_b,
            "resolved": self.resolved,
            "tail_ess": self.tail_ess,
        }
        if not self.resolved:
            out["note"] = f"not resolved: needs {self.needs_events} events"
            out["needs_events"] = self.needs_events
            return out
        assert (
            self.threshold is not None
            and self.threshold_sigma is not None
            and self.background is not None
        )
        out["threshold"] = {"r1": self.threshold[0], "r2": self.threshold[1]}
        out["threshold_sigma"] = {"r1": self.threshold_sigma[0], "r2": self.threshold_sigma[1]}
        out["rate_khz_achieved"] = {
            "value": fpr_to_rate(self.background.value),
            "sigma": fpr_to_rate(self.background.sigma),
        }
        out["tpr"] = {k: v.to_dict() for k, v in self.tpr.items()}
        return out


def operating_point(
    bkg: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    signals: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None,
    eps_b: float,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    min_tail_ess: float = MIN_TAIL_ESS,
) -> RatePoint:
    """The trigger at background efficiency ``eps_b`` (see the module docstring for the errors)."""
    if not 0 < eps_b < 1:
        raise ValueError(f"background efficiency must be in (0, 1), got {eps_b}")
    if bootstrap < 2:
        raise ValueError(f"bootstrap needs at least 2 replicas, got {bootstrap}")
    r1, r2, w = check_scores(*bkg)
    rate = fpr_to_rate(eps_b)
    order1 = np.argsort(r1, kind="stable")
    try:
        x, y = thresholds_presorted(r1, r2, w, eps_b, order1)
        tail = region_masks(r1, r2, x, y)["A"]
        tail_ess = effective_events(w[tail]) if tail.any() else 0.0
    except ValueError:  # too few events above the R1 threshold
        tail_ess = 0.0
    if tail_ess < min_tail_ess:
        per_event = eps_b * effective_events(w) / len(w)  # effective tail events per raw event
        needs = (
            math.ceil(min_tail_ess / per_event)
            if tail_ess <= 0
            else math.ceil(len(w) * min_tail_ess / tail_ess)
        )
        return RatePoint(rate, eps_b, False, tail_ess, needs_events=needs)
    replicas = poisson_bootstrap(
        lambda wb: thresholds_presorted(r1, r2, wb, eps_b, order1), [w], bootstrap, seed
    )
    if len(replicas) < 2:
        return RatePoint(
            rate, eps_b, False, tail_ess, needs_events=math.ceil(len(w) * min_tail_ess / tail_ess)
        )
    sigma = np.asarray(replicas).std(axis=0, ddof=1)
    tpr = {}
    for name, (s1, s2, sw) in (signals or {}).items():
        s1, s2, sw = check_scores(s1, s2, sw)
        tpr[name] = weighted_efficiency(region_masks(s1, s2, x, y)["A"], sw)
    return RatePoint(
        rate,
        eps_b,
        True,
        tail_ess,
        (x, y),
        (float(sigma[0]), float(sigma[1])),
        weighted_efficiency(tail, w),
        tpr,
    )


def rate_points(
    bkg: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    signals: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None,
    rates_khz: tuple[float, ...] = DEFAULT_RATES_KHZ,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    min_tail_ess: float = MIN_TAIL_ESS,
) -> dict[float, RatePoint]:
    """:func:`operating_point` at each rate [kHz of 40 MHz]."""
    return {
        r: operating_point(bkg, signals, rate_to_fpr(r), bootstrap, seed, min_tail_ess)
        for r in rates_khz
    }
