"""OmniFold closure on the Gaussian toy, pass-flag conventions, input checks, classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.unfold import (
    DeepSets,
    NonFiniteWeightsError,
    OmniFoldConfig,
    bootstrap,
    effective_sample_size,
    gaussian_toy,
    omnifold,
    sample_discriminator,
    triangular_discriminator,
    weighted_moments,
)
from offline.unfold.omnifold import _ratio

SMALL = {"hidden": (32, 32)}


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are shared; one thread is the fastest here
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_result(one_thread):
    problem = gaussian_toy(20_000, seed=11)
    config = OmniFoldConfig(iterations=4, classifier_options=SMALL, batch_size=2048, seed=3)
    return problem, omnifold(**problem.omnifold_inputs(), config=config)


def test_gaussian_toy_mean_and_width_match_truth_and_beat_prior(toy_result):
    problem, result = toy_result
    x, truth = problem.sim_gen[:, 0], problem.data_gen[:, 0]
    mean_t, sd_t = weighted_moments(truth)
    mean_u, sd_u = weighted_moments(x, result.weights)
    mean_p, sd_p = weighted_moments(x)
    # statistical error of the mean ~ 1/sqrt(20000) ≈ 0.007, amplified by unfolding and
    # the regularisation of 4 iterations; the prior is off by 0.2 in both
    assert abs(mean_u - mean_t) < 0.05
    assert abs(sd_u - sd_t) < 0.06
    assert abs(mean_u - mean_t) < abs(mean_p - mean_t) / 3
    assert abs(sd_u - sd_t) < abs(sd_p - sd_t) / 3
    bins = problem.bins["x"]
    assert (
        sample_discriminator(x, truth, bins, result.weights)
        < sample_discriminator(x, truth, bins) / 4
    )


def test_unfolded_weights_are_finite_positive_and_diagnosed(toy_result):
    _, result = toy_result
    for w in (result.weights, result.reco_weights, *result.push, *result.pull):
        assert np.isfinite(w).all()
        assert (w > 0).all()
    assert len(result.diagnostics) == 2 * 4
    for rec in result.diagnostics:
        assert 0 < rec.ess_fraction <= 1
        assert rec.max_weight >= 1
        assert rec.epochs >= 1
    # each iteration moves the weights further from the prior: ESS falls below N
    assert result.diagnostics[-1].ess_fraction < 0.99


def test_events_failing_reco_keep_push_weight_and_failing_gen_get_one(one_thread):
    problem = gaussian_toy(4000, seed=5, reco_efficiency=0.8)
    rng = np.random.default_rng(2)
    pass_gen = rng.random(4000) < 0.9
    inputs = problem.omnifold_inputs() | {"pass_gen": pass_gen}
    pr = inputs["pass_reco"]
    config = OmniFoldConfig(iterations=2, classifier_options=SMALL, epochs=4, batch_size=1024)
    result = omnifold(**inputs, config=config)
    # iteration 1: push weights are 1, so events failing reco keep exactly their prior weight
    np.testing.assert_array_equal(result.pull[0][~pr], 1.0)
    assert np.std(result.pull[0][pr]) > 1e-3
    # iteration 2: events failing reco keep the push weight of iteration 1
    np.testing.assert_array_equal(result.pull[1][~pr], result.push[0][~pr])
    # events failing gen (fakes) get push weight 1 in every iteration
    np.testing.assert_array_equal(result.push[:, ~pass_gen], 1.0)
    np.testing.assert_array_equal(result.weights[~pass_gen], result.prior[~pass_gen])


@pytest.mark.parametrize(
    "name", ["sim_reco", "sim_gen", "data_reco", "sim_weights", "data_weights"]
)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_input_raises_error_naming_the_array(name, bad):
    problem = gaussian_toy(100, seed=0)
    inputs = problem.omnifold_inputs() | {"sim_weights": np.ones(100), "data_weights": np.ones(100)}
    array = np.array(inputs[name], dtype=float)
    array.reshape(-1)[7] = bad
    inputs[name] = array
    with pytest.raises(ValueError, match=rf"{name}: 1 NaN/inf values"):
        omnifold(**inputs)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("sim_gen", np.zeros((99, 1)), "sim_gen: length 99 does not match sim_reco"),
        ("pass_reco", np.ones(50, bool), "pass_reco: length 50 does not match sim_reco"),
        ("pass_gen", np.ones(101, bool), "pass_gen: length 101 does not match sim_reco"),
        ("data_pass_reco", np.ones(3, bool), "data_pass_reco: length 3 does not match data_reco"),
        ("data_weights", np.ones(10), "data_weights: length 10 does not match data_reco"),
        ("data_reco", np.zeros((100, 2)), "data_reco: per-event shape"),
    ],
)
def test_mismatched_arrays_raise_clear_error(name, value, message):
    inputs = gaussian_toy(100, seed=0).omnifold_inputs() | {name: value}
    with pytest.raises(ValueError, match=message):
        omnifold(**inputs)


class _Saturated(torch.nn.Module):
    def forward(self, x):
        return torch.full((len(x),), 1000.0)


def test_saturated_classifier_raises_instead_of_replacing_infinite_weights():
    x = torch.zeros(10, 1)
    with pytest.raises(NonFiniteWeightsError, match="10 of 10 likelihood ratios are NaN/inf"):
        _ratio(_Saturated(), x, None, "iteration 1 step 1")


def test_clipping_bounds_the_weights_and_warns():
    x = torch.zeros(10, 1)
    with pytest.warns(UserWarning, match="clipped f to"):
        ratio, clipped = _ratio(_Saturated(), x, 1e-4, "iteration 1 step 1")
    assert clipped == 10
    np.testing.assert_allclose(ratio, (1 - 1e-4) / 1e-4)


def test_ensembles_average_members_and_bootstrap_gives_replicas(one_thread):
    problem = gaussian_toy(1500, seed=9)
    config = OmniFoldConfig(
        iterations=1, ensembles=2, classifier_options=SMALL, epochs=3, batch_size=512
    )
    result = omnifold(**problem.omnifold_inputs(), config=config)
    assert result.member_push.shape == (2, 1, 1500)
    assert not np.allclose(result.member_push[0], result.member_push[1])
    np.testing.assert_allclose(result.weights, result.member_weights.mean(axis=0))
    single = OmniFoldConfig(iterations=1, classifier_options=SMALL, epochs=3, batch_size=512)
    replicas = bootstrap(**problem.omnifold_inputs(), replicas=2, config=single)
    assert replicas.shape == (2, 1500)
    assert np.isfinite(replicas).all()
    assert not np.allclose(replicas[0], replicas[1])


def test_deepsets_is_permutation_invariant_and_ignores_padding():
    torch.manual_seed(0)
    model = DeepSets(3, phi=(8,), rho=(8,))
    x = torch.randn(4, 5, 3)
    x[:, 3:] = 0.0  # two padding rows
    permuted = x[:, [2, 0, 1, 4, 3]]
    shorter = x[:, :3]
    torch.testing.assert_close(model(x), model(permuted))
    torch.testing.assert_close(model(x), model(shorter))


def test_deepsets_omnifold_runs_on_particle_sets(one_thread):
    rng = np.random.default_rng(0)
    n, p = 800, 6
    gen = rng.normal(0.2, 0.8, (n, p, 2))
    reco = gen + rng.normal(0, 0.3, gen.shape)
    data = rng.normal(0.0, 1.0, (n, p, 2)) + rng.normal(0, 0.3, (n, p, 2))
    config = OmniFoldConfig(
        iterations=1,
        classifier="deepsets",
        classifier_options={"phi": (16,), "rho": (16,)},
        epochs=3,
        batch_size=256,
    )
    result = omnifold(reco, gen, data, config=config)
    assert np.isfinite(result.weights).all()
    assert (result.weights > 0).all()


def test_effective_sample_size_and_triangular_discriminator():
    assert effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)
    p = np.array([1.0, 2.0, 3.0])
    assert triangular_discriminator(p, 10 * p) == pytest.approx(0.0)
    assert triangular_discriminator(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="differ in shape"):
        triangular_discriminator(p, p[:2])


@pytest.mark.gpu
def test_omnifold_on_cuda_matches_the_cpu_closure():
    problem = gaussian_toy(20_000, seed=11)
    config = OmniFoldConfig(
        iterations=4, classifier_options=SMALL, batch_size=2048, seed=3, device="cuda"
    )
    result = omnifold(**problem.omnifold_inputs(), config=config)
    mean_t, sd_t = weighted_moments(problem.data_gen[:, 0])
    mean_u, sd_u = weighted_moments(problem.sim_gen[:, 0], result.weights)
    assert abs(mean_u - mean_t) < 0.05
    assert abs(sd_u - sd_t) < 0.06


def test_learning_rate_drops_continue_training_past_the_first_plateau(one_thread):
    problem = gaussian_toy(1500, seed=2)
    runs = {}
    for drops in (0, 1):
        config = OmniFoldConfig(
            iterations=1, classifier_options=SMALL, batch_size=256, patience=2, lr_drops=drops
        )
        runs[drops] = omnifold(**problem.omnifold_inputs(), config=config)
    first0, first1 = runs[0].diagnostics[0], runs[1].diagnostics[0]  # step 1: identical inputs
    assert first1.epochs > first0.epochs  # same path to the first plateau, then more epochs
    assert first1.val_loss <= first0.val_loss + 1e-7
    assert np.isfinite(runs[1].weights).all()
