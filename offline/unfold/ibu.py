"""Iterative Bayesian unfolding (D'Agostini, NIM A362 (1995) 487) of one-dimensional histograms.

The binned baseline OmniFold is compared with. Written here rather than imported
because it is a few lines of numpy and the maintained packages (RooUnfold, pyunfold)
are not in this environment; efficiency and fakes follow the same pass flags as OmniFold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _finite(name: str, arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN/inf values (first at index {int(np.flatnonzero(bad)[0])})"
        )
    return arr


@dataclass
class Response:
    """Response matrix R[j, i] = P(reco bin j, pass reco | gen bin i), with fakes per reco bin."""

    matrix: np.ndarray  # (n_reco, n_gen)
    efficiency: np.ndarray  # (n_gen,) Σ_j R[j, i]
    fake_fraction: np.ndarray  # (n_reco,) fraction of reco-bin content without a gen partner
    prior: np.ndarray  # (n_gen,) simulated gen histogram (events passing gen)


def response(
    sim_reco: np.ndarray,
    sim_gen: np.ndarray,
    reco_bins: np.ndarray,
    gen_bins: np.ndarray,
    *,
    pass_reco: np.ndarray | None = None,
    pass_gen: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> Response:
    """Fill the response from simulation. Events outside the gen range count as failing gen."""
    sim_reco = _finite("sim_reco", sim_reco)
    sim_gen = _finite("sim_gen", sim_gen)
    n = len(sim_reco)
    if len(sim_gen) != n:
        raise ValueError(f"sim_gen: length {len(sim_gen)} does not match sim_reco ({n} events)")
    w = np.ones(n) if weights is None else _finite("sim_weights", weights)
    pr = np.ones(n, bool) if pass_reco is None else np.asarray(pass_reco, bool)
    pg = np.ones(n, bool) if pass_gen is None else np.asarray(pass_gen, bool)
    for name, arr in (("weights", w), ("pass_reco", pr), ("pass_gen", pg)):
        if len(arr) != n:
            raise ValueError(f"{name}: length {len(arr)} does not match sim_reco ({n} events)")
    ir = np.digitize(sim_reco, reco_bins) - 1
    ig = np.digitize(sim_gen, gen_bins) - 1
    nr, ng = len(reco_bins) - 1, len(gen_bins) - 1
    in_reco = pr & (ir >= 0) & (ir < nr)
    in_gen = pg & (ig >= 0) & (ig < ng)
    prior = np.bincount(ig[in_gen], weights=w[in_gen], minlength=ng)
    both = in_reco & in_gen
    joint = np.zeros((nr, ng))
    np.add.at(joint, (ir[both], ig[both]), w[both])
    reco_total = np.bincount(ir[in_reco], weights=w[in_reco], minlength=nr)
    fakes = np.bincount(ir[in_reco & ~in_gen], weights=w[in_reco & ~in_gen], minlength=nr)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.where(prior > 0, joint / prior, 0.0)
        fake_fraction = np.where(reco_total > 0, fakes / reco_total, 0.0)
    return Response(
        matrix=matrix, efficiency=matrix.sum(axis=0), fake_fraction=fake_fraction, prior=prior
    )


def ibu(
    data: np.ndarray, resp: Response, iterations: int, prior: np.ndarray | None = None
) -> np.ndarray:
    """Unfold the reco histogram ``data``; returns the gen histogram after ``iterations`` steps.

    t⁽ᵏ⁺¹⁾_i = (1/ε_i) Σ_j P(i|j) d_j (1 − fake_j), P(i|j) = R_ji t⁽ᵏ⁾_i / Σ_l R_jl t⁽ᵏ⁾_l.
    """
    data = _finite("data", data)
    if data.shape != resp.fake_fraction.shape:
        raise ValueError(
            f"data: {data.shape[0]} reco bins, response has {resp.fake_fraction.shape[0]}"
        )
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    t = np.asarray(resp.prior if prior is None else prior, dtype=float).copy()
    signal = data * (1.0 - resp.fake_fraction)
    r = resp.matrix
    for _ in range(iterations):
        folded = r @ t
        with np.errstate(invalid="ignore", divide="ignore"):
            posterior = np.where(folded[:, None] > 0, r * t[None, :] / folded[:, None], 0.0)
            t = np.where(resp.efficiency > 0, (posterior.T @ signal) / resp.efficiency, 0.0)
    return t


def ibu_samples(
    sim_reco: np.ndarray,
    sim_gen: np.ndarray,
    data_reco: np.ndarray,
    reco_bins: np.ndarray,
    gen_bins: np.ndarray,
    iterations: int,
    *,
    pass_reco: np.ndarray | None = None,
    pass_gen: np.ndarray | None = None,
    data_pass_reco: np.ndarray | None = None,
    sim_weights: np.ndarray | None = None,
    data_weights: np.ndarray | None = None,
) -> np.ndarray:
    """IBU straight from event samples of one observable: the unfolded gen histogram."""
    resp = response(
        sim_reco,
        sim_gen,
        reco_bins,
        gen_bins,
        pass_reco=pass_reco,
        pass_gen=pass_gen,
        weights=sim_weights,
    )
    data_reco = _finite("data_reco", data_reco)
    keep = (
        np.ones(len(data_reco), bool)
        if data_pass_reco is None
        else np.asarray(data_pass_reco, bool)
    )
    dw = np.ones(len(data_reco)) if data_weights is None else _finite("data_weights", data_weights)
    if len(keep) != len(data_reco) or len(dw) != len(data_reco):
        raise ValueError(
            f"data_pass_reco/data_weights: lengths differ from data_reco ({len(data_reco)} events)"
        )
    counts, _ = np.histogram(data_reco[keep], bins=reco_bins, weights=dw[keep])
    return ibu(counts, resp, iterations)
