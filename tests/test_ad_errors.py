"""Error bars on every headline figure of the ``ad`` step, and the list of figures the sample limits.

The oracle for each bootstrap error is the real spread of the figure over independent toys drawn
from a known distribution.
"""

from __future__ import annotations

import numpy as np
import pytest

from offline.ad.disco import distance_correlation
from offline.ad.metrics import auc
from offline.ad.rates import bootstrap_sigma
from offline.ad.score import Scores
from offline.ad.workflow import evaluate_scores

TOYS = 60  # know the toy-to-toy spread to ~9 %


def _toy(n: int, shift: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Correlated Gaussian pair (ρ = 0.3), shifted for signal."""
    a = rng.normal(size=(2, n))
    return a[0] + shift, 0.3 * a[0] + np.sqrt(1 - 0.3**2) * a[1] + shift


def _spread_and_sigma(statistic, draw, bootstrap: int, toys: int = TOYS) -> tuple[float, float]:
    rng = np.random.default_rng(2026)
    values, sigmas = [], []
    for toy in range(toys):
        arrays = draw(rng)
        ones = [np.ones(len(a)) for a in arrays]
        values.append(statistic(*arrays, *ones))
        sigmas.append(
            bootstrap_sigma(
                lambda *w, arrays=arrays: statistic(*arrays, *w), ones, bootstrap, seed=toy
            )
        )
    return float(np.std(values, ddof=1)), float(np.mean(sigmas))


def test_auc_bootstrap_error_is_the_spread_over_toys():
    def draw(rng):
        return rng.normal(size=800), rng.normal(0.5, size=600)

    spread, sigma = _spread_and_sigma(lambda b, s, wb, ws: auc(b, s, wb, ws), draw, 60)
    assert 0.75 < sigma / spread < 1.33, (sigma, spread)


@pytest.mark.slow  # 40 x 21 O(N²) distance correlations
def test_dcor_bootstrap_error_is_the_spread_over_toys():
    def draw(rng):
        return _toy(400, 0.0, rng)

    spread, sigma = _spread_and_sigma(
        lambda x, y, w, _: distance_correlation(x, y, w), draw, 20, toys=40
    )
    assert 0.7 < sigma / spread < 1.4, (sigma, spread)


def _scores(n: int, shift: float, seed: int) -> Scores:
    r1, r2 = _toy(n, shift, np.random.default_rng(seed))
    r1, r2 = np.exp(r1), np.exp(r2)  # positive, like reconstruction errors
    return Scores(r1, r2, np.ones(n), np.zeros(n, dtype=int))


def test_small_sample_names_its_limited_figures_and_every_headline_has_an_error():
    result = evaluate_scores(
        _scores(3000, 0.0, 1),
        {"sig": _scores(500, 1.0, 2)},
        rate_khz=400.0,
        rates_khz=(1.0,),
        bootstrap=20,
        eps_b=(1e-4, 0.01),
    )
    summary = result["summary"]
    assert summary["ad"]["auc_sigma"]["sig"] > 0
    assert summary["ad"]["dcor_background_sigma"] > 0
    # the working rate carries its errors; 1 kHz (eps 2.5e-5) on 3000 events cannot be resolved
    working = summary["rates"]["400"]
    assert working["resolved"] and working["tpr"]["sig"]["sigma"] > 0
    limited = "\n".join(summary["statistically_limited"])
    assert "trigger at 1 kHz: not resolved" in limited
    assert "TPR at FPR 1e-5" in limited
    assert "ABCD closure" in limited  # 1e-4 of 3000 events leaves region A empty
    assert "significance: 3 injected signal events" in limited  # 0.1 % of 3000
