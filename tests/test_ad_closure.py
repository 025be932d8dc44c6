"""The ABCD non-closure penalty (ABCDisCoTEC): against hard counts and exact fractions, on
factorised and correlated toys, its gradient, and its wiring into training and the CLI."""

from __future__ import annotations

import inspect
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import make_toy_events
from typer.testing import CliRunner

from l1ad.cli import app
from l1ad.steps import ad
from offline.ad import fit_preprocessing, inputs, train_pair
from offline.ad.closure import (
    DEFAULT_CLOSURE_EFFICIENCIES,
    closure_penalty,
    jittered_efficiencies,
    relative_nonclosure,
    resolvable_pairs,
    soft_region_counts,
)
from offline.ad.train import TrainConfig, pair_loss
from offline.events import write_events


def _lognormal_pair(n: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=n)
    z2 = rho * z1 + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return np.exp(z1), np.exp(0.7 * z2 + 1.0)


def _hard_counts(r1, r2, w, x, y) -> list[int]:
    """Weighted populations of A, B, C, D by numpy comparison (the oracle)."""
    hi1, hi2 = r1 > x, r2 > y
    return [int(w[m].sum()) for m in (hi1 & hi2, hi1 & ~hi2, ~hi1 & hi2, ~hi1 & ~hi2)]


def _exact_nonclosure(counts: list[int]) -> Fraction:
    a, b, c, d = counts
    return Fraction(a * d - b * c, a * d + b * c)


def test_soft_counts_become_the_counted_regions_and_exact_nonclosure_as_temperature_vanishes():
    r1, r2 = _lognormal_pair(300, 0.6, seed=1)
    w = np.random.default_rng(2).integers(1, 5, size=300)  # integer weights: exact fractions
    cuts = [(np.median(r1), np.median(r2)), (np.quantile(r1, 0.9), np.quantile(r2, 0.7))]
    t = torch.from_numpy
    for x, y in cuts:
        expected = _hard_counts(r1, r2, w, x, y)
        errors = []
        for temperature in (1e-1, 1e-2, 1e-3, 1e-8):
            soft = soft_region_counts(t(r1), t(r2), t(w).double(), x, y, temperature)
            errors.append(float(np.abs(soft.numpy() - expected).max()))
            nonclosure = float(relative_nonclosure(soft))
        assert errors[-1] < 1e-9 and errors[0] > errors[-1]  # converges to the hard counts
        assert nonclosure == pytest.approx(float(_exact_nonclosure(expected)), abs=1e-12)


# R2's own grid: the cuts of a jittered training step differ per axis; n·e is an integer for each
OTHER_R2_GRID = (0.4, 0.25, 0.15, 0.08, 0.04, 0.03, 0.02)


@pytest.mark.parametrize("grid_r2", [None, OTHER_R2_GRID], ids=["same grid", "own R2 grid"])
def test_penalty_is_the_counted_mean_squared_nonclosure_over_resolvable_cuts_at_zero_temperature(
    grid_r2,
):
    n, min_events = 1000, 10  # n·e is an integer for every default efficiency
    r1, r2 = _lognormal_pair(n, 0.5, seed=3)
    expected, used = [], 0
    desc1, desc2 = np.sort(r1)[::-1], np.sort(r2)[::-1]
    for e1 in DEFAULT_CLOSURE_EFFICIENCIES:
        for e2 in grid_r2 or DEFAULT_CLOSURE_EFFICIENCIES:
            if n * min(e1, 1 - e1) * min(e2, 1 - e2) < min_events:
                continue
            k1, k2 = round(n * e1), round(n * e2)
            x = (desc1[k1 - 1] + desc1[k1]) / 2  # keeps exactly k1 events above
            y = (desc2[k2 - 1] + desc2[k2]) / 2
            expected.append(_exact_nonclosure(_hard_counts(r1, r2, np.ones(n, int), x, y)) ** 2)
            used += 1
    assert used >= 20
    got = closure_penalty(
        torch.from_numpy(r1),
        torch.from_numpy(r2),
        temperature=1e-9,
        min_events=min_events,
        efficiencies_r2=grid_r2,
    )
    assert float(got) == pytest.approx(float(sum(expected) / used), abs=1e-12)


