"""Thresholds at target rates and their errors: toys with known answers and coverage over repetitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from offline.ad.abcd import thresholds
from offline.ad.rates import operating_point, rate_points, weighted_efficiency


def _biased_exponentials(n: int, rng: np.random.Generator):
    """R1, R2 independent Exp(1) after weighting: drawn from Exp(mean 2), weight 2 exp(-R/2) each.

    Like p̂T-biased QCD: the tail is over-populated, and the weights undo it.
    """
    r = rng.exponential(2.0, (2, n))
    w = np.prod(2.0 * np.exp(-r / 2), axis=0)
    return r[0], r[1], w


def test_threshold_value_and_bootstrap_error_cover_the_known_answer_over_toys():
    eps = 2.5e-4  # 10 kHz of 40 MHz
    truth = 0.5 * math.log(
        1 / eps
    )  # both thresholds: P(R1 > x) = sqrt(eps), then P(R2 > y) = sqrt(eps)
    rng = np.random.default_rng(2026)
    values, sigmas = [], []
    for toy in range(80):
        point = operating_point(
            _biased_exponentials(20_000, rng), None, eps, bootstrap=60, seed=toy
        )
        assert point.resolved
        values.append(point.threshold)
        sigmas.append(point.threshold_sigma)
    values, sigmas = np.array(values), np.array(sigmas)
    spread = values.std(axis=0, ddof=1)
    # unbiased: the mean over toys sits on the known answer within its own error (4 sigma)
    assert np.all(np.abs(values.mean(axis=0) - truth) < 4 * spread / math.sqrt(len(values)))
    # the bootstrap error is the real toy-to-toy spread (80 toys know the spread to ~8 %)
    assert np.all((sigmas.mean(axis=0) / spread > 0.75) & (sigmas.mean(axis=0) / spread < 1.33))
    coverage = (np.abs(values - truth) < sigmas).mean(axis=0)
    assert np.all((coverage > 0.5) & (coverage < 0.85)), coverage  # 68 % expected; 80 toys: ±5 %


def test_bootstrap_point_uses_the_same_thresholds_as_abcd():
    r1, r2, w = _biased_exponentials(5000, np.random.default_rng(1))
    point = operating_point((r1, r2, w), None, 0.01, bootstrap=10)
    assert point.threshold == thresholds(r1, r2, w, 0.01)
    assert point.background.value == pytest.approx(0.01, rel=0.1)


def test_weighted_efficiency_error_is_binomial_for_unit_weights_and_covers_with_weights():
    passed = np.arange(1000) < 300
    eff = weighted_efficiency(passed)
    assert eff.value == 0.3 and eff.sigma == pytest.approx(math.sqrt(0.3 * 0.7 / 1000), rel=1e-12)
    rng = np.random.default_rng(5)
    pulls = []
    for _ in range(400):
        w = rng.gamma(0.5, 2.0, 500)  # broad weights, independent of passing: true efficiency 0.3
        e = weighted_efficiency(rng.uniform(size=500) < 0.3, w)
        pulls.append((e.value - 0.3) / e.sigma)
    assert abs(np.mean(pulls)) < 0.2 and 0.88 < np.std(pulls) < 1.12


def test_tpr_per_signal_at_each_rate_and_unresolved_rates_say_what_they_need():
    rng = np.random.default_rng(7)
    bkg = rng.exponential(1.0, (2, 50_000))
    sig = rng.exponential(4.0, (2, 2_000))
    points = rate_points(
        (bkg[0], bkg[1], None), {"wide": (sig[0], sig[1], None)}, (0.4, 400.0), bootstrap=20
    )
    low, high = points[0.4], points[400.0]
    # FPR 1e-5 on 5e4 unit-weight events: half an event in the tail
    assert not low.resolved and low.to_dict()["note"].startswith("not resolved: needs")
    assert low.needs_events == pytest.approx(10 / 1e-5, rel=0.01)
    assert high.resolved and high.tail_ess == pytest.approx(500, rel=0.15)
    x, y = high.threshold
    truth = float(np.mean((sig[0] > x) & (sig[1] > y)))
    assert high.tpr["wide"].value == truth
    assert high.tpr["wide"].sigma == pytest.approx(math.sqrt(truth * (1 - truth) / 2000), rel=1e-9)
    payload = high.to_dict()
    assert (
        set(payload["tpr"]["wide"]) == {"value", "sigma"} and payload["threshold_sigma"]["r1"] > 0
    )


def test_evaluation_summary_gains_rates_with_errors_and_the_report_table(tmp_path):
    from l1ad.report import rates_frame
    from offline.ad.score import Scores
    from offline.ad.workflow import evaluate_scores

    rng = np.random.default_rng(3)
    n, m = 100_000, 3000

    def scores(scale, k):
        r = rng.exponential(scale, (2, k))
        return Scores(r[0], r[1], np.ones(k), np.zeros(k, np.int32))

    summary = evaluate_scores(
        scores(1.0, n), {"toy": scores(3.0, m)}, bootstrap=20, dcor_max_events=2000
    )["summary"]
    rates = summary["rates"]
    assert set(rates) == {"1", "5", "10", "400"}  # the target rates and the working rate
    assert not rates["1"]["resolved"] and rates["1"]["tail_ess"] < 10  # 2.5 events expected beyond
    ten = rates["10"]
    assert ten["resolved"] and ten["tail_ess"] == pytest.approx(25, rel=0.4)
    assert ten["threshold"]["r1"] == pytest.approx(
        0.5 * math.log(4000), abs=5 * ten["threshold_sigma"]["r1"]
    )
    assert ten["tpr"]["toy"]["sigma"] > 0 and ten["rate_khz_achieved"]["value"] == pytest.approx(
        10, rel=0.3
    )
    assert not summary["fpr_1e-5"]["resolved"] and "needs" in summary["fpr_1e-5"]["note"]
    table = rates_frame(rates)
    assert "±" in table.loc["10", "TPR toy"] and table.loc["1", "x (R1)"].startswith(
        "not resolved: needs"
    )
