"""Built-in unfolding problems with known truth: a Gaussian toy and Pythia 8 jets.

Each is an ``UnfoldingProblem``: the simulation (reco, gen, pass flags, prior weights),
the pseudo-data at reco level, and the pseudo-data's own particle level ("truth") that
only the metrics look at. The jets also carry their particles, the inputs of the
particle-level classifiers (``deepsets``, ``transformer``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offline.artifacts import atomic_path
from offline.unfold.ibu import ibu_samples
from offline.unfold.jets import (
    OBSERVABLE_LABELS,
    OBSERVABLES,
    classifier_features,
    generate_jets,
)


@dataclass
class UnfoldingProblem:
    name: str
    observables: list[str]
    sim_reco: np.ndarray  # (N, F)
    sim_gen: np.ndarray  # (N, F)
    data_reco: np.ndarray  # (M, F)
    data_gen: np.ndarray  # (M, F) truth, for metrics only
    bins: dict[str, np.ndarray]  # per observable, used at gen and reco level
    pass_reco: np.ndarray | None = None
    pass_gen: np.ndarray | None = None
    data_pass_reco: np.ndarray | None = None
    data_pass_gen: np.ndarray | None = None
    sim_weights: np.ndarray | None = None
    data_weights: np.ndarray | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # (N, P, F) zero-padded particle sets for particle-level classifiers: keys sim_reco,
    # sim_gen, data_reco (rows aligned with the arrays above); None: observables only
    particles: dict[str, np.ndarray] | None = None

    def flags(self) -> dict[str, np.ndarray]:
        """Pass flags with ``True`` filled in where the problem has none."""
        n, m = len(self.sim_reco), len(self.data_reco)
        ones = lambda k: np.ones(k, dtype=bool)  # noqa: E731
        return {
            "pass_reco": ones(n) if self.pass_reco is None else self.pass_reco,
            "pass_gen": ones(n) if self.pass_gen is None else self.pass_gen,
            "data_pass_reco": ones(m) if self.data_pass_reco is None else self.data_pass_reco,
            "data_pass_gen": ones(m) if self.data_pass_gen is None else self.data_pass_gen,
        }

    def ibu(self, iterations: int, data_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """IBU of each observable alone (same bins at reco and gen): the unfolded gen
        histograms. ``data_weights`` replaces the data's own weights (e.g. a bootstrap)."""
        f = self.flags()
        return {
            obs: ibu_samples(
                self.sim_reco[:, j],
                self.sim_gen[:, j],
                self.data_reco[:, j],
                self.bins[obs],
                self.bins[obs],
                iterations,
                pass_reco=f["pass_reco"],
                pass_gen=f["pass_gen"],
                data_pass_reco=f["data_pass_reco"],
                sim_weights=self.sim_weights,
                data_weights=self.data_weights if data_weights is None else data_weights,
            )
            for j, obs in enumerate(self.observables)
        }

    def omnifold_inputs(
        self, particles: bool = False, event_features: bool = True
    ) -> dict[str, Any]:
        """Keyword arguments for ``omnifold``: the observables, or with ``particles`` the
        particle sets as classifier inputs, each real particle also carrying its event's
        observables when ``event_features`` (see :func:`with_event_features`)."""
        f = self.flags()
        inputs = {"sim_reco": self.sim_reco, "sim_gen": self.sim_gen, "data_reco": self.data_reco}
        if particles:
            if self.particles is None:
                raise ValueError(
                    f"{self.name}: no particle arrays; particle-level classifiers need an example "
                    "that has them (jets)"
                )
            inputs = (
                {k: with_event_features(self.particles[k], inputs[k]) for k in inputs}
                if event_features
                else self.particles
            )
        return dict(
            sim_reco=inputs["sim_reco"],
            sim_gen=inputs["sim_gen"],
            data_reco=inputs["data_reco"],
            pass_reco=f["pass_reco"],
            pass_gen=f["pass_gen"],
            data_pass_reco=f["data_pass_reco"],
            sim_weights=self.sim_weights,
            data_weights=self.data_weights,
        )


