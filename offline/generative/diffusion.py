"""Score-based diffusion for calorimeter showers, CaloScore-style (Mikuni & Nachman, arXiv 2206.11898, 2308.03847).

Two networks, so that energy is conserved by construction:

- the **layer model** generates, given the incident energy E, the deposited
  fraction ``E_tot / E`` and the stick-breaking fractions ``u_i = E_i / Σ_{j≥i} E_j``
  of the layer energies (CaloFlow's parametrisation, arXiv 2106.05285): any output
  maps back to non-negative layer energies that add up to exactly E_tot;
- the **voxel model** generates, given E and the layer vector, every voxel's
  fraction of its layer's energy; fractions are renormalised per layer, so the
  voxels of a layer add up to exactly the layer energy.

Both vectors are Gaussianised per dimension (``offline.generative.marginals``):
each value goes through its own CDF to a standard-normal latent, empty voxels
spread over the empty mass. The layer vector's CDFs are conditioned on E, the
voxel fractions' on their layer's energy E_i (``ShowerTransform``). The networks
then model only how dimensions depend on each other; a marginal the network gets
wrong is not a voxel distribution that is wrong. Each sampler, distilled ones
included, is then calibrated (``ShowerDiffusion.calibrate``): its own latents,
generated at training energies, are mapped onto N(0, 1) per condition bin and
ring, which fixes what remains of its marginals, empty fractions in particular,
from its own samples only.

Why, measured on GFlash (10k training / 4k held-out showers, 1 GeV-1 TeV, 20
epochs, 16 DDIM steps; classifier AUC low / high level):

- per-voxel standardisation (sqrt fractions, mean and variance polynomial in
  ln E): 0.83 / 0.94. The outer rings at 1-4 GeV, empty 90-97 % of the time and
  otherwise holding a whole spot (~1 % of the layer), came out as near-Gaussian
  blobs: occupied voxels too soft, layer-1 width 7.8 ± 1.1 mm against 11 ± 2.6 mm;
- Gaussianised given E: 0.55 / 0.77. Occupancies were nearly independent of the
  layer energy (number of occupied layer-0 voxels vs ln E_0: correlation 0.15
  against 0.64 in GFlash at 1-10 GeV);
- voxels Gaussianised given E_i: 0.54 / 0.62.

Voxels of a ring share their tables, so rotating the α bins (the shower is
symmetric about its axis) or reflecting them maps latents onto latents: training
draws a random rotation/reflection per shower (``DiffusionConfig.augment``), 20×
more distinct showers for the voxel model.

The diffusion is variance preserving with the cosine schedule
``α_t = cos(πt/2)``, ``σ_t = sin(πt/2)``, ``z_t = α_t x + σ_t ε``; the networks
predict ``v = α_t ε - σ_t x`` (Salimans & Ho, arXiv 2202.00512, as CaloScore v2);
sampling is deterministic DDIM on a uniform grid of N steps. Training uses CUDA
with bf16 autocast when present, DDP under ``torchrun``, CPU otherwise.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import save_file
from scipy.special import ndtri
from torch import nn

from offline.artifacts import FileFormatError, atomic_path, load_tensors
from offline.generative.geometry import DATASET1_PHOTONS, Geometry
from offline.generative.io import deposits_as_float32, validate_showers
from offline.generative.marginals import U_EPS, ConditionalMarginals, LatentCalibration

_Table = TypeVar("_Table", ConditionalMarginals, LatentCalibration)

MAX_BINS = 12  # condition bins of the marginal tables (fewer for small training sets)
SHOWERS_PER_BIN = 500
# every training latent lies within ±4.26; the sampler's x̂ is clamped a little outside
X_HAT_BOUND = float(-ndtri(U_EPS)) + 0.5


# ---------------------------------------------------------------- preprocessing


def alpha_permutations(geometry: Geometry) -> np.ndarray:
    """(2 n_alpha, n_voxels) index maps: every rotation of the α bins, with and without reflection.

    All layers with α bins must have the same n_alpha (true for the CaloChallenge
    datasets); layers with one α bin map to themselves. ``x[:, perm]`` is the rotated shower.
    """
    n_alpha = {layer.n_alpha for layer in geometry.layers if layer.n_alpha > 1}
    if len(n_alpha) > 1:
        raise ValueError(
            f"{geometry.name}: layers have different α binnings {sorted(n_alpha)}; cannot rotate them together"
        )
    na = n_alpha.pop() if n_alpha else 1
    perms = []
    for reflect in (False, True):
        for shift in range(na):
            idx: list[int] = []
            for i, layer in enumerate(geometry.layers):
                base = int(geometry.offsets[i])
                for a in range(layer.n_alpha):
                    src = a if layer.n_alpha == 1 else ((-1 - a if reflect else a) + shift) % na
                    idx.extend(base + src * layer.n_r + r for r in range(layer.n_r))
            perms.append(idx)
    return np.asarray(perms, dtype=np.int64)


def layer_energies(showers: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(N, n_layers) energy per layer."""
    return np.stack(
        [showers[:, geometry.layer_slice(i)].sum(axis=1) for i in range(geometry.n_layers)], axis=1
    )


