"""Score-based diffusion for calorimeter showers, CaloScore-style (Mikuni & Nachman, arXiv 2206.11898, 2308.03847).

Two networks, so that energy is conserved by construction:

- the **layer model** generates, given the incident energy E, the total deposit as
  ``u0 = E_tot / (s E)`` and the stick-breaking fractions ``u_i = E_i / Σ_{j≥i} E_j``
  of the layer energies (CaloFlow's parametrisation, arXiv 2106.05285): any output
  maps back to non-negative layer energies that add up to exactly E_tot;
- the **voxel model** generates, given E and the layer vector, every voxel's
  fraction of its layer's energy; fractions are clipped at 0 and renormalised per
  layer, so the voxels of a layer add up to exactly the layer energy.

The layer model works in logit space (``logit(a + (1-2a) u)``, a = 1e-6). The voxel
model works on ``sqrt(fraction)`` (``VOXEL_POWER``), not on logit fractions: the
logit maps an empty voxel to -13.8 and a 1e-4 fraction to -9.2, so the per-voxel
spread of the outer voxels is ~5 logit units, and a small error of the network in
that space is a factor e^5 in energy at radii of 100-400 mm. The shower widths and
centres (energy-weighted moments in r) are dominated by exactly those voxels:
measured on 8k GFlash showers, 15 epochs, width 256×3 (W1 vs held-out GFlash,
layer 2; floor 0.25 mm): logit 6.7 mm width / 2.5 mm centre_x; sqrt 2.9 / 0.23
(1.9 / 0.20 after 60 epochs, where logit did not improve with training). The
square root is also the variance-stabilising map of the spot counts (Poisson).
The layer vector is standardised per dimension. The voxel vector is standardised
conditionally: every voxel's mean and variance are cubic polynomials in ln E
(``VOXEL_DEGREE``), fitted on the training data, so the network models the
residual around the energy dependence instead of having to learn it (the network
alone gave outer-ring occupancies nearly independent of E). These statistics are
averaged over the α bins of each ring, so that rotating the α bins (the shower is
symmetric about its axis) or reflecting them maps standardised vectors onto
standardised vectors: training draws a random rotation/reflection per shower
(``DiffusionConfig.augment``), 20× more distinct showers for the voxel model.
Empty voxels are decided by cuts calibrated per (energy decile, ring) on each
sampler's own output (``ShowerDiffusion.calibrate_zeros``): a network smears the
point mass of empty voxels, and a fixed cut left about half of them as spurious
small deposits. Measured (same 8k/2k showers, 15 epochs): high-level AUC 1.000
(logit) → 1.000 (sqrt, conditional) → 0.949 (+ calibrated cuts), 0.898 at 60 epochs.

The diffusion is variance preserving with the cosine schedule
``α_t = cos(πt/2)``, ``σ_t = sin(πt/2)``, ``z_t = α_t x + σ_t ε``; the networks
predict ``v = α_t ε - σ_t x`` (Salimans & Ho, arXiv 2202.00512, as CaloScore v2);
sampling is deterministic DDIM on a uniform grid of N steps. Training uses CUDA
with bf16 autocast when present, DDP under ``torchrun``, CPU otherwise.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from offline.artifacts import atomic_path
from offline.generative.geometry import DATASET1_PHOTONS, Geometry

LOGIT_EPS = 1e-6
STD_FLOOR = 1e-2
VOXEL_POWER = 0.5  # voxel model input: fraction ** VOXEL_POWER; 0 selects the logit (old models)
VOXEL_DEGREE = 3  # per-voxel mean and variance: polynomials of this degree in the condition (scaled ln E)
ZERO_BINS = 10  # incident-energy bins (training deciles) of the calibrated empty-voxel cuts


# ---------------------------------------------------------------- preprocessing


def _logit(u: np.ndarray) -> np.ndarray:
    u = LOGIT_EPS + (1 - 2 * LOGIT_EPS) * np.clip(u, 0.0, 1.0)
    return np.log(u) - np.log1p(-u)


def _inv_logit(x: np.ndarray) -> np.ndarray:
    return np.clip((1.0 / (1.0 + np.exp(-x)) - LOGIT_EPS) / (1 - 2 * LOGIT_EPS), 0.0, 1.0)


def _powers(c: np.ndarray, k: int) -> np.ndarray:
    """(N, k) matrix [1, c, c², ...] of the scaled ln E condition."""
    return np.asarray(c, dtype=np.float64).reshape(-1, 1) ** np.arange(k)


def _voxel_forward(frac: np.ndarray, power: float) -> np.ndarray:
    return _logit(frac) if power == 0 else np.clip(frac, 0.0, 1.0) ** power


def _voxel_inverse(y: np.ndarray, power: float) -> np.ndarray:
    return _inv_logit(y) if power == 0 else np.clip(y, 0.0, 1.0) ** (1.0 / power)


def alpha_symmetric(values: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Per-voxel statistics averaged over the α bins of each (layer, r) ring."""
    out = np.array(values, dtype=np.float64, copy=True)
    for i, layer in enumerate(geometry.layers):
        if layer.n_alpha > 1:
            sl = geometry.layer_slice(i)
            ring = out[sl].reshape(layer.n_alpha, layer.n_r).mean(axis=0)
            out[sl] = np.tile(ring, layer.n_alpha)
    return out


