"""Reference electromagnetic showers from the GFlash parametrisation, voxelised like CaloChallenge DS1.

Geant4 and its physics data cannot be installed here, so the "truth" showers come
from GFlash: G. Grindhammer and S. Peters, "The parameterized simulation of
electromagnetic showers in homogeneous and sampling calorimeters",
hep-ex/0001020 (below: GP), with the homogeneous-medium constants of Geant4's
``GVFlashHomoShowerTuning.hh`` and the algorithm of
``GFlashHomoShowerParameterisation.cc`` (which quote GP). Per shower:

1. Longitudinal profile. With ``y = E/E_c`` (GP eq. 2.2-2.5; tuning ``ParAve*``,
   ``ParSigLog*``, ``ParRho*``)::

       f(t) = (β t)^(α-1) β exp(-β t) / Γ(α),  t in X0,  T = (α-1)/β
       <ln T> = ln(ln y - 0.812),           σ(ln T) = 1/(-1.4 + 1.26 ln y)
       <ln α> = ln(0.81 + (0.458 + 2.26/Z) ln y), σ(ln α) = 1/(-0.58 + 0.86 ln y)
       ρ(ln T, ln α) = 0.705 - 0.023 ln y

   (ln T, ln α) are drawn as a correlated Gaussian pair exactly as Geant4 does
   (``z1 sqrt((1+ρ)/2) ± z2 sqrt((1-ρ)/2)``), which carries the correlated
   fluctuations of shower maximum and shape.
2. Spots (GP sec. 2.3; ``ParSpot*``): ``N = 93 ln Z (E/GeV)^0.876`` spots, depth
   distributed like ``f`` with ``T_s = T (0.698 + 0.00212 Z)``,
   ``α_s = α (0.639 + 0.00334 Z)``. As in Geant4's step-wise integration, the
   energy ``E ∫ f dt`` of each longitudinal step (1 X0 and the layer boundaries)
   is shared equally by the spots in that step.
3. Radial profile of each spot (GP eq. 2.9-2.12; ``ParRC*``, ``ParRT*``, ``ParWC*``),
   r in Molière radii, ``τ = t/T``::

       f(r) = p 2r R_C²/(r²+R_C²)² + (1-p) 2r R_T²/(r²+R_T²)²
       R_C = z1 + z2 τ,  z1 = 0.0251 + 0.00319 ln E,  z2 = 0.1162 - 0.000381 Z
       R_T = k1 [exp(k3 (τ-k2)) + exp(k4 (τ-k2))],  k1 = 0.659 - 0.00309 Z,
             k2 = 0.645, k3 = -2.59, k4 = 0.3585 + 0.0412 ln E
       p = p1 exp((p2-τ)/p3 - exp((p2-τ)/p3)),  p1 = 2.632 - 0.00094 Z,
             p2 = 0.401 + 0.00187 Z, p3 = 1.313 - 0.0686 ln E     (E in GeV)

   sampled by inverting each component's CDF ``r²/(r²+R²)``:
   ``r = R sqrt(u/(1-u))`` (as ``GenerateRadius`` does), azimuth uniform.
4. Material: ``E_c = 2.66 (X0 Z/A)^1.1`` MeV with X0 in g/cm² and
   ``R_M = 21 MeV · X0 / E_c`` (GP eq. 2.1; Geant4 ``SetMaterial``), effective
   Z and A as mass-weighted sums (Geant4 ``GetEffZ``/``GetEffA``).

Choices of ours, not from GFlash (documented so they can be changed):

- Medium: homogeneous PbWO4 (X0 = 7.39 g/cm², ρ = 8.28 g/cm³: PDG
  "Atomic and nuclear properties of materials"). Formula values: Z_eff ≈ 68.4,
  E_c ≈ 8.8 MeV, R_M ≈ 21 mm (PDG lists R_M = 19.6 mm).
- Depth of the five DS1 layers (ATLAS samplings 0, 1, 2, 3, 12) along the shower
  axis, in X0: [0, 2), [2, 6.3), [6.3, 22.3), [22.3, 24.3), [24.3, 40). They
  mimic the ATLAS barrel at small |η| (≈ 2 X0 in front of and including the
  presampler, strips ≈ 4.3 X0, middle ≈ 16 X0, back ≈ 2 X0; ATLAS, JINST 3
  S08003, sec. 5.2), with the first hadronic layer taking the rest. Energy beyond
  40 X0 or outside the last radial edge of a layer leaks; there is no sampling
  fraction or electronic noise (GFlash's homogeneous mode).
- Draws with α ≤ 1 or α_s ≤ 1 (no maximum; at 1 GeV ≈ 3σ, < 0.1 %) are redrawn.
- A step that receives energy but no spot gets one spot at its centre, so no
  energy is silently dropped at low energies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammainc

from offline.generative.geometry import DATASET1_PHOTONS, Geometry
from offline.generative.io import deposits_as_float32

# ---- GFlash homogeneous tuning (Geant4 GVFlashHomoShowerTuning.hh; GP sec. 2) ----
AVE_T1 = -0.812  # <ln T> = ln(ln y + AVE_T1)
AVE_A1, AVE_A2, AVE_A3 = 0.81, 0.458, 2.26  # <ln α> = ln(A1 + (A2 + A3/Z) ln y)
SIG_LOG_T1, SIG_LOG_T2 = -1.4, 1.26  # σ(ln T) = 1/(T1 + T2 ln y)
SIG_LOG_A1, SIG_LOG_A2 = -0.58, 0.86  # σ(ln α) = 1/(A1 + A2 ln y)
RHO1, RHO2 = 0.705, -0.023  # ρ = R1 + R2 ln y
RC1, RC2, RC3, RC4 = 0.0251, 0.00319, 0.1162, -0.000381  # R_C = (c1 + c2 ln E) + (c3 + c4 Z) τ
RT1, RT2, RT3, RT4, RT5, RT6 = 0.659, -0.00309, 0.645, -2.59, 0.3585, 0.0412  # R_T
WC1, WC2, WC3, WC4, WC5, WC6 = 2.632, -0.00094, 0.401, 0.00187, 1.313, -0.0686  # p
SPOT_N1, SPOT_N2 = 93.0, 0.876  # N_spot = n1 ln Z (E/GeV)^n2
SPOT_T1, SPOT_T2 = 0.698, 0.00212  # T_s = T (t1 + t2 Z)
SPOT_A1, SPOT_A2 = 0.639, 0.00334  # α_s = α (a1 + a2 Z)
ES_MEV = 21.0  # scale energy in R_M = Es X0 / E_c (Geant4 SetMaterial)


@dataclass(frozen=True)
class Material:
    """A homogeneous medium: effective Z and A (mass-weighted), density [g/cm³], X0 [g/cm²]."""

    name: str
    Z: float
    A: float
    density: float
    x0_gcm2: float

    @property
    def x0_mm(self) -> float:
        return 10.0 * self.x0_gcm2 / self.density

    @property
    def critical_energy_mev(self) -> float:
        """GP eq. 2.1: E_c = 2.66 (X0 Z/A)^1.1 MeV, X0 in g/cm²."""
        return 2.66 * (self.x0_gcm2 * self.Z / self.A) ** 1.1

    @property
    def moliere_radius_mm(self) -> float:
        return ES_MEV * self.x0_mm / self.critical_energy_mev


def _mixture(
    name: str, parts: dict[str, tuple[float, float, int]], density: float, x0: float
) -> Material:
    """parts: element -> (Z, A, atoms per formula unit); Z, A weighted by mass fraction."""
    mass = sum(a * n for _, a, n in parts.values())
    z = sum(zz * a * n / mass for zz, a, n in parts.values())
    a_eff = sum(a * a * n / mass for _, a, n in parts.values())
    return Material(name, z, a_eff, density, x0)


# PbWO4: X0 = 7.39 g/cm², density 8.28 g/cm³ (PDG); standard atomic weights.
PBWO4 = _mixture(
    "PbWO4", {"Pb": (82, 207.2, 1), "W": (74, 183.84, 1), "O": (8, 15.999, 4)}, 8.28, 7.39
)

# Layer depth intervals [X0] for DS1 samplings 0, 1, 2, 3, 12 (see module docstring).
DS1_LAYER_DEPTHS_X0 = (0.0, 2.0, 6.3, 22.3, 24.3, 40.0)

# Incident energies of CaloChallenge DS1: 2^8 ... 2^22 MeV (256 MeV - 4.2 TeV).
DS1_ENERGIES_MEV = tuple(2.0**k for k in range(8, 23))


def log_t_alpha_moments(energy_mev: np.ndarray, material: Material) -> tuple[np.ndarray, ...]:
    """(<ln T>, σ(ln T), <ln α>, σ(ln α), ρ) for incident energies in MeV (GP eq. 2.3-2.5)."""
    ln_y = np.log(np.asarray(energy_mev, dtype=np.float64) / material.critical_energy_mev)
    if np.any(ln_y + AVE_T1 <= 0) or np.any(SIG_LOG_T1 + SIG_LOG_T2 * ln_y <= 0):
        raise ValueError(
            f"GFlash needs E > {material.critical_energy_mev * np.exp(-SIG_LOG_T1 / SIG_LOG_T2):.0f} MeV "
            f"in {material.name}; got min {np.min(energy_mev):.3g} MeV"
        )
    mean_log_t = np.log(ln_y + AVE_T1)
    sigma_log_t = 1.0 / (SIG_LOG_T1 + SIG_LOG_T2 * ln_y)
    mean_log_a = np.log(AVE_A1 + (AVE_A2 + AVE_A3 / material.Z) * ln_y)
    sigma_log_a = 1.0 / (SIG_LOG_A1 + SIG_LOG_A2 * ln_y)
    rho = RHO1 + RHO2 * ln_y
    return mean_log_t, sigma_log_t, mean_log_a, sigma_log_a, rho


def sample_longitudinal(
    energy_mev: np.ndarray, material: Material, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw per-shower (T [X0], α) with GFlash's correlated log-normal fluctuations."""
    energy_mev = np.atleast_1d(np.asarray(energy_mev, dtype=np.float64))
    m_t, s_t, m_a, s_a, rho = log_t_alpha_moments(energy_mev, material)
    c1, c2 = np.sqrt((1 + rho) / 2), np.sqrt((1 - rho) / 2)
    spot_a = SPOT_A1 + SPOT_A2 * material.Z
    t_max = np.empty_like(energy_mev)
    alpha = np.empty_like(energy_mev)
    todo = np.arange(len(energy_mev))
    while todo.size:
        z1, z2 = rng.standard_normal((2, todo.size))
        t_max[todo] = np.exp(m_t[todo] + s_t[todo] * (c1[todo] * z1 + c2[todo] * z2))
        alpha[todo] = np.exp(m_a[todo] + s_a[todo] * (c1[todo] * z1 - c2[todo] * z2))
        todo = todo[(alpha[todo] <= 1.0) | (alpha[todo] * spot_a <= 1.0)]  # no maximum: redraw
    return t_max, alpha


