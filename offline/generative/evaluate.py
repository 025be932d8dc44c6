"""How close generated showers are to reference showers: CaloChallenge-style metrics.

- High-level features (as the challenge's ``HighLevelFeatures.py``): layer energies,
  E_tot/E_inc, per layer the energy-weighted centre and width in r and, for
  layers binned in α, in x = r cos α and y = r sin α (the challenge's η/φ
  directions, mm), and the sparsity (fraction of empty voxels).
- Wasserstein-1 distance per feature (``scipy.stats.wasserstein_distance``), in
  the feature's own unit (log10 MeV for energies, mm for centres/widths).
- Classifier two-sample test (arXiv 2410.21611, sec. 4): an MLP learns to tell
  reference from generated showers at the same incident energies; its ROC AUC on
  a held-out split is 0.5 for indistinguishable samples and 1 for disjoint ones.
  Low level: [log10 E_inc, voxel/E_inc]; high level: [log10 E_inc, features].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from sklearn.metrics import roc_auc_score
from torch import nn

from offline.generative.diffusion import layer_energies
from offline.generative.geometry import DATASET1_PHOTONS, Geometry

ENERGY_FLOOR_MEV = 1e-3  # log10 of an empty layer's energy is taken at 1 keV


def high_level_features(
    incident_energies: np.ndarray, showers: np.ndarray, geometry: Geometry = DATASET1_PHOTONS
) -> dict[str, np.ndarray]:
    """Named per-shower features (each (N,)), in a fixed order."""
    x = np.asarray(showers, dtype=np.float64)
    e_inc = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    el = layer_energies(x, geometry)
    feats: dict[str, np.ndarray] = {}
    for i, layer in enumerate(geometry.layers):
        feats[f"log10_E_layer{layer.id}"] = np.log10(el[:, i] + ENERGY_FLOOR_MEV)
    feats["Etot_over_Einc"] = el.sum(axis=1) / e_inc
    coords = {"r": geometry.voxel_r, "x": geometry.voxel_x, "y": geometry.voxel_y}
    for i, layer in enumerate(geometry.layers):
        sl = geometry.layer_slice(i)
        e = x[:, sl]
        norm = e.sum(axis=1) + 1e-16
        for axis in ("x", "y", "r") if layer.n_alpha > 1 else ("r",):
            c = coords[axis][sl]
            centre = (e * c).sum(axis=1) / norm
            second = (e * c * c).sum(axis=1) / norm
            feats[f"centre_{axis}_layer{layer.id}"] = centre
            feats[f"width_{axis}_layer{layer.id}"] = np.sqrt(np.clip(second - centre**2, 0.0, None))
        feats[f"sparsity_layer{layer.id}"] = (e <= 0).mean(axis=1)
    return feats


def w1_distances(
    reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]
) -> dict[str, float]:
    """Wasserstein-1 distance of every feature (same keys as the inputs)."""
    return {k: float(wasserstein_distance(reference[k], generated[k])) for k in reference}


def low_level_inputs(incident_energies: np.ndarray, showers: np.ndarray) -> np.ndarray:
    e = np.asarray(incident_energies, dtype=np.float64).reshape(-1, 1)
    return np.concatenate([np.log10(e), np.asarray(showers, dtype=np.float64) / e], axis=1)


def high_level_inputs(incident_energies: np.ndarray, features: dict[str, np.ndarray]) -> np.ndarray:
    e = np.asarray(incident_energies, dtype=np.float64).reshape(-1, 1)
    return np.concatenate([np.log10(e), np.stack(list(features.values()), axis=1)], axis=1)


@dataclass
class ClassifierConfig:
    """The two-sample classifier (the challenge uses 2×2048, 50 epochs; smaller is fine for checks)."""

    hidden: int = 256
    layers: int = 2
    epochs: int = 30
    batch_size: int = 512
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"


def classifier_auc(
    reference: np.ndarray, generated: np.ndarray, config: ClassifierConfig | None = None
) -> float:
    """ROC AUC of an MLP separating reference (0) from generated (1) rows on a held-out 20 %.

    Both samples are cut to the same size; 60/20/20 train/validation/test; inputs
    standardised on the training part; the epoch with the lowest validation loss is kept.
    """
    from offline.distributed import pick_device

    config = config or ClassifierConfig()
    n = min(len(reference), len(generated))
    if n < 10:
        raise ValueError(f"classifier test needs at least 10 showers per sample, got {n}")
    rng = np.random.default_rng(config.seed)
    x = np.concatenate(
        [
            reference[rng.permutation(len(reference))[:n]],
            generated[rng.permutation(len(generated))[:n]],
        ]
    )
    y = np.concatenate([np.zeros(n), np.ones(n)])
    perm = rng.permutation(2 * n)
    x, y = x[perm], y[perm]
    n_tr, n_va = int(0.6 * 2 * n), int(0.2 * 2 * n)
    mean, std = x[:n_tr].mean(axis=0), x[:n_tr].std(axis=0) + 1e-8
    x = np.clip((x - mean) / std, -50, 50)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.float32, device=device)
    tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, None)
    mods: list[nn.Module] = []
    width = x.shape[1]
    for _ in range(config.layers):
        mods += [nn.Linear(width, config.hidden), nn.LeakyReLU()]
        width = config.hidden
    net = nn.Sequential(*mods, nn.Linear(width, 1)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    bce = nn.BCEWithLogitsLoss()
    best, best_state = np.inf, None
    gen = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        net.train()
        order = torch.randperm(n_tr, generator=gen).to(device)
        for start in range(0, n_tr, config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = bce(net(xt[tr][idx]).squeeze(1), yt[tr][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(bce(net(xt[va]).squeeze(1), yt[va]))
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in net.state_dict().items()}
    if best_state is None:
        raise ValueError(f"classifier: no finite validation loss in {config.epochs} epochs")
    net.load_state_dict(best_state)
    with torch.no_grad():
        score = net(xt[te]).squeeze(1).float().cpu().numpy()
    return float(roc_auc_score(y[te], score))


def evaluate_sample(
    reference_energies: np.ndarray,
    reference_showers: np.ndarray,
    energies: np.ndarray,
    showers: np.ndarray,
    ms_per_shower: float | None,
    geometry: Geometry = DATASET1_PHOTONS,
    classifier: ClassifierConfig | None = None,
) -> dict[str, Any]:
    """The metrics.json entry of one sampler: AUCs, W1 per feature, time per shower."""
    ref_f = high_level_features(reference_energies, reference_showers, geometry)
    gen_f = high_level_features(energies, showers, geometry)
    return {
        "auc_low_level": classifier_auc(
            low_level_inputs(reference_energies, reference_showers),
            low_level_inputs(energies, showers),
            classifier,
        ),
        "auc_high_level": classifier_auc(
            high_level_inputs(reference_energies, ref_f),
            high_level_inputs(energies, gen_f),
            classifier,
        ),
        "w1": w1_distances(ref_f, gen_f),
        "ms_per_shower": ms_per_shower,
        "showers": len(showers),
    }