def alpha_permutations(geometry: Geometry) -> np.ndarray:
    """(2 n_alpha, n_voxels) index maps: every rotation of the α bins, with and without reflection.

    All layers with α bins must have the same n_alpha (true for the CaloChallenge
    datasets); layers with one α bin map to themselves. ``x[:, perm]`` is the rotated shower.
    """
    n_alpha = {layer.n_alpha for layer in geometry.layers if layer.n_alpha > 1}
    if len(n_alpha) > 1:
        raise ValueError(f"{geometry.name}: layers have different α binnings {sorted(n_alpha)}; cannot rotate them together")
    na = n_alpha.pop() if n_alpha else 1
    perms = []
    for reflect in (False, True):
        for shift in range(na):
            idx = []
            for i, layer in enumerate(geometry.layers):
                base = int(geometry.offsets[i])
                for a in range(layer.n_alpha):
                    src = a if layer.n_alpha == 1 else ((-1 - a if reflect else a) + shift) % na
                    idx.extend(base + src * layer.n_r + r for r in range(layer.n_r))
            perms.append(idx)
    return np.asarray(perms, dtype=np.int64)


def voxel_rings(geometry: Geometry) -> np.ndarray:
    """Ring index (one per (layer, r bin)) of every voxel: voxels related by an α rotation share it."""
    out, k = [], 0
    for layer in geometry.layers:
        out.append(k + np.tile(np.arange(layer.n_r), layer.n_alpha))
        k += layer.n_r
    return np.concatenate(out)