def with_event_features(particles: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(N, P, F + G) particle sets: each real particle of ``particles`` (N, P, F) followed by
    its event's ``features`` (N, G); padding rows stay all zero.

    With 10³–10⁴ jets the particle classifiers do not learn the jet substructure from the
    constituents alone (their weights barely move the prior); with the event's observables
    beside the particles they start from what MultiFold sees (README, unfolding section).
    """
    particles = np.asarray(particles)
    features = np.asarray(features, dtype=particles.dtype)
    if features.ndim == 1:
        features = features[:, None]
    if particles.ndim != 3 or features.ndim != 2 or len(features) != len(particles):
        raise ValueError(
            f"with_event_features: expected (N, P, F) particles and (N, G) features, got "
            f"{particles.shape} and {features.shape}"
        )
    real = (particles != 0).any(axis=-1, keepdims=True)
    broadcast = np.where(real, features[:, None, :], np.zeros((), dtype=particles.dtype))
    return np.concatenate([particles, broadcast], axis=-1)


def gaussian_toy(
    n_sim: int = 100_000,
    n_data: int | None = None,
    seed: int = 0,
    reco_efficiency: float = 1.0,
) -> UnfoldingProblem:
    """Truth N(0, 1), simulation N(0.2, 0.8) at particle level, Gaussian smearing σ = 0.5.

    The setup of the OmniFold paper's toy (``hep-lbdl/OmniFold``). With
    ``reco_efficiency`` < 1, that fraction of events passes reco at random (events
    failing reco get the placeholder value 0), to exercise the efficiency handling.
    """
    if n_sim < 2:
        raise ValueError(f"events must be >= 2, got {n_sim}")
    n_data = n_sim if n_data is None else n_data
    rng = np.random.default_rng(seed)
    sim_gen = rng.normal(0.2, 0.8, n_sim)
    data_gen = rng.normal(0.0, 1.0, n_data)
    sim_reco = sim_gen + rng.normal(0.0, 0.5, n_sim)
    data_reco = data_gen + rng.normal(0.0, 0.5, n_data)
    pass_reco = data_pass = None
    if reco_efficiency < 1.0:
        pass_reco = rng.random(n_sim) < reco_efficiency
        data_pass = rng.random(n_data) < reco_efficiency
        sim_reco = np.where(pass_reco, sim_reco, 0.0)
        data_reco = np.where(data_pass, data_reco, 0.0)
    return UnfoldingProblem(
        name="gaussian",
        observables=["x"],
        sim_reco=sim_reco[:, None],
        sim_gen=sim_gen[:, None],
        data_reco=data_reco[:, None],
        data_gen=data_gen[:, None],
        bins={"x": np.linspace(-4.0, 4.0, 41)},
        pass_reco=pass_reco,
        data_pass_reco=data_pass,
        labels={"x": "$x$"},
    )


# the binning of the standard comparison ("Tools for Unbinned Unfolding", arXiv 2503.09720)
JET_BINS = {
    "mass": np.linspace(0.0, 75.0, 51),
    "multiplicity": np.linspace(0.0, 80.0, 81),
    "width": np.linspace(0.0, 0.6, 51),
    "log_rho": np.linspace(-14.0, -2.0, 51),
    "tau21": np.linspace(0.0, 1.2, 51),
    "z_g": np.linspace(0.0, 0.5, 51),
}


def _cached_jets(
    n: int, tune: str, seed: int, cache_dir: Path | None, progress: bool
) -> dict[str, np.ndarray]:
    if cache_dir is None:
        return generate_jets(n, tune, seed, progress=progress)
    # v2: with the particle arrays; files of the observables-only layout are not read
    path = Path(cache_dir) / f"unfold_jets_v2_{tune}_{n}_{seed}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    sample = generate_jets(n, tune, seed, progress=progress)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **sample)  # the padding compresses well
    return sample


def jet_problem(
    name: str, sim: dict[str, np.ndarray], data: dict[str, np.ndarray]
) -> UnfoldingProblem:
    """An unfolding problem from two jet samples as :func:`generate_jets` returns them."""
    # events failing both levels carry no information for either step
    keep_sim = sim["pass_reco"] | sim["pass_gen"]
    keep_data = data["pass_reco"] | data["pass_gen"]
    return UnfoldingProblem(
        name=name,
        observables=list(OBSERVABLES),
        sim_reco=sim["reco"][keep_sim],
        sim_gen=sim["gen"][keep_sim],
        data_reco=data["reco"][keep_data],
        data_gen=data["gen"][keep_data],
        bins=dict(JET_BINS),
        pass_reco=sim["pass_reco"][keep_sim],
        pass_gen=sim["pass_gen"][keep_sim],
        data_pass_reco=data["pass_reco"][keep_data],
        data_pass_gen=data["pass_gen"][keep_data],
        labels=dict(OBSERVABLE_LABELS),
        particles={
            "sim_reco": classifier_features(sim["reco_particles"][keep_sim]),
            "sim_gen": classifier_features(sim["gen_particles"][keep_sim]),
            "data_reco": classifier_features(data["reco_particles"][keep_data]),
        },
    )


def jets_example(
    n: int = 20_000,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> UnfoldingProblem:
    """Pythia 8 dijets: default tune = simulation, modified tune = data (see ``jets.py``).

    The quick jets example: ``n`` events of each are generated in one go (about half pass
    the jet selection at each level); they are cached in ``cache_dir`` when given, since
    generation runs at a few hundred events per second per core. The problem carries the
    leading jets' particles (``jets.PARTICLE_FEATURES``) for the particle-level classifiers.
    """
    cache = None if cache_dir is None else Path(cache_dir)
    sim = _cached_jets(n, "simulation", seed, cache, progress)
    data = _cached_jets(n, "data", seed + 1, cache, progress)
    return jet_problem("jets", sim, data)


def vincia_jets_example(
    n: int = 20_000,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
) -> UnfoldingProblem:
    """Pythia 8 dijets: Pythia's default shower = simulation, the Vincia shower = data.

    Two shower models, so the samples differ the way two generators do. Produced as tasks
    of 1000 events by the event generator's engine (``production.produce_jets``: in this
    process, on a Dask cluster with ``workers``/``scheduler``), cached in ``cache_dir``
    and resumable; ``n`` is rounded up to whole tasks. Vincia runs at about 30 jets per
    CPU second, Pythia's default shower at about 150.
    """
    from offline.unfold.production import produce_jets

    sim = produce_jets(
        n, "simulation", seed, cache_dir, workers=workers, scheduler=scheduler, progress=progress
    )
    data = produce_jets(
        n, "vincia", seed + 1, cache_dir, workers=workers, scheduler=scheduler, progress=progress
    )
    return jet_problem("jets-vincia", sim, data)


EXAMPLES: dict[str, Callable[..., UnfoldingProblem]] = {
    "gaussian": gaussian_toy,
    "jets": jets_example,
    "jets-vincia": vincia_jets_example,
}
