"""Diffusion surrogate and progressive distillation on a tiny GFlash sample."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from offline.generative import (
    DATASET1_PHOTONS,
    DiffusionConfig,
    GFlashSimulator,
    ShowerDiffusion,
    ShowerTransform,
    TrainingData,
    alpha_permutations,
    distill_round,
    layer_energies,
    progressive_distillation,
    sample_energies,
    train_diffusion,
)
from offline.generative.io import deposits_as_float32

TINY = DiffusionConfig(
    layer_width=32,
    layer_depth=2,
    voxel_width=64,
    voxel_depth=2,
    steps=8,
    epochs=12,
    batch_size=64,
    lr=3e-3,
    ema=0.9,
)


@pytest.fixture(scope="module")
def tiny_data():
    energies = sample_energies(384, 0, 1e3, 2e4)
    return energies, GFlashSimulator().simulate(energies, 1)


@pytest.fixture(scope="module")
def tiny_model(tiny_data):
    torch.manual_seed(0)
    return train_diffusion(*tiny_data, TINY, device="cpu")


def test_transform_round_trip_conserves_layer_and_total_energy(tiny_data):
    energies, showers = tiny_data
    tf = ShowerTransform.fit(energies, showers)
    lx, vx = tf.forward(energies, showers, DATASET1_PHOTONS)
    back = tf.inverse(energies, lx, vx, DATASET1_PHOTONS)
    el, el_back = layer_energies(showers, DATASET1_PHOTONS), layer_energies(back, DATASET1_PHOTONS)
    # exact but for the sample's extremes (latents clipped at ±4.26), which stay within 1 %
    exact = np.all(np.isclose(back, showers, rtol=1e-4, atol=1e-6 * energies.max()), axis=1)
    assert exact.mean() > 0.98
    np.testing.assert_allclose(el_back, el, rtol=1e-2, atol=1e-3)
    np.testing.assert_array_equal(back == 0, showers == 0)
    # any latent maps to showers whose voxels add up exactly to the generated layer energies
    # (exactly up to the float32 cast: V roundings of 2^-24 and the squeeze of deposits_as_float32)
    rng = np.random.default_rng(0)
    noise_l, noise_v = rng.normal(size=lx.shape), rng.normal(size=vx.shape)
    noisy = tf.inverse(energies, noise_l, noise_v, DATASET1_PHOTONS)
    assert noisy.min() >= 0
    generated = tf.latent_layer_energies(energies, noise_l)
    assert generated.min() >= 0
    sums = np.stack(
        [
            [math.fsum(row) for row in noisy[:, DATASET1_PHOTONS.layer_slice(i)].astype(np.float64)]
            for i in range(DATASET1_PHOTONS.n_layers)
        ],
        axis=1,
    )
    np.testing.assert_allclose(sums, generated, rtol=2 * noisy.shape[1] * 2.0**-24, atol=1e-30)
    _assert_float32_deposits_within(noisy, energies)


def _assert_float32_deposits_within(showers: np.ndarray, energies: np.ndarray) -> None:
    """Σ voxels ≤ E for float32 showers: the exact sum (fractions), and float32 sums in the orders a
    platform may use (numpy's pairwise/SIMD sum, left to right, ascending, descending)."""
    assert showers.dtype == np.float32
    for row, e in zip(showers, energies, strict=True):
        assert sum(map(Fraction, row.tolist())) <= Fraction(float(e))
        for order in (row, np.sort(row), np.sort(row)[::-1]):
            assert float(np.sum(order)) <= e
            assert float(np.cumsum(order)[-1]) <= e
            acc = np.float32(0)
            for v in order:
                acc = np.float32(acc + v)
            assert float(acc) <= e


def test_float32_deposits_never_exceed_the_incident_energy_in_any_summation_order():
    # showers depositing all of E in float64; a plain float32 cast exceeds E in about half of them
    rng = np.random.default_rng(7)
    energies = rng.uniform(1e3, 1e6, size=400)
    x = rng.exponential(size=(400, DATASET1_PHOTONS.n_voxels)) ** 3
    x = x / x.sum(axis=1, keepdims=True) * energies[:, None]
    naive = x.astype(np.float32)
    assert (
        np.mean(
            [
                sum(map(Fraction, r.tolist())) > Fraction(float(e))
                for r, e in zip(naive, energies, strict=True)
            ]
        )
        > 0.2
    )
    out = deposits_as_float32(x, energies)
    _assert_float32_deposits_within(out, energies)
    # the squeeze is tiny (V float32 roundings), and showers well below E are not touched
    np.testing.assert_allclose(
        out.sum(axis=1, dtype=np.float64), energies, rtol=3 * x.shape[1] * 2.0**-24
    )
    half = deposits_as_float32(x / 2, energies)
    np.testing.assert_array_equal(half, (x / 2).astype(np.float32))


def test_diffusion_loss_decreases(tiny_model):
    _, history = tiny_model
    assert len(history) == TINY.epochs
    assert np.mean(history[-3:]) < 0.92 * history[0]


def test_trained_model_samples_finite_non_negative_showers_of_the_right_shape(tiny_model, tmp_path):
    model, _ = tiny_model
    energies = np.array([1e3, 5e3, 2e4] * 5)
    showers = model.sample(energies, seed=3)
    assert showers.shape == (15, 368)
    assert np.all(np.isfinite(showers)) and showers.min() >= 0
    assert np.all(showers.sum(axis=1, dtype=np.float64) > 0.5 * energies)
    _assert_float32_deposits_within(showers, energies)  # a photon deposits at most its energy
    # same seed, same showers; save/load keeps the sampler
    np.testing.assert_array_equal(model.sample(energies, seed=3), showers)
    path = model.save(tmp_path / "m.safetensors")
    loaded = ShowerDiffusion.load(path)
    assert loaded.steps == model.steps
    np.testing.assert_allclose(loaded.sample(energies, seed=3), showers, rtol=1e-5, atol=1e-3)


def test_distillation_halves_steps_and_stays_close_to_its_teacher(tiny_model, tiny_data):
    teacher, _ = tiny_model
    data = TrainingData.build(teacher, *tiny_data, torch.device("cpu"))
    student, losses = distill_round(teacher, data, iterations=150, batch_size=128, lr=1e-3)
    assert student.steps == teacher.steps // 2 == 4
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    energies = sample_energies(256, 5, 1e3, 2e4)
    ref_l, ref_v = teacher.sample_latents(energies, steps=8, seed=9)
    naive_l, naive_v = teacher.sample_latents(energies, steps=4, seed=9)
    stud_l, stud_v = student.sample_latents(energies, seed=9)
    # the 4-step student reproduces the 8-step teacher better than the teacher run with 4 steps
    err_student = float(((stud_v - ref_v) ** 2).mean() + ((stud_l - ref_l) ** 2).mean())
    err_naive = float(((naive_v - ref_v) ** 2).mean() + ((naive_l - ref_l) ** 2).mean())
    assert err_student < err_naive


def test_progressive_distillation_reaches_each_target_by_halving(tiny_model, tiny_data):
    teacher, _ = tiny_model
    data = TrainingData.build(teacher, *tiny_data, torch.device("cpu"))
    kept = progressive_distillation(teacher, data, targets=(2, 1), iterations=3, batch_size=32)
    assert sorted(kept) == [1, 2]
    assert kept[1].sample(np.array([2e3, 4e3]), seed=0).shape == (2, 368)
    with pytest.raises(ValueError, match="cannot reach 3 steps"):
        progressive_distillation(teacher, data, targets=(3,), iterations=1)


@pytest.mark.gpu
def test_cuda_training_with_autocast_samples_valid_showers(tiny_data):
    config = DiffusionConfig(
        layer_width=32,
        layer_depth=1,
        voxel_width=64,
        voxel_depth=1,
        steps=4,
        epochs=3,
        batch_size=64,
    )
    model, history = train_diffusion(*tiny_data, config, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    assert np.all(np.isfinite(history))
    showers = model.sample(np.array([1e3, 1e4]), seed=0)
    assert showers.shape == (2, 368) and np.all(np.isfinite(showers)) and showers.min() >= 0


def test_alpha_rotation_of_showers_commutes_with_the_gaussianisation(tiny_data):
    # the augmentation rotates latents; that is only a rotation of showers
    # if every α bin of a ring is mapped through the same table
    energies, showers = tiny_data
    tf = ShowerTransform.fit(energies, showers)
    perms = alpha_permutations(DATASET1_PHOTONS)
    assert perms.shape == (20, DATASET1_PHOTONS.n_voxels)
    assert all(np.array_equal(np.sort(p), np.arange(DATASET1_PHOTONS.n_voxels)) for p in perms)
    np.testing.assert_allclose(DATASET1_PHOTONS.voxel_r[perms[3]], DATASET1_PHOTONS.voxel_r)
    _, vx = tf.forward(energies, showers, DATASET1_PHOTONS)
    for p in (perms[3], perms[12]):  # a rotation, a reflection
        _, vx_rot = tf.forward(energies, showers[:, p], DATASET1_PHOTONS)
        nonzero = showers[:, p] > 0  # empty voxels get random latents in the empty mass
        np.testing.assert_allclose(vx_rot[nonzero], vx[:, p][nonzero], atol=1e-9)


def test_calibrated_sampler_reproduces_training_sparsity(tiny_model, tiny_data):
    model, _ = tiny_model
    energies, showers = tiny_data
    assert model.transform.voxel_calibration is not None
    out = model.sample(energies, seed=3)
    assert abs((out <= 0).mean() - (showers <= 0).mean()) < 0.03


def test_model_file_from_before_the_gaussianisation_is_refused_with_a_clear_error(tiny_data):
    energies, showers = tiny_data
    tensors = {
        k: v
        for k, v in ShowerTransform.fit(energies, showers).to_tensors().items()
        if not k.startswith("voxels")
    }
    with pytest.raises(ValueError, match=r"older l1ad.*retrain"):
        ShowerTransform.from_tensors(tensors)


def test_independent_latents_already_light_up_voxels_as_the_layer_energy_demands():
    # the voxel tables are conditioned on each layer's energy: even a "network" that outputs
    # independent Gaussians gives showers whose number of occupied voxels follows E_layer
    energies = sample_energies(3000, 11, 1e3, 1e4)
    showers = GFlashSimulator().simulate(energies, 12)
    tf = ShowerTransform.fit(energies, showers)
    rng = np.random.default_rng(13)
    lx, _ = tf.forward(energies, showers, DATASET1_PHOTONS)
    noise = tf.inverse(energies, lx, rng.normal(size=showers.shape), DATASET1_PHOTONS)
    sl = DATASET1_PHOTONS.layer_slice(1)

    def occupancy_vs_energy(x: np.ndarray) -> float:
        return float(
            np.corrcoef((x[:, sl] > 0).sum(axis=1), np.log(x[:, sl].sum(axis=1) + 1e-3))[0, 1]
        )

    reference = occupancy_vs_energy(showers)
    assert reference > 0.5
    assert abs(occupancy_vs_energy(noise) - reference) < 0.1


def test_discrete_energy_ladder_of_the_calochallenge_gets_one_table_per_energy():
    # the real dataset-1 files have discrete incident energies: quantile bins would coincide
    energies = sample_energies(3000, 21, 1e3, 1.7e4, discrete=True)
    showers = GFlashSimulator().simulate(energies, 22)
    tf = ShowerTransform.fit(energies, showers)
    ladder = np.unique(energies)
    np.testing.assert_allclose(tf.layers.centres, tf.condition(ladder)[:, 0])
    lx, vx = tf.forward(energies, showers, DATASET1_PHOTONS)
    assert np.all(np.abs(lx.std(axis=0) - 1) < 0.05)
    rng = np.random.default_rng(23)
    generated = tf.inverse(
        energies, rng.normal(size=lx.shape), rng.normal(size=vx.shape), DATASET1_PHOTONS
    )
    for e in ladder:  # the deposited fraction at every rung, from Gaussian latents alone
        sel = energies == e
        assert abs(generated[sel].sum(axis=1).mean() - showers[sel].sum(axis=1).mean()) < 3e-3 * e


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e, x: (e, x[:, :300]), "300 voxels"),
        (lambda e, x: (e, np.where(np.arange(x.shape[1]) == 7, np.nan, x)), "NaN or inf"),
        (lambda e, x: (e, x - 1.0), "negative voxel energies"),
        (lambda e, x: (-e, x), "must be positive"),
    ],
    ids=["voxel-count", "nan", "negative-voxel", "negative-energy"],
)
def test_training_on_bad_showers_stops_with_a_clear_error(tiny_data, mutate, message):
    energies, showers = mutate(*tiny_data)
    with pytest.raises(ValueError, match=f"training showers: .*{message}"):
        train_diffusion(energies, showers, TINY, device="cpu")