def layer_energies(showers: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(N, n_layers) energy per layer."""
    return np.stack([showers[:, geometry.layer_slice(i)].sum(axis=1) for i in range(geometry.n_layers)], axis=1)


@dataclass
class ShowerTransform:
    """Maps (E, showers) to the two models' spaces and back; fitted on training data."""

    n_layers: int
    log_e_min: float
    log_e_max: float
    etot_scale: float
    layer_mean: np.ndarray
    layer_std: np.ndarray
    voxel_mean: np.ndarray  # (K, voxels): polynomial coefficients in the condition; (voxels,): constant
    voxel_std: np.ndarray  # (K, voxels): coefficients of the variance; (voxels,): constant std (old files)
    layer_lo: np.ndarray
    layer_hi: np.ndarray
    voxel_lo: np.ndarray
    voxel_hi: np.ndarray
    zero_threshold: float = 2 * LOGIT_EPS
    voxel_power: float = 0.0  # 0: logit fractions (models saved before the sqrt representation)
    # empty voxels (see ShowerDiffusion.calibrate_zeros): condition bin edges, real P(empty) and
    # the calibrated cut in the voxel representation per (energy bin, ring); empty: not fitted
    zero_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    zero_prob: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    zero_cut: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @staticmethod
    def _layer_raw(energies: np.ndarray, showers: np.ndarray, geometry: Geometry, scale: float) -> np.ndarray:
        el = layer_energies(showers.astype(np.float64), geometry)
        etot = el.sum(axis=1)
        u = [etot / (scale * energies)]
        rest = etot.copy()
        for i in range(geometry.n_layers - 1):
            u.append(np.divide(el[:, i], rest, out=np.zeros_like(rest), where=rest > 0))
            rest = rest - el[:, i]
        return _logit(np.stack(u, axis=1))

    @staticmethod
    def _voxel_raw(showers: np.ndarray, geometry: Geometry, power: float) -> np.ndarray:
        x = showers.astype(np.float64)
        el = layer_energies(x, geometry)[:, geometry.voxel_layer]
        frac = np.divide(x, el, out=np.zeros_like(x), where=el > 0)
        return _voxel_forward(frac, power)

    @staticmethod
    def _scaled_log_e(energies: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return 2 * (np.log(energies) - lo) / (hi - lo) - 1

    @classmethod
    def fit(
        cls, energies: np.ndarray, showers: np.ndarray, geometry: Geometry = DATASET1_PHOTONS, voxel_power: float = VOXEL_POWER
    ) -> ShowerTransform:
        ratio = showers.astype(np.float64).sum(axis=1) / energies
        log_e = np.log(energies)
        log_e = (float(log_e.min()), float(max(log_e.max(), log_e.min() + 1e-3)))
        scale = float(max(1.0, 1.05 * ratio.max()))
        lr = cls._layer_raw(energies, showers, geometry, scale)
        vr = cls._voxel_raw(showers, geometry, voxel_power)
        lm, ls = lr.mean(axis=0), np.maximum(lr.std(axis=0), STD_FLOOR)
        # conditional standardisation: mean and variance of every voxel as polynomials in ln E
        a = _powers(cls._scaled_log_e(energies, log_e[0], log_e[1]), VOXEL_DEGREE + 1)
        vm = np.linalg.lstsq(a, vr, rcond=None)[0]
        vv = np.linalg.lstsq(a, (vr - a @ vm) ** 2, rcond=None)[0]
        vm = np.stack([alpha_symmetric(row, geometry) for row in vm])
        vv = np.stack([alpha_symmetric(row, geometry) for row in vv])
        mean, std = a @ vm, np.sqrt(np.maximum(a @ vv, STD_FLOOR**2))
        ln = (lr - lm) / ls
        vn = (vr - mean) / std
        vlo, vhi = alpha_symmetric(vn.min(axis=0), geometry), alpha_symmetric(vn.max(axis=0), geometry)
        # generated fractions below half the 0.1 % quantile of real non-zero fractions are empty voxels
        x = showers.astype(np.float64)
        el = layer_energies(x, geometry)[:, geometry.voxel_layer]
        nonzero = (x / np.where(el > 0, el, 1.0))[x > 0]
        zero_threshold = max(2 * LOGIT_EPS, 0.5 * float(np.quantile(nonzero, 1e-3))) if nonzero.size else 2 * LOGIT_EPS
        # fraction of empty voxels per (incident-energy decile, ring): the target of calibrate_zeros
        c = cls._scaled_log_e(energies, log_e[0], log_e[1])
        edges = np.quantile(c, np.linspace(0, 1, ZERO_BINS + 1))
        rings = voxel_rings(geometry)
        empty = x <= 0
        prob = np.zeros((ZERO_BINS, rings.max() + 1))
        ebin = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, ZERO_BINS - 1)
        for b in range(ZERO_BINS):
            if (ebin == b).any():
                for r in range(prob.shape[1]):
                    prob[b, r] = empty[ebin == b][:, rings == r].mean()
        return cls(
            geometry.n_layers,
            log_e[0],
            log_e[1],
            scale,
            lm,
            ls,
            vm,
            vv,
            ln.min(axis=0),
            ln.max(axis=0),
            np.minimum(vlo, vn.min(axis=0)),
            np.maximum(vhi, vn.max(axis=0)),
            zero_threshold,
            voxel_power,
            edges,
            prob,
            np.full_like(prob, -np.inf),
        )

    def condition(self, energies: np.ndarray) -> np.ndarray:
        """ln E scaled to [-1, 1] over the training range, shape (N, 1)."""
        return self._scaled_log_e(energies, self.log_e_min, self.log_e_max).reshape(-1, 1)

    def energy_bin(self, energies: np.ndarray) -> np.ndarray:
        """Index of the incident-energy bin (of ``zero_edges``) of every shower."""
        c = self.condition(np.asarray(energies, dtype=np.float64))[:, 0]
        return np.clip(np.searchsorted(self.zero_edges, c, side="right") - 1, 0, max(len(self.zero_edges) - 2, 0))

    def voxel_stats(self, energies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-shower, per-voxel (mean, std) of the voxel representation at these incident energies."""
        if self.voxel_mean.ndim == 1:  # constant statistics (files written before conditional ones)
            return self.voxel_mean[None, :], self.voxel_std[None, :]
        a = _powers(self.condition(np.asarray(energies, dtype=np.float64)), len(self.voxel_mean))
        return a @ self.voxel_mean, np.sqrt(np.maximum(a @ self.voxel_std, STD_FLOOR**2))

    def forward(self, energies: np.ndarray, showers: np.ndarray, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
        lr = self._layer_raw(energies, showers, geometry, self.etot_scale)
        vr = self._voxel_raw(showers, geometry, self.voxel_power)
        mean, std = self.voxel_stats(energies)
        return (lr - self.layer_mean) / self.layer_std, (vr - mean) / std

    def inverse(self, energies: np.ndarray, layer_x: np.ndarray, voxel_x: np.ndarray, geometry: Geometry) -> np.ndarray:
        """Back to voxel energies in MeV: non-negative, per-layer sums = layer energies, Σ = E_tot."""
        u = _inv_logit(layer_x * self.layer_std + self.layer_mean)
        etot = u[:, 0] * self.etot_scale * energies
        el = np.empty((len(energies), geometry.n_layers))
        rest = etot.copy()
        for i in range(geometry.n_layers - 1):
            el[:, i] = rest * u[:, i + 1]
            rest = rest - el[:, i]
        el[:, -1] = rest
        mean, std = self.voxel_stats(energies)
        raw = voxel_x * std + mean
        frac = _voxel_inverse(raw, self.voxel_power)
        frac[frac < self.zero_threshold] = 0.0  # an empty voxel
        if self.zero_cut.size:
            frac[raw <= self.zero_cut[self.energy_bin(energies)][:, voxel_rings(geometry)]] = 0.0
        out = np.empty_like(frac)
        for i in range(geometry.n_layers):
            sl = geometry.layer_slice(i)
            f = frac[:, sl]
            norm = f.sum(axis=1, keepdims=True)
            f = np.where(norm > 0, f / np.where(norm > 0, norm, 1.0), 1.0 / f.shape[1])
            out[:, sl] = f * el[:, i : i + 1]
        return out.astype(np.float32)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        d = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in asdict(self).items() if isinstance(v, np.ndarray)}
        d["scalars"] = torch.tensor(
            [self.n_layers, self.log_e_min, self.log_e_max, self.etot_scale, self.zero_threshold, self.voxel_power],
            dtype=torch.float64,
        )
        return d

    @classmethod
    def from_tensors(cls, d: dict[str, torch.Tensor]) -> ShowerTransform:
        s = d["scalars"].tolist()
        arrays = {k: d[k].numpy() for k in ("layer_mean", "layer_std", "voxel_mean", "voxel_std", "layer_lo", "layer_hi", "voxel_lo", "voxel_hi")}
        power = s[5] if len(s) > 5 else 0.0  # files written before the sqrt representation: logit
        zeros = {k: d[k].numpy() for k in ("zero_edges", "zero_prob", "zero_cut") if k in d}
        return cls(int(s[0]), s[1], s[2], s[3], **arrays, zero_threshold=s[4], voxel_power=power, **zeros)


# ---------------------------------------------------------------- networks


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (no loss scaling needed), a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return _null()



def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine VP schedule: α_t = cos(πt/2), σ_t = sin(πt/2)."""
    return torch.cos(0.5 * math.pi * t), torch.sin(0.5 * math.pi * t)


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.emb = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        y = self.fc1(nn.functional.silu(self.norm(h))) + self.emb(emb)
        return h + self.fc2(nn.functional.silu(y))


class ScoreMLP(nn.Module):
    """Residual MLP predicting v from (z_t, t, condition); time enters through Fourier features."""

    def __init__(self, dim: int, cond_dim: int, width: int = 256, depth: int = 4, n_freq: int = 16) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(1000.0), n_freq)), persistent=False)
        self.embed = nn.Sequential(nn.Linear(2 * n_freq + cond_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_Block(width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        ang = t.reshape(-1, 1) * self.freqs * (0.5 * math.pi)
        emb = self.embed(torch.cat([torch.sin(ang), torch.cos(ang), cond], dim=1))
        emb = nn.functional.silu(emb)
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)


@dataclass
class DiffusionConfig:
    """Architecture and training settings (saved beside the weights)."""

    layer_width: int = 128
    layer_depth: int = 3
    voxel_width: int = 512
    voxel_depth: int = 4
    steps: int = 512
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    ema: float = 0.999
    seed: int = 0
    augment: bool = True  # random α rotation/reflection of each training shower (voxel model)


class ShowerDiffusion(nn.Module):
    """Layer model + voxel model + the fitted transform; ``steps`` is its sampling step count."""

    def __init__(self, config: DiffusionConfig, transform: ShowerTransform, geometry: Geometry = DATASET1_PHOTONS, steps: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.transform = transform
        self.geometry = geometry
        self.steps = config.steps if steps is None else steps
        nl, nv = geometry.n_layers, geometry.n_voxels
        self.layer_net = ScoreMLP(nl, 1, config.layer_width, config.layer_depth)
        self.voxel_net = ScoreMLP(nv, 1 + nl, config.voxel_width, config.voxel_depth)
        t = transform
        margin = 0.5
        self.register_buffer("layer_lo", torch.as_tensor(t.layer_lo - margin, dtype=torch.float32))
        self.register_buffer("layer_hi", torch.as_tensor(t.layer_hi + margin, dtype=torch.float32))
        self.register_buffer("voxel_lo", torch.as_tensor(t.voxel_lo - margin, dtype=torch.float32))
        self.register_buffer("voxel_hi", torch.as_tensor(t.voxel_hi + margin, dtype=torch.float32))

    # -- diffusion pieces, shared by training, sampling and distillation
    def predict_v(self, which: str, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        net = self.layer_net if which == "layer" else self.voxel_net
        return net(z, t, cond)

    def ddim_step(self, which: str, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM update z_t -> z_s (s < t); x̂ is clamped to the training range."""
        a_t, s_t = alpha_sigma(t.reshape(-1, 1))
        a_s, s_s = alpha_sigma(s.reshape(-1, 1))
        v = self.predict_v(which, z, t, cond).float()
        x_hat = a_t * z - s_t * v
        lo, hi = (self.layer_lo, self.layer_hi) if which == "layer" else (self.voxel_lo, self.voxel_hi)
        x_hat = torch.maximum(torch.minimum(x_hat, hi), lo)
        eps_hat = (z - a_t * x_hat) / s_t.clamp_min(1e-8)
        return a_s * x_hat + s_s * eps_hat

    def loss(self, layer_x: torch.Tensor, voxel_x: torch.Tensor, cond_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v-prediction MSE of both models at uniformly drawn t (voxel model conditioned on true layers)."""
        out = []
        for which, x, cond in (("layer", layer_x, cond_e), ("voxel", voxel_x, torch.cat([cond_e, layer_x], dim=1))):
            t = torch.rand(len(x), device=x.device)
            a, s = alpha_sigma(t.reshape(-1, 1))
            eps = torch.randn_like(x)
            z = a * x + s * eps
            v = a * eps - s * x
            out.append(((self.predict_v(which, z, t, cond).float() - v) ** 2).mean())
        return out[0], out[1]

    @torch.no_grad()
    def sample_latent(self, which: str, cond: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        dim = self.geometry.n_layers if which == "layer" else self.geometry.n_voxels
        z = torch.randn(len(cond), dim, device=cond.device, generator=generator)
        grid = torch.linspace(1.0, 0.0, steps + 1, device=cond.device)
        for i in range(steps):
            t = grid[i].expand(len(cond))
            z = self.ddim_step(which, z, t, grid[i + 1].expand(len(cond)), cond)
        return z

    @torch.no_grad()
    def sample_latents(
        self,
        energies: np.ndarray,
        steps: int | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised (layer, voxel) vectors for incident energies (N,) in MeV; same seed, same noise."""
        steps = self.steps if steps is None else steps
        device = torch.device(device) if device is not None else next(self.parameters()).device
        self.to(device).eval()
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
        e = np.asarray(energies, dtype=np.float64).reshape(-1)
        cond = torch.as_tensor(self.transform.condition(e), dtype=torch.float32, device=device)
        with autocast_for(device):
            lx = self.sample_latent("layer", cond, steps, gen)
            vx = self.sample_latent("voxel", torch.cat([cond, lx], dim=1), steps, gen)
        return lx.float(), vx.float()

    @torch.no_grad()
    def sample(
        self,
        energies: np.ndarray,
        steps: int | None = None,
        batch_size: int = 10_000,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> np.ndarray:
        """Showers (N, voxels) in MeV for incident energies (N,) in MeV."""
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        seed = int(seed) if seed is not None else int(np.random.default_rng().integers(2**31 - 1))
        out = []
        for k, start in enumerate(range(0, len(energies), batch_size)):
            e = energies[start : start + batch_size]
            lx, vx = self.sample_latents(e, steps, seed + k, device)
            out.append(self.transform.inverse(e, lx.cpu().numpy().astype(np.float64), vx.cpu().numpy().astype(np.float64), self.geometry))
        return np.concatenate(out) if out else np.zeros((0, self.geometry.n_voxels), np.float32)

    @torch.no_grad()
    def calibrate_zeros(self, cond: torch.Tensor, max_showers: int = 10_000, seed: int = 0) -> None:
        """Set the empty-voxel cuts so that this sampler's showers are as sparse as the training data.

        The representation maps an empty voxel to one value (0 for sqrt), and a network
        smears that point mass out: about half of the samples land above it and become
        spurious small deposits, mostly at large r, which widens the showers and makes
        the sparsity independent of E (measured: 0.23 instead of 0.49 empty at 1-10 GeV).
        For every (energy decile, ring) the cut is the quantile of this sampler's own
        output at the training data's fraction of empty voxels there. ``cond`` are
        training conditions (``TrainingData.cond``); only the model's samples and the
        training statistics are used. Call it again after changing the weights or steps.
        """
        t = self.transform
        if not t.zero_prob.size:
            return
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(cond), generator=gen)[:max_showers]
        c = cond[pick].detach().cpu().double().numpy().reshape(-1)
        energies = np.exp((c + 1) / 2 * (t.log_e_max - t.log_e_min) + t.log_e_min)
        _, vx = self.sample_latents(energies, seed=seed)
        mean, std = t.voxel_stats(energies)
        raw = vx.cpu().double().numpy() * std + mean
        rings = voxel_rings(self.geometry)
        ebin = t.energy_bin(energies)
        cut = np.full_like(t.zero_prob, -np.inf)
        for b in range(cut.shape[0]):
            rows = raw[ebin == b]
            for r in range(cut.shape[1]):
                p = t.zero_prob[b, r]
                if p > 0 and len(rows):
                    cut[b, r] = np.quantile(rows[:, rings == r], p)
        t.zero_cut = cut

    # -- persistence: safetensors (weights + transform) and JSON (config)
    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        tensors.update({f"transform.{k}": v for k, v in self.transform.to_tensors().items()})
        meta = {"config": json.dumps(asdict(self.config)), "steps": str(self.steps)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], geometry: Geometry = DATASET1_PHOTONS, device: str | torch.device = "cpu") -> ShowerDiffusion:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such model file")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise ValueError(f"{path}: not a shower diffusion model (no config in the safetensors metadata)")
        tensors = load_file(str(path))
        transform = ShowerTransform.from_tensors({k.removeprefix("transform."): v for k, v in tensors.items() if k.startswith("transform.")})
        model = cls(DiffusionConfig(**json.loads(meta["config"])), transform, geometry, steps=int(meta["steps"]))
        model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
        return model.to(device).eval()


# ---------------------------------------------------------------- training


@dataclass
class TrainingData:
    """Tensors the models train on: standardised layer vector, voxel vector, condition."""

    layer_x: torch.Tensor
    voxel_x: torch.Tensor
    cond: torch.Tensor

    def __len__(self) -> int:
        return len(self.cond)

    @classmethod
    def build(cls, model: ShowerDiffusion, energies: np.ndarray, showers: np.ndarray, device: torch.device) -> TrainingData:
        lx, vx = model.transform.forward(energies, showers, model.geometry)
        c = model.transform.condition(energies)
        f = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        return cls(f(lx), f(vx), f(c))


def _batches(n: int, batch_size: int, gen: torch.Generator, rank: int = 0, world: int = 1):
    perm = torch.randperm(n, generator=gen)
    perm = perm[rank::world]
    for start in range(0, len(perm) - batch_size + 1 if len(perm) >= batch_size else 1, batch_size):
        yield perm[start : start + batch_size]


def train_diffusion(
    energies: np.ndarray,
    showers: np.ndarray,
    config: DiffusionConfig | None = None,
    geometry: Geometry = DATASET1_PHOTONS,
    device: str = "auto",
    progress: Callable[[int, float], None] | None = None,
) -> tuple[ShowerDiffusion, list[float]]:
    """Fit the transform, then train both networks with Adam, cosine LR decay and an EMA of weights.

    With ``config.augment`` every training shower is rotated/reflected in α at random
    (see the module docstring; skipped for geometries whose layers differ in α binning).

    Under ``torchrun`` each rank trains on its share of every epoch (DDP averages the
    gradients); every rank returns the same EMA model. Returns (EMA model, loss per epoch).
    """
    from offline.distributed import setup

    config = config or DiffusionConfig()
    info = setup(device)
    torch.manual_seed(config.seed)
    transform = ShowerTransform.fit(energies, showers, geometry)
    model = ShowerDiffusion(config, transform, geometry).to(info.device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    data = TrainingData.build(model, energies, showers, info.device)
    train_model: nn.Module = model
    if info.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            _LossModule(model), device_ids=[info.device.index] if info.device.type == "cuda" else None
        )
    else:
        train_model = _LossModule(model)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    per_epoch = max(1, len(data) // (config.batch_size * info.world_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    perms = None
    if config.augment:
        try:
            perms = torch.as_tensor(alpha_permutations(geometry), device=info.device)
        except ValueError:
            perms = None  # mixed α binnings: no common rotation, train without augmentation
    history = []
    step = 0
    bs = min(config.batch_size, max(1, len(data) // info.world_size))
    for epoch in range(config.epochs):
        model.train()
        total, count = 0.0, 0
        for idx in _batches(len(data), bs, gen, info.rank, info.world_size):
            idx = idx.to(info.device)
            voxel_x = data.voxel_x[idx]
            if perms is not None:
                pick = torch.randint(len(perms), (len(idx),), generator=gen).to(info.device)
                voxel_x = torch.gather(voxel_x, 1, perms[pick])
            with autocast_for(info.device):
                loss = train_model(data.layer_x[idx], voxel_x, data.cond[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            # EMA with warm-up: short runs must not average in the untrained start
            decay = min(config.ema, (1.0 + step) / (10.0 + step))
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                    pe.lerp_(pm, 1.0 - decay)
            total += float(loss.detach())
            count += 1
        history.append(total / max(count, 1))
        if progress is not None:
            progress(epoch, history[-1])
    ema.eval().calibrate_zeros(data.cond, seed=config.seed)
    return ema, history


class _LossModule(nn.Module):
    """Wraps the model so DDP sees one forward that returns the summed loss."""

    def __init__(self, model: ShowerDiffusion) -> None:
        super().__init__()
        self.model = model

    def forward(self, layer_x: torch.Tensor, voxel_x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        lo, vo = self.model.loss(layer_x, voxel_x, cond)
        return lo + vo