def _layer_rings(geometry: Geometry, i: int) -> np.ndarray:
    """Ring (r bin) of every voxel of layer i, in the layer's voxel order."""
    layer = geometry.layers[i]
    return np.tile(np.arange(layer.n_r), layer.n_alpha)


def _model_values(
    energies: np.ndarray, showers: np.ndarray, geometry: Geometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer energies (N, L); the layer vector [E_tot / E, u_1 ... u_{L-1}] with
    u_i = E_i / Σ_{j≥i} E_j (0 when nothing is left); every voxel's fraction of its layer."""
    x = showers.astype(np.float64)
    el = layer_energies(x, geometry)
    rest = el.sum(axis=1)
    u = [rest / energies]
    for i in range(geometry.n_layers - 1):
        u.append(np.divide(el[:, i], rest, out=np.zeros_like(rest), where=rest > 0))
        rest = rest - el[:, i]
    per_voxel = el[:, geometry.voxel_layer]
    frac = np.divide(x, per_voxel, out=np.zeros_like(x), where=per_voxel > 0)
    return el, np.clip(np.stack(u, axis=1), 0.0, None), frac


@dataclass
class ShowerTransform:
    """Maps (E, showers) to the two models' Gaussian latents and back; fitted on training data.

    The layer vector is Gaussianised conditionally on the incident energy, the voxel
    fractions of layer i conditionally on that layer's energy E_i (``layer_condition``):
    how many voxels a layer lights up follows its own energy (its number of spots),
    which fluctuates from shower to shower at fixed E. Conditioned on E only, the
    sampler all but lost that dependence: the correlation of the number of occupied
    layer-0 voxels with ln E_0 was 0.15 against 0.64 in GFlash (1-10 GeV).
    """

    n_layers: int
    log_e_min: float
    log_e_max: float
    layers: ConditionalMarginals  # of the layer vector, one "ring" per dimension, given E
    voxels: list[ConditionalMarginals]  # per layer: its voxel fractions per (r) ring, given E_i
    layer_calibration: LatentCalibration | None = (
        None  # of a sampler's latents (ShowerDiffusion.calibrate)
    )
    voxel_calibration: list[LatentCalibration] | None = None

    @staticmethod
    def _scaled_log_e(energies: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return 2 * (np.log(energies) - lo) / (hi - lo) - 1

    @staticmethod
    def layer_condition(layer_energy: np.ndarray) -> np.ndarray:
        """log10 of a layer's energy in MeV (1 keV for an empty layer): the condition of its voxel tables."""
        return np.log10(np.maximum(layer_energy, 1e-3))

    @classmethod
    def fit(
        cls, energies: np.ndarray, showers: np.ndarray, geometry: Geometry = DATASET1_PHOTONS
    ) -> ShowerTransform:
        data = validate_showers(energies, showers, geometry, where="training showers")
        energies, showers = data.incident_energies, data.showers
        log_e = np.log(energies)
        lo, hi = float(log_e.min()), float(max(log_e.max(), log_e.min() + 1e-3))
        cond = cls._scaled_log_e(energies, lo, hi)
        bins = int(np.clip(len(energies) // SHOWERS_PER_BIN, 1, MAX_BINS))
        el, values, frac = _model_values(energies, showers, geometry)
        layers = ConditionalMarginals.fit(cond, values, np.arange(geometry.n_layers), bins)
        voxels = [
            ConditionalMarginals.fit(
                cls.layer_condition(el[:, i]),
                frac[:, geometry.layer_slice(i)],
                _layer_rings(geometry, i),
                bins,
            )
            for i in range(geometry.n_layers)
        ]
        return cls(geometry.n_layers, lo, hi, layers, voxels)

    def condition(self, energies: np.ndarray) -> np.ndarray:
        """ln E scaled to [-1, 1] over the training range, shape (N, 1)."""
        return self._scaled_log_e(
            np.asarray(energies, dtype=np.float64), self.log_e_min, self.log_e_max
        ).reshape(-1, 1)

    def forward(
        self, energies: np.ndarray, showers: np.ndarray, geometry: Geometry, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latents (layer (N, L), voxel (N, V)); ``seed`` draws the positions of empty voxels in the empty mass."""
        rng = np.random.default_rng(seed)
        el, values, frac = _model_values(energies, showers, geometry)
        lx = self.layers.to_latent(self.condition(energies), values, np.arange(self.n_layers), rng)
        vx = np.empty_like(frac)
        for i, table in enumerate(self.voxels):
            sl = geometry.layer_slice(i)
            vx[:, sl] = table.to_latent(
                self.layer_condition(el[:, i]), frac[:, sl], _layer_rings(geometry, i), rng
            )
        return lx, vx

    def latent_layer_energies(self, energies: np.ndarray, layer_x: np.ndarray) -> np.ndarray:
        """(N, L) layer energies in MeV of layer latents: non-negative, adding up to E_tot."""
        c = self.condition(energies)
        dims = np.arange(self.n_layers)
        if self.layer_calibration is not None:
            layer_x = self.layer_calibration.apply(c, layer_x, dims)
        u = self.layers.from_latent(c, layer_x, dims)
        # a photon deposits at most its energy: the deposited fraction's table may reach a hair above 1
        # (float32 training showers), the stick-breaking fractions are fractions
        u = np.clip(u, 0.0, 1.0)
        el = np.empty((len(energies), self.n_layers))
        rest = u[:, 0] * energies
        for i in range(self.n_layers - 1):
            el[:, i] = rest * u[:, i + 1]
            rest = rest - el[:, i]
        el[:, -1] = rest
        return el

    def inverse(
        self, energies: np.ndarray, layer_x: np.ndarray, voxel_x: np.ndarray, geometry: Geometry
    ) -> np.ndarray:
        """Back to voxel energies in MeV: non-negative, per-layer sums = layer energies, Σ = E_tot ≤ E
        (the float32 result, summed in any order: :func:`deposits_as_float32`)."""
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        el = self.latent_layer_energies(energies, layer_x)
        out = np.empty(voxel_x.shape)
        for i, table in enumerate(self.voxels):
            sl, rings, c = (
                geometry.layer_slice(i),
                _layer_rings(geometry, i),
                self.layer_condition(el[:, i]),
            )
            x = voxel_x[:, sl]
            if self.voxel_calibration is not None:
                x = self.voxel_calibration[i].apply(c, x, rings)
            f = table.from_latent(c, x, rings)
            norm = f.sum(axis=1, keepdims=True)
            f = np.where(norm > 0, f / np.where(norm > 0, norm, 1.0), 1.0 / f.shape[1])
            out[:, sl] = f * el[:, i : i + 1]
        return deposits_as_float32(out, energies)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        d = {
            "scalars": torch.tensor(
                [self.n_layers, self.log_e_min, self.log_e_max], dtype=torch.float64
            )
        }
        tables = {"layers": self.layers, "layer_calibration": self.layer_calibration}
        tables.update({f"voxels{i}": t for i, t in enumerate(self.voxels)})
        tables.update(
            {f"voxel_calibration{i}": t for i, t in enumerate(self.voxel_calibration or [])}
        )
        for name, table in tables.items():
            if table is not None:
                d.update(
                    {
                        f"{name}.{k}": torch.as_tensor(np.asarray(v, dtype=np.float64))
                        for k, v in asdict(table).items()
                    }
                )
        return d

    @classmethod
    def from_tensors(cls, d: dict[str, torch.Tensor]) -> ShowerTransform:
        s = d["scalars"].tolist()
        n_layers = int(s[0])
        if f"voxels{n_layers - 1}.empty" not in d:
            raise ValueError(
                "shower model saved by an older l1ad (no per-layer Gaussianisation tables); retrain it"
            )

        def table(name: str, kind: type[_Table]) -> _Table | None:
            fields = {
                k.split(".", 1)[1]: v.numpy() for k, v in d.items() if k.startswith(name + ".")
            }
            return kind(**fields) if fields else None

        def marginals(name: str) -> ConditionalMarginals:
            found = table(name, ConditionalMarginals)
            if found is None:
                raise ValueError(f"shower model has no {name} table")
            return found

        calibration = [table(f"voxel_calibration{i}", LatentCalibration) for i in range(n_layers)]
        calibrated = [c for c in calibration if c is not None]
        return cls(
            n_layers,
            s[1],
            s[2],
            marginals("layers"),
            [marginals(f"voxels{i}") for i in range(n_layers)],
            table("layer_calibration", LatentCalibration),
            calibrated if len(calibrated) == n_layers else None,
        )


# ---------------------------------------------------------------- networks


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA (no loss scaling needed), a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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

    freqs: torch.Tensor  # a buffer

    def __init__(
        self, dim: int, cond_dim: int, width: int = 256, depth: int = 4, n_freq: int = 16
    ) -> None:
        super().__init__()
        self.register_buffer(
            "freqs", torch.exp(torch.linspace(0.0, math.log(1000.0), n_freq)), persistent=False
        )
        self.embed = nn.Sequential(
            nn.Linear(2 * n_freq + cond_dim, width), nn.SiLU(), nn.Linear(width, width)
        )
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
    steps: int = (
        64  # DDIM: 16 and 64 steps sample equally well (10k showers, 20 epochs: AUC 0.769 / 0.767)
    )
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    ema: float = 0.999
    seed: int = 0
    augment: bool = True  # random α rotation/reflection of each training shower (voxel model)

    def __post_init__(self) -> None:
        for name in (
            "layer_width",
            "layer_depth",
            "voxel_width",
            "voxel_depth",
            "steps",
            "epochs",
            "batch_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "ema"):
            if not isinstance(getattr(self, name), int | float) or isinstance(
                getattr(self, name), bool
            ):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")


class ShowerDiffusion(nn.Module):
    """Layer model + voxel model + the fitted transform; ``steps`` is its sampling step count."""

    def __init__(
        self,
        config: DiffusionConfig,
        transform: ShowerTransform,
        geometry: Geometry = DATASET1_PHOTONS,
        steps: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.transform = transform
        self.geometry = geometry
        self.steps = config.steps if steps is None else steps
        nl, nv = geometry.n_layers, geometry.n_voxels
        self.layer_net = ScoreMLP(nl, 1, config.layer_width, config.layer_depth)
        self.voxel_net = ScoreMLP(nv, 1 + nl, config.voxel_width, config.voxel_depth)

    # -- diffusion pieces, shared by training, sampling and distillation
    def predict_v(
        self, which: str, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        net = self.layer_net if which == "layer" else self.voxel_net
        return net(z, t, cond)

    def ddim_step(
        self, which: str, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        """Deterministic DDIM update z_t -> z_s (s < t); x̂ is clamped to the training range."""
        a_t, s_t = alpha_sigma(t.reshape(-1, 1))
        a_s, s_s = alpha_sigma(s.reshape(-1, 1))
        v = self.predict_v(which, z, t, cond).float()
        x_hat = a_t * z - s_t * v
        x_hat = x_hat.clamp(-X_HAT_BOUND, X_HAT_BOUND)
        eps_hat = (z - a_t * x_hat) / s_t.clamp_min(1e-8)
        return a_s * x_hat + s_s * eps_hat

    def loss(
        self, layer_x: torch.Tensor, voxel_x: torch.Tensor, cond_e: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """v-prediction MSE of both models at uniformly drawn t (voxel model conditioned on true layers)."""
        out = []
        for which, x, cond in (
            ("layer", layer_x, cond_e),
            ("voxel", voxel_x, torch.cat([cond_e, layer_x], dim=1)),
        ):
            t = torch.rand(len(x), device=x.device)
            a, s = alpha_sigma(t.reshape(-1, 1))
            eps = torch.randn_like(x)
            z = a * x + s * eps
            v = a * eps - s * x
            out.append(((self.predict_v(which, z, t, cond).float() - v) ** 2).mean())
        return out[0], out[1]

    @torch.no_grad()
    def sample_latent(
        self, which: str, cond: torch.Tensor, steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
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
        gen.manual_seed(
            int(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        )
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
            out.append(
                self.transform.inverse(
                    e,
                    lx.cpu().numpy().astype(np.float64),
                    vx.cpu().numpy().astype(np.float64),
                    self.geometry,
                )
            )
        return np.concatenate(out) if out else np.zeros((0, self.geometry.n_voxels), np.float32)

    @torch.no_grad()
    def calibrate(self, cond: torch.Tensor, max_showers: int = 10_000, seed: int = 0) -> None:
        """Map this sampler's latents onto N(0, 1) per energy bin and ring (see the module docstring).

        ``cond`` are training conditions (``TrainingData.cond``): the sampler generates
        at up to ``max_showers`` of them, and only its own output is used. A network
        smears the empty mass and a distilled one shifts its marginals; after this the
        empty fraction and the value distribution of every voxel follow the training
        tables again. Call it again after changing the weights or the step count.
        """
        t = self.transform
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(cond), generator=gen)[:max_showers]
        c = cond[pick].detach().cpu().double().numpy().reshape(-1)
        energies = np.exp((c + 1) / 2 * (t.log_e_max - t.log_e_min) + t.log_e_min)
        layer_latents, voxel_latents = self.sample_latents(energies, seed=seed)
        lx, vx = layer_latents.cpu().double().numpy(), voxel_latents.cpu().double().numpy()
        t.layer_calibration = LatentCalibration.fit(c, lx, np.arange(t.n_layers), t.layers.centres)
        el = t.latent_layer_energies(
            energies, lx
        )  # the voxel tables' condition, from the calibrated layers
        t.voxel_calibration = [
            LatentCalibration.fit(
                t.layer_condition(el[:, i]),
                vx[:, self.geometry.layer_slice(i)],
                _layer_rings(self.geometry, i),
                table.centres,
            )
            for i, table in enumerate(t.voxels)
        ]

    # -- persistence: safetensors (weights + transform) and JSON (config)
    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in self.state_dict().items()
        }
        tensors.update({f"transform.{k}": v for k, v in self.transform.to_tensors().items()})
        meta = {"config": json.dumps(asdict(self.config)), "steps": str(self.steps)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        geometry: Geometry = DATASET1_PHOTONS,
        device: str | torch.device = "cpu",
    ) -> ShowerDiffusion:
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        tensors = load_tensors(
            path, "shower model"
        )  # refuses missing, truncated, foreign files and NaN
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError) as err:
            raise FileFormatError(
                path, f"shower model is not a readable safetensors file: {err}"
            ) from None
        if "config" not in meta:
            raise FileFormatError(
                path, "not a shower diffusion model (no config in the safetensors metadata)"
            )
        try:
            settings = json.loads(meta["config"])
            if not isinstance(settings, dict):
                raise ValueError("the config is not a JSON object")
            config = DiffusionConfig(**settings)
            steps = int(meta.get("steps", ""))
            if steps < 1:
                raise ValueError(f"steps {steps} must be positive")
            transform = ShowerTransform.from_tensors(
                {
                    k.removeprefix("transform."): v
                    for k, v in tensors.items()
                    if k.startswith("transform.")
                }
            )
            model = cls(config, transform, geometry, steps=steps)
            model.load_state_dict(
                {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
            )
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as err:
            # garbage metadata, missing tables, tensors of the wrong shape: a damaged or foreign file
            detail = " ".join(str(err).split())  # load_state_dict's report spans lines
            raise FileFormatError(
                path, f"not a valid shower diffusion model ({type(err).__name__}: {detail})"
            ) from None
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
    def build(
        cls, model: ShowerDiffusion, energies: np.ndarray, showers: np.ndarray, device: torch.device
    ) -> TrainingData:
        lx, vx = model.transform.forward(energies, showers, model.geometry)
        c = model.transform.condition(energies)
        f = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        return cls(f(lx), f(vx), f(c))


def _batches(
    n: int, batch_size: int, gen: torch.Generator, rank: int = 0, world: int = 1
) -> Iterator[torch.Tensor]:
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
    checked = validate_showers(energies, showers, geometry, where="training showers")
    energies, showers = checked.incident_energies, checked.showers
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
            _LossModule(model),
            device_ids=[info.device.index] if info.device.type == "cuda" else None,
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
    ema.eval().calibrate(data.cond, seed=config.seed)
    return ema, history


class _LossModule(nn.Module):
    """Wraps the model so DDP sees one forward that returns the summed loss."""

    def __init__(self, model: ShowerDiffusion) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, layer_x: torch.Tensor, voxel_x: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        lo, vo = self.model.loss(layer_x, voxel_x, cond)
        return lo + vo
