"""DisCo²: limits, agreement with the dcor package, event weights, gradients."""

from __future__ import annotations

import dcor
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.ad import dense_disco_sq, disco_sq, distance_correlation


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def test_disco_is_near_zero_for_independent_inputs():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=2000), rng.exponential(size=2000)
    assert float(disco_sq(_t(x), _t(y))) < 0.01
    assert distance_correlation(x, y) ** 2 < 0.01


def test_disco_is_one_for_identical_inputs_and_high_for_dependent_ones():
    x = np.random.default_rng(2).normal(size=500)
    assert float(disco_sq(_t(x), _t(x))) == pytest.approx(1.0, abs=1e-9)
    assert float(disco_sq(_t(x), _t(3 * x + 1))) == pytest.approx(1.0, abs=1e-9)
    assert float(disco_sq(_t(x), _t(x**2))) > 0.1  # uncorrelated (Pearson ~ 0) but dependent


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=3, max_value=60), st.integers(min_value=0, max_value=10_000))
def test_disco_matches_dcor_package_with_unit_weights(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = x * rng.uniform(-1, 1) + rng.normal(size=n)
    expected = dcor.distance_correlation_sqr(x, y)
    assert float(disco_sq(_t(x), _t(y))) == pytest.approx(expected, abs=1e-9)
    assert distance_correlation(x, y) ** 2 == pytest.approx(expected, abs=1e-9)


def test_integer_weights_equal_repeated_events():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = np.abs(x) + rng.normal(size=200)
    w = rng.integers(1, 5, 200)
    repeated = dcor.distance_correlation_sqr(np.repeat(x, w), np.repeat(y, w))
    assert float(disco_sq(_t(x), _t(y), _t(w))) == pytest.approx(repeated, abs=1e-9)
    assert distance_correlation(x, y, w.astype(float)) ** 2 == pytest.approx(repeated, abs=1e-9)
    # only relative weights matter, and unequal weights do change the value
    assert float(disco_sq(_t(x), _t(y), _t(7.5 * w))) == pytest.approx(repeated, abs=1e-9)
    assert abs(float(disco_sq(_t(x), _t(y))) - repeated) > 1e-4


def test_gradient_flows_and_lowers_disco():
    torch.manual_seed(0)
    x = torch.randn(300, dtype=torch.float64)
    y = (x + 0.3 * torch.randn(300, dtype=torch.float64)).requires_grad_(True)
    d = disco_sq(x, y)
    d.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    with torch.no_grad():
        assert float(disco_sq(x, y - 0.5 * y.grad / y.grad.norm())) < float(d)


def test_constant_input_gives_finite_gradient():
    x = torch.zeros(50, requires_grad=True)
    d = disco_sq(x, torch.randn(50))
    d.backward()
    assert torch.isfinite(x.grad).all()


def test_float32_inputs_are_computed_in_float32_at_least():
    x = torch.randn(100, dtype=torch.bfloat16)
    assert disco_sq(x, x * 2).dtype == torch.float32


def test_subsampling_large_inputs_is_deterministic_and_close():
    rng = np.random.default_rng(4)
    x = rng.normal(size=4000)
    y = x + rng.normal(size=4000)
    full = distance_correlation(x, y)
    sub = distance_correlation(x, y, max_events=2000)
    assert sub == distance_correlation(x, y, max_events=2000)
    assert sub == pytest.approx(full, abs=0.03)


@pytest.mark.parametrize(
    ("x", "y", "w", "match"),
    [
        (np.zeros(5), np.zeros(4), None, "one length"),
        (np.zeros(1), np.zeros(1), None, "at least 2"),
        (np.zeros(5), np.zeros(5), np.ones(4), "weights"),
        (np.array([0.0, np.nan, 1.0]), np.zeros(3), None, "NaN"),
    ],
)
def test_bad_inputs_are_rejected(x, y, w, match):
    with pytest.raises(ValueError, match=match):
        distance_correlation(x, y, w)
    if match != "NaN":
        with pytest.raises(ValueError, match=match):
            disco_sq(_t(x), _t(y), None if w is None else _t(w))


def test_analytic_gradient_matches_finite_differences_with_weights():
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(25, dtype=torch.float64, generator=gen) + 0.5
    x = torch.randn(25, dtype=torch.float64, generator=gen, requires_grad=True)
    y = (x.detach() ** 2 + torch.randn(25, dtype=torch.float64, generator=gen)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: disco_sq(a, b, w), (x, y))


def test_blocked_cross_term_equals_unblocked(monkeypatch):
    import offline.ad.disco as disco

    x, y = torch.randn(300, dtype=torch.float64), torch.randn(300, dtype=torch.float64)
    full = float(disco_sq(x, x + y))
    monkeypatch.setattr(disco, "_BLOCK_ELEMENTS", 1000)  # 3 rows a block
    assert float(disco_sq(x, x + y)) == pytest.approx(full, rel=1e-12)


def _weighted_pair(n, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dtype=dtype, generator=gen)
    y = x.abs() + torch.randn(n, dtype=dtype, generator=gen)
    w = torch.rand(n, dtype=dtype, generator=gen) * 3 + 0.1
    return x, y, w


@pytest.mark.parametrize("block_elements", [997, 1 << 22])  # many ragged blocks; one block
def test_blocked_disco_equals_dense_definition_with_weights(monkeypatch, block_elements):
    import offline.ad.disco as disco

    monkeypatch.setattr(disco, "_BLOCK_ELEMENTS", block_elements)
    x, y, w = _weighted_pair(1500, 7)
    assert float(disco_sq(x, y, w)) == pytest.approx(float(dense_disco_sq(x, y, w)), abs=1e-12)
    # float32 (what training uses): within 1e-6 of the float64 dense value
    assert float(disco_sq(x.float(), y.float(), w.float())) == pytest.approx(
        float(dense_disco_sq(x, y, w)), abs=1e-7
    )


def test_dense_reference_matches_dcor_package():
    # the reference itself is checked against an independent implementation (unit weights)
    x, y, _ = _weighted_pair(400, 8)
    expected = dcor.distance_correlation_sqr(x.numpy(), y.numpy())
    assert float(dense_disco_sq(x, y)) == pytest.approx(expected, abs=1e-12)
    assert float(disco_sq(x, y)) == pytest.approx(expected, abs=1e-12)


def test_blocked_gradients_equal_autograd_through_dense_matrices(monkeypatch):
    import offline.ad.disco as disco

    monkeypatch.setattr(disco, "_BLOCK_ELEMENTS", 5000)  # 5 rows a block
    x, y, w = _weighted_pair(1000, 9)
    grads = []
    for fn in (disco_sq, dense_disco_sq):
        a, b = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        fn(a, b, w).backward()
        grads.append((a.grad, b.grad))
    for blocked, dense in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(blocked, dense, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_batch_of_ten_thousand_in_float32_equals_float64():
    # the DoubleAE batch size: runs on CPU in bounded memory (benchmarks/bench_train.py measures it)
    x, y, w = _weighted_pair(10_000, 10, dtype=torch.float32)
    x.requires_grad_(True)
    d = disco_sq(x, y, w)
    d.backward()
    assert torch.isfinite(x.grad).all()
    with torch.no_grad():
        exact = float(disco_sq(x.double(), y.double(), w.double()))
    assert float(d.detach()) == pytest.approx(exact, abs=1e-6)


def test_autocast_does_not_lower_disco_precision():
    x, y, w = _weighted_pair(2000, 11, dtype=torch.float32)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        inside = disco_sq(x, y, w)
    assert inside.dtype == torch.float32
    assert float(inside) == pytest.approx(float(disco_sq(x, y, w)), abs=1e-7)


@pytest.mark.gpu
def test_cuda_disco_at_batch_ten_thousand_under_bf16_autocast_matches_cpu():
    x, y, w = _weighted_pair(10_000, 12, dtype=torch.float32)
    xc = x.cuda().requires_grad_(True)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        d = disco_sq(xc, y.cuda(), w.cuda())
    d.backward()
    xr = x.clone().requires_grad_(True)
    ref = disco_sq(xr, y, w)
    ref.backward()
    assert d.dtype == torch.float32 and float(d.detach()) == pytest.approx(
        float(ref.detach()), abs=1e-6
    )
    torch.testing.assert_close(xc.grad.cpu(), xr.grad, rtol=1e-3, atol=1e-7)
