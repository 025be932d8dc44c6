"""The closure scan's global χ² and the largest pull's global p-value (offline.ad.consistency)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from offline.ad import abcd_scan
from offline.ad.consistency import closure_consistency

EPS_B = (0.005, 0.01, 0.02, 0.05)


def _factorised_toy(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Independent R1, R2; 30 % of events with weights spread over decades (p̂T-biased QCD)."""
    r1, r2 = rng.exponential(1.0, n), rng.gamma(2.0, 1.0, n)
    biased = rng.random(n) < 0.3
    return r1, r2, np.where(biased, np.exp(-r1) * rng.lognormal(0.0, 1.0, n), 1.0)


def test_closure_chi2_and_largest_pull_p_values_are_uniform_on_factorised_toys():
    """With R1 ⟂ R2 the χ² of the correlated pulls follows χ²(k) and both p-values are uniform.
    The oracles are scipy's χ²(k) and the uniform distribution."""
    rng = np.random.default_rng(5)
    results = [
        closure_consistency(*_factorised_toy(8_000, rng), EPS_B, replicas=60, seed=toy)
        for toy in range(36)
    ]
    chi2 = np.array([r.chi2 for r in results])
    k = len(EPS_B)
    assert {r.ndof for r in results} == {k}
    assert abs(chi2.mean() - k) < 3 * np.sqrt(2 * k / len(chi2))
    for p in ([r.p_value for r in results], [r.max_pull_p_value for r in results]):
        assert stats.kstest(p, "uniform").pvalue > 0.01
    # a p-value agrees with its own χ² under scipy's χ²(k)
    assert results[0].p_value == pytest.approx(stats.chi2.sf(results[0].chi2, k))


def test_bootstrap_correlation_of_the_pulls_matches_independent_samples():
    """The pulls' bootstrap correlation (mean over 8 samples) against their correlation
    (abcd_scan) over 200 independent samples: the nested regions correlate neighbouring points
    by 0.5-0.8, and a diagonal matrix is far off."""
    rng = np.random.default_rng(9)
    toys = np.array(
        [
            abcd_scan(*_factorised_toy(8_000, rng), eps_b=EPS_B, min_events=20)["pull"]
            for _ in range(200)
        ]
    )
    truth = np.corrcoef(toys, rowvar=False)
    bootstrap = np.mean(
        [
            closure_consistency(*_factorised_toy(8_000, rng), EPS_B, 100, seed).correlation
            for seed in range(8)
        ],
        axis=0,
    )
    assert np.abs(bootstrap - truth).max() < 0.15
    assert truth[0, 1] > 0.5 and truth[1, 2] > 0.5


def test_correlated_scores_fail_the_global_closure():
    rng = np.random.default_rng(6)
    r1 = rng.exponential(1.0, 20_000)
    r2 = r1 + 2.0 * rng.exponential(1.0, 20_000)
    result = closure_consistency(r1, r2, None, EPS_B, replicas=40)
    assert result.p_value < 1e-6 and result.max_pull_p_value < 1e-3


@pytest.mark.parametrize(
    ("eps_b", "replicas", "message"),
    [((), 60, "at least one resolved"), (EPS_B, 6, "at least 7 bootstrap replicas")],
)
def test_closure_consistency_refuses_what_it_cannot_compute(eps_b, replicas, message):
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match=message):
        closure_consistency(*_factorised_toy(2_000, rng), eps_b, replicas=replicas)


def test_evaluation_reads_the_scan_as_a_whole_and_the_report_judges_by_it():
    """evaluate_scores gives the χ² over exactly the ε_B points that got a pull; the report calls
    the closure failed for a pull beyond 2 only when its global p-value is under 0.05."""
    from l1ad.report import closure_verdict
    from offline.ad.score import Scores
    from offline.ad.workflow import evaluate_scores

    rng = np.random.default_rng(10)
    r1, r2, w = _factorised_toy(30_000, rng)
    result = evaluate_scores(
        Scores(r1, r2, w, np.zeros(len(r1), np.int32)), {}, bootstrap=30, dcor_max_events=2000
    )
    scan = result["abcd"]
    resolved = scan.loc[(scan["sample"] == "background") & scan["pull"].notna(), "eps_b"]
    consistency = result["summary"]["abcd"]["closure_consistency"]
    assert consistency["eps_b"] == list(resolved) and consistency["ndof"] == len(resolved) > 3
    assert consistency["max_abs_pull"] == pytest.approx(
        result["summary"]["abcd"]["max_abs_closure_pull"]
    )
    assert closure_verdict(1.9, None) == ""
    assert "Closure fails" in closure_verdict(2.3, None)
    assert "Closure fails" in closure_verdict(2.3, {"max_pull_p_value": 0.01})
    assert "not shown to fail" in closure_verdict(2.3, {"max_pull_p_value": 0.09})


def test_a_point_given_twice_counts_once():
    """Two equal ε_B points share their regions: Σ is singular, and χ² counts them once (its
    rank), equal to the scan without the repeat up to the replicas' noise."""
    rng = np.random.default_rng(11)
    r1, r2, w = _factorised_toy(20_000, rng)
    twice = closure_consistency(r1, r2, w, (0.01, 0.01, 0.05), replicas=60)
    once = closure_consistency(r1, r2, w, (0.01, 0.05), replicas=60)
    assert twice.ndof == once.ndof == 2
    assert twice.chi2 == pytest.approx(once.chi2, rel=0.05)


def test_evaluation_says_why_the_scan_has_no_joint_reading():
    from offline.ad.score import Scores
    from offline.ad.workflow import evaluate_scores

    rng = np.random.default_rng(12)
    r1, r2, w = _factorised_toy(30_000, rng)
    summary = evaluate_scores(
        Scores(r1, r2, w, np.zeros(len(r1), np.int32)), {}, bootstrap=5, dcor_max_events=2000
    )["summary"]
    assert summary["abcd"]["closure_consistency"] is None
    assert any("bootstrap replicas" in line for line in summary["statistically_limited"])
