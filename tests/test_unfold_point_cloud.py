"""Particle-level OmniFold classifiers: permutation invariance, masking, kNN, and the jets' particles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.unfold import OmniFoldConfig, PointCloudTransformer, make_classifier, omnifold
from offline.unfold.classifiers import PARTICLE_CLASSIFIERS
from offline.unfold.jets import PARTICLE_FEATURES, charge
from offline.unfold.point_cloud import knn

SMALL = {
    "deepsets": {"phi": (16, 16), "rho": (16,)},
    "transformer": {"dim": 16, "heads": 2, "layers": 2, "k": 3, "head": (16,)},
}


def _jets(n: int = 6, p: int = 9, real: tuple[int, ...] = (9, 5, 2, 1, 7, 3), seed: int = 0):
    """Random particle sets with ``real[i]`` real particles in jet i, the rest zero padding."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, len(PARTICLE_FEATURES), generator=gen)
    mask = torch.arange(p)[None, :] < torch.tensor(real)[:, None]
    return torch.where(mask[..., None], x, 0.0), mask


@pytest.fixture(params=PARTICLE_CLASSIFIERS)
def model(request):
    torch.manual_seed(1)
    return make_classifier(
        request.param, (9, len(PARTICLE_FEATURES)), **SMALL[request.param]
    ).eval()


def test_permuting_particles_within_a_jet_leaves_the_output_unchanged(model):
    x, mask = _jets()
    before = model(x, mask)
    gen = torch.Generator().manual_seed(5)
    # a different permutation per jet, padding rows moving with the rest
    perm = torch.stack([torch.randperm(x.shape[1], generator=gen) for _ in range(len(x))])
    shuffled = torch.gather(x, 1, perm[..., None].expand_as(x))
    after = model(shuffled, torch.gather(mask, 1, perm))
    assert not torch.equal(shuffled, x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_padded_particles_with_garbage_under_the_mask_change_nothing(model):
    x, mask = _jets()
    before = model(x, mask)
    garbage = 1e4 * torch.randn(len(x), 5, x.shape[-1])
    garbage[:, 0] = torch.nan
    garbage[:, 1] = torch.inf
    longer = torch.cat([x, garbage], dim=1)
    longer_mask = torch.cat([mask, torch.zeros(len(x), 5, dtype=torch.bool)], dim=1)
    # garbage also in the padding rows inside the original length
    longer = torch.where(longer_mask[..., None], longer, longer + 3.0)
    after = model(longer, longer_mask)
    assert torch.isfinite(after).all()
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    # without a mask, all-zero rows are the padding (the convention of OmniFold's inputs)
    torch.testing.assert_close(model(x), before)


def test_the_output_depends_on_every_real_particle(model):
    x, mask = _jets()
    moved = x.clone()
    moved[0, 8] += 1.0  # the last real particle of the 9-particle jet
    out, base = model(moved, mask), model(x, mask)
    assert (out[0] - base[0]).abs() > 1e-6
    torch.testing.assert_close(out[1:], base[1:])


def test_knn_finds_the_nearest_real_neighbours_and_skips_padding():
    coordinates = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [0.05, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, True, True, False]])
    index, valid = knn(coordinates, mask, k=2)
    # brute force, written out: neighbours of particle 0 are 3 (0.05) then 1 (0.1); the
    # padded particle 4 at distance 0 must not be chosen
    assert sorted(index[0, 0, valid[0, 0]].tolist()) == [1, 3]
    assert sorted(index[0, 2, valid[0, 2]].tolist()) == [1, 3]
    assert not valid[0, 4].any()
    # a jet of two particles has one neighbour each
    index, valid = knn(coordinates[:, :2], mask[:, :2], k=4)
    assert valid.sum(dim=-1).tolist() == [[1, 1]]
    assert index[0, 0, valid[0, 0]].tolist() == [1]


def test_transformer_rejects_bad_settings():
    with pytest.raises(ValueError, match="not divisible"):
        PointCloudTransformer(6, dim=10, heads=4)
    with pytest.raises(ValueError, match="coordinate columns"):
        PointCloudTransformer(2)
    with pytest.raises(ValueError, match="unknown classifier 'pet'"):
        OmniFoldConfig(classifier="pet")
    with pytest.raises(ValueError, match=r"transformer classifier needs \(N, P, F\)"):
        make_classifier("transformer", (6,))


def test_charge_of_visible_particles():
    pid = np.array([211, -211, 11, -11, 22, 2112, 130, -2212, 3334, -321])
    np.testing.assert_array_equal(charge(pid), [1, -1, -1, 1, 0, 0, 0, -1, -1, -1])


def _particle_problem(n: int = 300, p: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    sets = []
    for shift in (0.2, 0.0):
        x = rng.normal(shift, 1.0, (n, p, len(PARTICLE_FEATURES))).astype(np.float32)
        x[np.arange(p)[None, :] >= rng.integers(2, p + 1, n)[:, None]] = 0.0
        sets.append(x)
    return sets[0] + np.where(sets[0] != 0, 0.3, 0).astype(np.float32), sets[0], sets[1]


@pytest.mark.parametrize("kind", PARTICLE_CLASSIFIERS)
def test_omnifold_with_a_classifier_factory_on_particle_sets(kind):
    """The library takes a factory too: here one that records the shapes it was asked for."""
    reco, gen, data = _particle_problem()
    shapes = []

    def factory(shape):
        shapes.append(shape)
        return make_classifier(kind, shape, **SMALL[kind])

    config = OmniFoldConfig(iterations=1, classifier=factory, epochs=1, batch_size=64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are shared
    try:
        result = omnifold(reco, gen, data, config=config)
    finally:
        torch.set_num_threads(threads)
    assert shapes == [gen.shape[1:]] * 2
    assert np.isfinite(result.weights).all() and (result.weights > 0).all()


@pytest.mark.parametrize("kind", PARTICLE_CLASSIFIERS)
def test_bf16_autocast_training_path_runs_on_cpu(kind):
    """The autocast branch the CUDA runs take, exercised with CPU bf16 autocast."""
    reco, gen, data = _particle_problem()
    config = OmniFoldConfig(
        iterations=1,
        classifier=kind,
        classifier_options=SMALL[kind],
        epochs=1,
        batch_size=64,
        autocast=True,
        device="cpu",
    )
    result = omnifold(reco, gen, data, config=config)
    assert np.isfinite(result.weights).all() and (result.weights > 0).all()


@pytest.mark.gpu
@pytest.mark.parametrize("kind", PARTICLE_CLASSIFIERS)
def test_particle_classifiers_train_on_cuda_under_bf16_autocast(kind):
    reco, gen, data = _particle_problem(n=4000)
    config = OmniFoldConfig(
        iterations=2,
        classifier=kind,
        classifier_options=SMALL[kind],
        epochs=3,
        batch_size=512,
        device="cuda",
    )
    result = omnifold(reco, gen, data, config=config)
    assert np.isfinite(result.weights).all() and (result.weights > 0).all()
    torch.manual_seed(1)
    model = make_classifier(kind, (9, len(PARTICLE_FEATURES)), **SMALL[kind]).cuda().eval()
    x, mask = _jets()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x.cuda(), mask.cuda()).float()
    torch.testing.assert_close(out.cpu(), model.cpu()(x, mask), rtol=0.05, atol=0.05)