def gamma_cdf(t: np.ndarray, alpha: np.ndarray, t_max: np.ndarray) -> np.ndarray:
    """∫_0^t f(t') dt' of the GFlash profile with shape α and maximum T (β = (α-1)/T)."""
    beta = (alpha - 1.0) / t_max
    return gammainc(alpha, beta * np.clip(t, 0.0, None))


def mean_layer_fractions(
    energy_mev: float,
    depths_x0: np.ndarray,
    material: Material,
    n_draws: int = 200_000,
    seed: int = 12345,
) -> np.ndarray:
    """Expected fraction of E in each depth interval, averaged over GFlash's fluctuations of (T, α).

    Integrates the formula only (no spots, no voxels): the reference for the simulator's
    mean longitudinal profile.
    """
    rng = np.random.default_rng(seed)
    t_max, alpha = sample_longitudinal(np.full(n_draws, energy_mev), material, rng)
    cdf = gamma_cdf(np.asarray(depths_x0)[None, :], alpha[:, None], t_max[:, None])
    return np.diff(cdf, axis=1).mean(axis=0)


def radial_parameters(
    tau: np.ndarray, energy_gev: np.ndarray, z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_C, R_T [Molière radii], core weight p) at relative depth τ = t/T (GP eq. 2.10-2.12)."""
    ln_e = np.log(energy_gev)
    r_core = (RC1 + RC2 * ln_e) + (RC3 + RC4 * z) * tau
    k1, k2, k3, k4 = RT1 + RT2 * z, RT3, RT4, RT5 + RT6 * ln_e
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1, p2, p3 = WC1 + WC2 * z, WC3 + WC4 * z, WC5 + WC6 * ln_e
    u = (p2 - tau) / p3
    p = np.clip(p1 * np.exp(u - np.exp(u)), 0.0, 1.0)
    return r_core, r_tail, p


def spot_count(energy_mev: np.ndarray, material: Material) -> np.ndarray:
    """N_spot = 93 ln Z (E/GeV)^0.876, at least 1."""
    n = SPOT_N1 * np.log(material.Z) * (np.asarray(energy_mev) / 1000.0) ** SPOT_N2
    return np.maximum(np.rint(n).astype(np.int64), 1)


@dataclass
class GFlashSimulator:
    """Voxelised GFlash showers of photons at normal incidence on the layer stack.

    ``simulate(energies)`` returns (N, geometry.n_voxels) float32 voxel energies in MeV.
    """

    geometry: Geometry = DATASET1_PHOTONS
    material: Material = PBWO4
    layer_depths_x0: tuple[float, ...] = DS1_LAYER_DEPTHS_X0
    step_x0: float = 1.0
    max_spots_per_chunk: int = 2_000_000
    _edges: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        depths = np.asarray(self.layer_depths_x0, dtype=np.float64)
        if len(depths) != self.geometry.n_layers + 1 or np.any(np.diff(depths) <= 0):
            raise ValueError(
                f"layer_depths_x0 needs {self.geometry.n_layers + 1} increasing values, got {self.layer_depths_x0}"
            )
        grid = np.arange(depths[0], depths[-1], self.step_x0)
        self._edges = np.unique(np.concatenate([grid, depths]))

    def simulate(
        self, energies_mev: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        rng = np.random.default_rng(rng)
        energies = np.asarray(energies_mev, dtype=np.float64).reshape(-1)
        if energies.size and (not np.all(np.isfinite(energies)) or energies.min() <= 0):
            raise ValueError("incident energies must be finite and positive (MeV)")
        out = np.zeros((energies.size, self.geometry.n_voxels), dtype=np.float32)
        counts = spot_count(energies, self.material)
        start = 0
        while start < energies.size:
            stop = start + 1
            total = counts[start]
            while stop < energies.size and total + counts[stop] <= self.max_spots_per_chunk:
                total += counts[stop]
                stop += 1
            out[start:stop] = self._simulate_chunk(energies[start:stop], counts[start:stop], rng)
            start = stop
        return out

    def _simulate_chunk(
        self, energies: np.ndarray, n_spots: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        mat, geo, edges = self.material, self.geometry, self._edges
        n, n_steps = energies.size, edges.size - 1
        t_max, alpha = sample_longitudinal(energies, mat, rng)
        # energy per longitudinal step, E ∫ f dt (exact, per shower)
        cdf = gamma_cdf(edges[None, :], alpha[:, None], t_max[:, None])
        step_energy = energies[:, None] * np.diff(cdf, axis=1)

        # spot depths from the spot profile (T_s, α_s)
        t_s = t_max * (SPOT_T1 + SPOT_T2 * mat.Z)
        a_s = alpha * (SPOT_A1 + SPOT_A2 * mat.Z)
        b_s = (a_s - 1.0) / t_s
        shower = np.repeat(np.arange(n), n_spots)
        depth = rng.gamma(a_s[shower], 1.0 / b_s[shower])
        step = np.searchsorted(edges, depth, side="right") - 1
        keep = (step >= 0) & (step < n_steps)
        shower, depth, step = shower[keep], depth[keep], step[keep]
        occupancy = np.bincount(shower * n_steps + step, minlength=n * n_steps).reshape(n, n_steps)
        # steps with energy but no spot get one spot at their centre
        lonely_s, lonely_k = np.nonzero((occupancy == 0) & (step_energy > 0))
        if lonely_s.size:
            centres = 0.5 * (edges[1:] + edges[:-1])
            shower = np.concatenate([shower, lonely_s])
            depth = np.concatenate([depth, centres[lonely_k]])
            step = np.concatenate([step, lonely_k])
            occupancy[lonely_s, lonely_k] = 1
        spot_energy = step_energy[shower, step] / occupancy[shower, step]

        # radial position of each spot
        r_core, r_tail, p = radial_parameters(
            depth / t_max[shower], energies[shower] / 1000.0, mat.Z
        )
        radius = np.where(rng.random(depth.size) < p, r_core, r_tail)
        u = rng.random(depth.size)
        r_mm = mat.moliere_radius_mm * radius * np.sqrt(u / (1.0 - u))
        phi = rng.uniform(-np.pi, np.pi, depth.size)

        layer = np.searchsorted(np.asarray(self.layer_depths_x0), depth, side="right") - 1
        voxel = np.full(depth.size, -1, dtype=np.int64)
        for i in range(geo.n_layers):
            sel = layer == i
            voxel[sel] = geo.voxel_index(i, r_mm[sel], phi[sel])
        inside = voxel >= 0
        flat = np.bincount(
            shower[inside] * geo.n_voxels + voxel[inside],
            weights=spot_energy[inside],
            minlength=n * geo.n_voxels,
        )
        return deposits_as_float32(flat.reshape(n, geo.n_voxels), energies)


def sample_energies(
    n: int,
    rng: np.random.Generator | int | None = None,
    e_min_mev: float = 1e3,
    e_max_mev: float = 1e6,
    discrete: bool = False,
) -> np.ndarray:
    """Incident energies [MeV]: log-uniform in [e_min, e_max] (default 1 GeV-1 TeV), or the DS1 ladder."""
    rng = np.random.default_rng(rng)
    if discrete:
        ladder = np.array([e for e in DS1_ENERGIES_MEV if e_min_mev <= e <= e_max_mev])
        if ladder.size == 0:
            raise ValueError(f"no DS1 energy in [{e_min_mev}, {e_max_mev}] MeV")
        return rng.choice(ladder, n)
    if not 0 < e_min_mev <= e_max_mev:
        raise ValueError(f"need 0 < e_min <= e_max, got {e_min_mev}, {e_max_mev}")
    return np.exp(rng.uniform(np.log(e_min_mev), np.log(e_max_mev), n))