def test_penalty_vanishes_for_factorised_weights_and_is_large_for_correlated_scores():
    # every (a_i, b_j) with weight p_i q_j: the region populations factorise exactly, at any temperature
    rng = np.random.default_rng(4)
    a, b = np.exp(rng.normal(size=50)), np.exp(rng.normal(size=40))
    p, q = rng.uniform(0.5, 2, 50), rng.uniform(0.5, 2, 40)
    r1, r2 = (torch.from_numpy(v.ravel()) for v in np.meshgrid(a, b, indexing="ij"))
    w = torch.from_numpy(np.outer(p, q).ravel())
    assert resolvable_pairs(torch.tensor(DEFAULT_CLOSURE_EFFICIENCIES), w, 10).sum() >= 20
    assert float(closure_penalty(r1, r2, w)) < 1e-12
    # an independent random sample only fluctuates: the non-closure is half the log odds ratio,
    # whose variance is Σ 1/N over the four regions; correlated scores do not close
    n = 20_000
    floor = []
    for e1 in DEFAULT_CLOSURE_EFFICIENCIES:
        for e2 in DEFAULT_CLOSURE_EFFICIENCIES:
            sizes = [n * f1 * f2 for f1 in (e1, 1 - e1) for f2 in (e2, 1 - e2)]
            if min(sizes) >= 10:
                floor.append(sum(1 / s for s in sizes) / 4)
    noise = float(np.mean(floor))
    independent = closure_penalty(*(torch.from_numpy(v) for v in _lognormal_pair(n, 0.0, 5)))
    correlated = closure_penalty(*(torch.from_numpy(v) for v in _lognormal_pair(n, 0.8, 5)))
    assert 0.3 * noise < float(independent) < 2 * noise
    assert float(correlated) > 20 * noise


def test_identical_scores_are_the_worst_case_not_skipped():
    # B and C are empty: the hard non-closure is 1 at every cut, and no cut may be left out
    r = torch.from_numpy(np.exp(np.random.default_rng(6).normal(size=2000)))
    assert float(closure_penalty(r, r.clone(), temperature=1e-6)) == pytest.approx(1.0, abs=1e-6)


def test_gradient_matches_finite_differences_and_a_step_reduces_the_penalty():
    rng = np.random.default_rng(7)
    r1 = torch.tensor(np.exp(rng.normal(size=12)), requires_grad=True)
    r2 = torch.tensor(np.exp(rng.normal(size=12)), requires_grad=True)
    w = torch.tensor(rng.uniform(0.5, 2, 12))
    x, y = torch.tensor([1.0, 0.8]), torch.tensor([1.1, 0.5])
    assert torch.autograd.gradcheck(
        lambda u, v: relative_nonclosure(soft_region_counts(u, v, w, x, y, 0.3)), (r1, r2)
    )

    s1, s2 = (torch.from_numpy(v) for v in _lognormal_pair(2000, 0.8, 8))
    s2.requires_grad_(True)
    before = closure_penalty(s1, s2)
    (grad,) = torch.autograd.grad(before, s2)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    after = closure_penalty(s1, (s2 - 0.05 * grad / grad.abs().max()).detach())
    assert float(after) < float(before.detach())


def test_pair_loss_adds_the_weighted_closure_penalty_only_when_asked():
    r1, r2 = (torch.from_numpy(v).float() for v in _lognormal_pair(1000, 0.7, 9))
    w = torch.ones(1000)
    plain = pair_loss(r1, r2, w, 10.0)
    with_closure = pair_loss(r1, r2, w, 10.0, closure_lam=100.0)
    assert plain.closure == 0.0 and with_closure.closure > 0.01
    assert float(with_closure.total) == pytest.approx(
        float(plain.total) + 100.0 * with_closure.closure, rel=1e-5
    )


def test_a_closure_grid_reaching_the_extreme_tail_of_one_axis_enters_the_loss():
    """At 1 000 events no pair with 0.005 or 0.002 fills its regions (n·e₁·e₂ < 10), so the loss
    is the default grid's; at 10⁴ pairs such as (0.002, 0.5) enter and change it."""
    tail = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002)
    for n, changes in ((1000, False), (10_000, True)):
        r1, r2 = (torch.from_numpy(v).float() for v in _lognormal_pair(n, 0.7, 9))
        w = torch.ones(n)
        default = pair_loss(r1, r2, w, 0.0, closure_lam=1.0).closure
        extended = pair_loss(r1, r2, w, 0.0, 1.0, closure_efficiencies=tail).closure
        expected = float(closure_penalty(r1, r2, w, tail))
        assert extended == pytest.approx(expected, rel=1e-6)
        assert (extended != pytest.approx(default, rel=1e-6)) is changes


