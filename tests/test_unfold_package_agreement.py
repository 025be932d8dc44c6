"""Our OmniFold and the reference ``omnifold`` package (TensorFlow) unfold the same mean.

On the Gaussian toy (truth N(0, 1), prior N(0.2, 0.8²), smearing σ = 0.5) both run on the
same events with the same number of iterations; the unfolded means must agree within 3σ
of their statistical errors added in quadrature (each the weighted mean's error,
√Σw²(x−μ)² / Σw), and each must have moved at least half-way from the prior's mean to the
truth's, so that two methods stuck at the prior cannot pass. Ours averages 4 ensemble
members so that its training noise stays below the statistical error (see
test_unfold_mean_shift.py); the package runs its default single network.

The package is a benchmark-only dependency (``pip install -e '.[bench]'``): without it
the test is skipped.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from offline.unfold import OmniFoldConfig, gaussian_toy, omnifold

N, ITERATIONS = 5_000, 2
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_unfold.py"


def _mean_and_error(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    mean = float(np.sum(w * x) / np.sum(w))
    return mean, float(np.sqrt(np.sum(w**2 * (x - mean) ** 2)) / np.sum(w))


def _bench_module():
    # the benchmark holds the one call of the package's API; load it by path
    spec = importlib.util.spec_from_file_location("bench_unfold", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
def test_package_and_ours_agree_on_unfolded_gaussian_mean():
    pytest.importorskip(
        "omnifold", reason="optional benchmark dependency: pip install -e '.[bench]'"
    )
    problem = gaussian_toy(N, seed=21)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are shared
    try:
        ours = omnifold(
            **problem.omnifold_inputs(),
            config=OmniFoldConfig(iterations=ITERATIONS, ensembles=4, batch_size=2048, seed=5),
        ).weights
    finally:
        torch.set_num_threads(threads)
    package, _, note = _bench_module().run_package(problem, ITERATIONS, threads=1, seed=5)
    assert package is not None, note

    x = problem.sim_gen[:, 0]
    truth, prior = float(problem.data_gen[:, 0].mean()), float(x.mean())
    (m_ours, e_ours), (m_pkg, e_pkg) = _mean_and_error(x, ours), _mean_and_error(x, package)
    combined = float(np.hypot(e_ours, e_pkg))
    assert abs(m_ours - m_pkg) <= 3 * combined, (
        f"means differ: ours {m_ours:.4f} ± {e_ours:.4f}, package {m_pkg:.4f} ± {e_pkg:.4f}"
    )
    for name, mean in (("ours", m_ours), ("package", m_pkg)):
        assert abs(mean - truth) <= 0.5 * abs(prior - truth), (
            f"{name}: unfolded mean {mean:.4f} not half-way from the prior {prior:.4f} "
            f"to the truth {truth:.4f}"
        )


def test_comparison_over_samples_ranks_by_the_means_and_pairs_the_differences():
    """``--toys``: means and standard errors per method, the paired difference, summed CPU
    time; checked against the statistics module on numbers chosen by hand."""
    bench = _bench_module()
    ours, package = [1.0, 2.0, 4.0], [1.5, 1.5, 3.5]
    records = [
        {
            "example": "gaussian",
            "toy_seed": 3 + i,
            "simulated_events": 10,
            "data_events": 11,
            "iterations": 3,
            "threads": {"ours": 1, "package": 1},
            "ours": {},
            "package": "p",
            "triangular_discriminator_x1e3": {
                bench.OURS: {"x": o},
                bench.PACKAGE: {"x": p},
                "ibu": {"x": 1.0},
                "prior": {"x": 30.0},
            },
            "cpu_seconds": {"ours": 1.0 + i, "package": 10.0},
        }
        for i, (o, p) in enumerate(zip(ours, package, strict=True))
    ]
    out = bench.over_toys(records)
    assert out["triangular_discriminator_x1e3"][bench.OURS]["x"] == pytest.approx(7 / 3)
    assert out["triangular_discriminator_sem"][bench.OURS]["x"] == pytest.approx(
        statistics.stdev(ours) / math.sqrt(3)
    )
    differences = [o - p for o, p in zip(ours, package, strict=True)]
    assert out["ours_minus_package"]["x"]["mean"] == pytest.approx(statistics.mean(differences))
    assert out["ours_minus_package"]["x"]["sem"] == pytest.approx(
        statistics.stdev(differences) / math.sqrt(3)
    )
    # 7/3 > 6.5/3: the package wins on the mean although ours wins the first sample
    assert out["ours_at_most_package"] == {"x": False}
    assert out["time_ratio"] == pytest.approx(6 / 30)
    assert out["targets_met"] == {"time": True, "discriminator": False}
    assert out["toy_seeds"] == [3, 4, 5]
