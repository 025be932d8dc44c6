"""ABCD thresholds, closure, significance, and the ROC / rate metrics."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from offline.ad import (
    abcd_scan,
    auc,
    combined_score,
    count_regions,
    inject,
    max_abs_closure_pull,
    rate_to_fpr,
    significance_at,
    thresholds,
    tpr_at_fpr,
    tpr_at_rate,
    trigger_efficiency_at_rate,
)
from offline.ad.abcd import abcd_point


def _independent_background(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.exponential(1.0, n), rng.gamma(2.0, 1.0, n), rng.uniform(0.5, 1.5, n)


def test_thresholds_put_sqrt_eps_above_x_and_eps_in_signal_region():
    r1, r2, w = _independent_background(100_000, 0)
    for eps in (0.005, 0.02, 0.05):
        x, y = thresholds(r1, r2, w, eps)
        frac_x = w[r1 > x].sum() / w.sum()
        frac_a = w[(r1 > x) & (r2 > y)].sum() / w.sum()
        assert frac_x == pytest.approx(np.sqrt(eps), rel=0.01)
        assert frac_a == pytest.approx(eps, rel=0.02)


def test_region_counts_add_up_and_carry_sum_of_squared_weights():
    r1, r2, w = _independent_background(5000, 1)
    c = count_regions(r1, r2, w, 1.0, 2.0)
    assert sum(c.n.values()) == pytest.approx(w.sum())
    assert sum(c.var.values()) == pytest.approx((w**2).sum())
    assert sum(c.raw.values()) == 5000
    assert c.predicted == pytest.approx(c.n["B"] * c.n["C"] / c.n["D"])


def _quadrants(a_weights: list[float], other: int) -> tuple[np.ndarray, ...]:
    """Scores in the four quadrants around (0.5, 0.5): A holds ``a_weights``, B, C, D ``other``
    unit-weight events each."""
    centres = [(0.75, 0.75)] * len(a_weights)
    weights = list(a_weights)
    for centre in ((0.75, 0.25), (0.25, 0.75), (0.25, 0.25)):
        centres += [centre] * other
        weights += [1.0] * other
    r1, r2 = np.array(centres).T
    return r1, r2, np.array(weights)


def test_pull_needs_min_events_effective_not_raw_in_every_region():
    """31 events in A, one of weight 10 and thirty of 0.1, are (Σw)²/Σw² = 1690/1003 effective
    events (exact fractions): the point gets no pull at min_events 20. Thirty-one unit events
    do get one."""
    heavy = [10.0] + [0.1] * 30
    point = abcd_point(*_quadrants(heavy, 40), 0.5, 0.5, 0.01, min_events=20)
    weights = [Fraction(10)] + [Fraction(1, 10)] * 30
    kish = sum(weights) ** 2 / sum(w * w for w in weights)
    assert kish == Fraction(1690, 1003)
    assert point.min_region_events == pytest.approx(float(kish), rel=1e-12)
    assert point.pull is None
    unit = abcd_point(*_quadrants([1.0] * 31, 40), 0.5, 0.5, 0.01, min_events=20)
    assert unit.min_region_events == 31
    assert unit.pull is not None


def test_closure_pull_within_2_sigma_on_independent_background():
    r1, r2, w = _independent_background(200_000, 2)
    scan = abcd_scan(r1, r2, w)
    pulls = scan.loc[scan["sample"] == "background", "pull"]
    assert pulls.notna().all() and len(pulls) == 10
    assert max_abs_closure_pull(scan) <= 2.0


def test_closure_fails_for_correlated_errors():
    rng = np.random.default_rng(3)
    r1 = rng.exponential(1.0, 100_000)
    r2 = 0.5 * r1 + rng.exponential(1.0, 100_000)
    scan = abcd_scan(r1, r2, None, eps_b=(0.01,))
    assert max_abs_closure_pull(scan) > 5


def test_signal_injected_at_large_fraction_is_significant():
    r1, r2, w = _independent_background(50_000, 4)
    rng = np.random.default_rng(5)
    sig = (rng.exponential(1.0, 2000) + 3.0, rng.gamma(2.0, 1.0, 2000) + 5.0, np.ones(2000))
    scan = abcd_scan(r1, r2, w, {"Ato4l": sig}, eps_b=(0.005, 0.01, 0.02), injection=0.01)
    s = significance_at(scan, 0.01)
    assert s["Ato4l"] > 5
    # the signal inflates A far more than the control regions: the prediction stays near background
    row = scan[(scan["sample"] == "Ato4l") & (scan["eps_b"] == 0.01)].iloc[0]
    assert row["n_a"] > 1.5 * row["predicted"]
    json.dumps(s, allow_nan=False)


def test_small_regions_give_no_pull_and_json_none():
    r1, r2, w = _independent_background(3000, 6)
    scan = abcd_scan(r1, r2, w, eps_b=(0.005,), min_events=100)
    assert scan["pull"].isna().all()
    assert max_abs_closure_pull(scan) is None


def test_injection_scales_signal_weight_to_the_fraction():
    b = _independent_background(1000, 7)
    s = (np.ones(10), np.ones(10), np.full(10, 3.0))
    _, _, w = inject(b, s, 0.001)
    assert w[1000:].sum() == pytest.approx(0.001 * b[2].sum())
    with pytest.raises(ValueError, match="fraction"):
        inject(b, s, 1.5)


@pytest.mark.parametrize(
    ("r1", "r2", "w", "match"),
    [
        (np.ones(5), np.ones(4), None, "one length"),
        (np.array([1.0, np.nan]), np.ones(2), None, "NaN"),
        (np.ones(3), np.ones(3), -np.ones(3), "non-negative"),
        (np.zeros(0), np.zeros(0), None, "no events"),
    ],
)
def test_bad_abcd_inputs_are_rejected(r1, r2, w, match):
    with pytest.raises(ValueError, match=match):
        abcd_scan(r1, r2, w)


def test_auc_matches_sklearn_and_combined_score_is_a_cdf():
    rng = np.random.default_rng(8)
    b1, b2 = rng.normal(size=3000), rng.normal(size=3000)
    s1, s2 = rng.normal(1, 1, 1000), rng.normal(1, 1, 1000)
    sb, ss = combined_score(b1, b2, b1, b2), combined_score(s1, s2, b1, b2)
    assert 0 <= sb.min() and sb.max() <= 1
    y = np.r_[np.zeros(3000), np.ones(1000)]
    assert auc(sb, ss) == pytest.approx(roc_auc_score(y, np.r_[sb, ss]))
    assert 0.7 < auc(sb, ss) < 0.95


def test_tpr_at_unresolvable_fpr_is_none_and_resolvable_fpr_is_hit():
    rng = np.random.default_rng(9)
    bkg, sig = rng.normal(size=10_000), rng.normal(2, 1, 2000)
    low = tpr_at_fpr(bkg, sig, 1e-5)
    assert low.tpr is None and not low.resolvable
    wp = tpr_at_fpr(bkg, sig, 0.01)
    assert wp.fpr == pytest.approx(0.01, abs=2e-4)
    assert wp.tpr == pytest.approx((sig > wp.threshold).mean())
    assert rate_to_fpr(100.0) == pytest.approx(2.5e-3)
    assert tpr_at_rate(bkg, sig, 100.0).fpr == pytest.approx(2.5e-3, abs=2e-4)
    with pytest.raises(ValueError, match="rate"):
        rate_to_fpr(50_000.0)


def test_trigger_efficiency_uses_abcd_signal_region_at_rate():
    r1, r2, w = _independent_background(100_000, 10)
    rng = np.random.default_rng(11)
    s1, s2 = rng.exponential(1.0, 5000) + 2, rng.gamma(2.0, 1.0, 5000) + 3
    wp = trigger_efficiency_at_rate(r1, r2, s1, s2, 400.0, w)  # 400 kHz -> eps_B 1 %
    assert wp.fpr == pytest.approx(0.01, rel=0.03)
    x, y = thresholds(r1, r2, w, 0.01)
    assert wp.threshold == x
    assert wp.tpr == pytest.approx(((s1 > x) & (s2 > y)).mean())
    assert trigger_efficiency_at_rate(r1[:1000], r2[:1000], s1, s2, 1.0).tpr is None


def test_closure_pull_is_standard_normal_over_weighted_factorised_toys():
    """The pull's σ must hold the Σw² of all four regions: on toys where R1 and R2 are
    independent and the weights spread over decades (p̂T-biased QCD), the pulls over many toys
    are N(0, 1). The oracle is that distribution, and each toy's counts against plain numpy.
    Leaving out the prediction's error, or using Σw for Σw², widens or narrows it past the cut."""
    rng = np.random.default_rng(12)
    eps = (0.002, 0.01, 0.05)
    pulls = []
    for _ in range(150):
        r1, r2 = rng.exponential(1.0, 20_000), rng.gamma(2.0, 1.0, 20_000)
        biased = rng.random(20_000) < 0.3
        w = np.where(biased, np.exp(-r1) * rng.lognormal(0.0, 1.5, 20_000), 1.0)
        scan = abcd_scan(r1, r2, w, eps_b=eps, min_events=20)
        pulls.append(scan["pull"].to_numpy())
        row = scan.iloc[1]
        a = (r1 > row["x"]) & (r2 > row["y"])
        assert row["n_a"] == pytest.approx(w[a].sum())
        c = count_regions(r1, r2, w, row["x"], row["y"])
        assert c.var["A"] == pytest.approx((w[a] ** 2).sum())
    pulls = np.array(pulls)
    # a point goes without a pull only where one heavy event leaves a region under 20
    # effective events
    assert np.isfinite(pulls).mean() > 0.97
    pulls = pulls[np.isfinite(pulls)]
    assert abs(pulls.mean()) < 0.3
    assert 0.88 < pulls.std() < 1.12


def test_closure_pulls_depend_only_on_the_scores_ranks():
    """Thresholds are quantiles of the sample, so strictly increasing maps of R1 and R2 leave
    every region and pull unchanged: factorised toys of uniform scores give the pulls' law for
    any independent continuous scores (benchmarks/closure_null_toys.py relies on it)."""
    r1, r2, w = _independent_background(50_000, 14)
    eps = (0.001, 0.01, 0.05)
    plain = abcd_scan(r1, r2, w, eps_b=eps, min_events=20)
    mapped = abcd_scan(np.exp(r1), r2**3 + 2.0, w, eps_b=eps, min_events=20)
    assert plain["pull"].notna().all()
    np.testing.assert_array_equal(plain["pull"].to_numpy(), mapped["pull"].to_numpy())