def test_jittered_grids_scale_each_axis_by_its_own_seeded_factor_within_the_jitter():
    grid, jitter = DEFAULT_CLOSURE_EFFICIENCIES, 0.5
    draws = [
        jittered_efficiencies(grid, jitter, np.random.default_rng([5, step])) for step in range(200)
    ]
    assert draws[7] == jittered_efficiencies(grid, jitter, np.random.default_rng([5, 7]))
    factors = []
    for axis_grids in draws:
        for axis in axis_grids:
            ratio = np.array(axis) / np.array(grid)
            assert np.allclose(ratio, ratio[0], rtol=1e-12)  # one factor moves the whole axis
            factors.append(float(ratio[0]))
    logs = np.log(factors)
    assert logs.min() >= -jitter and logs.max() <= jitter
    # the axes move independently, and the moved grids fill the gaps between the points
    assert not np.allclose(logs[0::2], logs[1::2])
    assert np.diff(np.sort(logs)).max() < 0.1


def test_jittered_closure_training_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    events = make_toy_events(1600, seed=12)
    pre = fit_preprocessing(events[:1300])
    x, w = inputs(events, pre), events.event_weights
    settings = {
        "batch_size": 650,
        "patience": 100,
        "progress": False,
        "seed": 3,
        "lam": 0.0,
        "closure_lam": 10.0,
        "closure_jitter": 0.5,
    }

    def run(out, epochs, resume=False):
        config = TrainConfig(epochs=epochs, **settings)
        return train_pair(x[:1300], w[:1300], x[1300:], w[1300:], config, out, resume=resume)

    straight = run(tmp_path / "straight", 3)
    run(tmp_path / "resumed", 2)
    resumed = run(tmp_path / "resumed", 3, resume=True)
    assert [h["train_closure"] for h in resumed.history] == [
        h["train_closure"] for h in straight.history
    ]
    fixed = TrainConfig(epochs=3, **(settings | {"closure_jitter": 0.0}))
    fixed_run = train_pair(x[:1300], w[:1300], x[1300:], w[1300:], fixed, tmp_path / "fixed")
    assert fixed_run.history[1]["train_closure"] != straight.history[1]["train_closure"]
    with pytest.raises(ValueError, match="closure_jitter"):
        TrainConfig(closure_jitter=-0.1)


def test_the_closure_grid_of_a_training_survives_json_and_is_checked():
    config = TrainConfig(closure_lam=1.0, closure_efficiencies=(0.5, 0.01, 0.002))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="closure_efficiencies"):
        TrainConfig(closure_efficiencies=(0.5, 1.0))


def test_closure_lam_defaults_are_one_value_and_zero():
    assert TrainConfig().closure_lam == 0.0
    assert ad.DEFAULTS["closure_lam"] == TrainConfig().closure_lam
    assert inspect.signature(ad.train).parameters["closure_lam"].default == 0.0
    with pytest.raises(ValueError, match="closure_lam"):
        TrainConfig(closure_lam=-1.0)


def test_train_command_takes_closure_lam_and_jitter(tmp_path):
    bkg = write_events(tmp_path / "bkg.h5", make_toy_events(1500, seed=11))
    runner = CliRunner()
    args = ["train", str(bkg), "--out", str(tmp_path / "m"), "--epochs", "2", "--no-progress"]
    result = runner.invoke(
        app, [*args, "--batch-size", "500", "--closure-lam", "50", "--closure-jitter", "0.4"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["train"]
    assert saved["closure_lam"] == 50 and saved["closure_jitter"] == 0.4
    history = json.loads((tmp_path / "m" / "metrics.json").read_text())["history"]
    assert all(h["train_closure"] > 0 for h in history)

    for option, bad in (("--closure-lam", "-1"), ("--closure-jitter", "-0.5")):
        result = runner.invoke(app, [*args, option, bad])
        assert result.exit_code == 1 and option[2:].replace("-", "_") in result.output
        assert "Traceback" not in result.output


def test_checkpoints_written_before_closure_lam_resume_only_without_it(tmp_path):
    from offline.ad.train import LAST_FILE, STATE_FILE, check_resume

    fingerprint = {"background": {"events": 10, "sha256": "ab"}}
    old = TrainConfig().to_dict()
    del old["closure_lam"]  # as an l1ad without the option wrote it
    (tmp_path / STATE_FILE).write_text(json.dumps({"inputs": fingerprint, "train": old}))
    (tmp_path / LAST_FILE).write_bytes(b"")
    assert check_resume(tmp_path, TrainConfig(), fingerprint) is not None
    with pytest.raises(ValueError, match=r"closure_lam was None, now 5\.0"):
        check_resume(tmp_path, TrainConfig(closure_lam=5.0), fingerprint)
