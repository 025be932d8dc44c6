"""Conditional per-dimension marginals: Gaussianisation of shower vectors and its inverse.

Columns that share a distribution share a table: the voxels of one (layer, r)
ring (the shower is symmetric about its axis), or a single dimension of the layer
vector; ``rings`` gives every column its table. The condition c (for showers the
scaled ln E, or the log of a layer's energy) is cut into ``bins`` equal-population
bins; a table holds, per (bin, ring), quantiles at fixed levels, and a shower at
condition c uses the table interpolated linearly between the two nearest bin
centres (displacement interpolation of quantile functions).

``ConditionalMarginals`` maps a value v ≥ 0 (empty: v = 0) to a standard-normal
latent y: u = P0 · U(0,1) for an empty voxel (randomised, so that the empty mass
becomes a continuous stretch of u), u = P0 + (1 - P0) G(v) otherwise, where P0 is
the probability that the voxel is empty and G the CDF of its non-zero values;
y = Φ⁻¹(u). The inverse sends u < P0 back to an empty voxel. A network that
learns nothing but Gaussian latents then already gives every voxel its right
distribution, empty fraction included, at every condition; it only has to learn
how voxels depend on each other.

``LatentCalibration`` is the same kind of table for a sampler's own latents: the
quantiles of what it generates, per (bin, ring), mapped onto those of N(0, 1).
Applied before the inverse, it corrects the marginals of an imperfect (e.g.
distilled) sampler using only its own samples and the training conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

U_EPS = 1e-5  # u is kept in [U_EPS, 1 - U_EPS]: latents within ±4.26
LEVELS = 65  # quantile levels per table
# empty voxels fill u < P0 (1 - EMPTY_MARGIN); u < P0 (1 - EMPTY_MARGIN / 2) reads back as empty, so that the
# smallest non-zero value (u = P0) survives the round trip through Φ⁻¹ and Φ
EMPTY_MARGIN = 1e-6
CALIBRATION_Z = 3.5  # calibration tables span Φ(-3.5) ... Φ(3.5); beyond, latents are shifted


def condition_bins(cond: np.ndarray, bins: int) -> np.ndarray:
    """Increasing centres (median condition) of at most ``bins`` equal-population bins of the condition.

    A condition with at most ``bins`` distinct values (the CaloChallenge energy ladder)
    gets one bin per value; ties that make bins coincide merge them.
    """
    cond = np.asarray(cond, dtype=np.float64).reshape(-1)
    values = np.unique(cond)
    if len(values) <= bins:
        return values
    edges = np.quantile(cond, np.linspace(0, 1, bins + 1))
    index = np.clip(np.searchsorted(edges, cond, side="right") - 1, 0, bins - 1)
    return np.unique([np.median(cond[index == b]) for b in range(bins) if (index == b).any()])


def _assign(cond: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest bin centre of every condition (for filling tables)."""
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.searchsorted(mid, np.asarray(cond).reshape(-1))


def _interpolation(cond: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower bin b and weight w of bin b + 1 for every condition.

    Beyond the outer centres the two outer bins are extrapolated linearly, up to
    half a bin width: the outer half-bins hold the showers at the ends of the
    energy range, whose distributions lie beyond their bin's average.
    """
    cond = np.asarray(cond, dtype=np.float64).reshape(-1)
    if len(centres) == 1:
        return np.zeros(len(cond), np.int64), np.zeros(len(cond))
    b = np.clip(np.searchsorted(centres, cond, side="right") - 1, 0, len(centres) - 2)
    w = np.clip((cond - centres[b]) / np.maximum(centres[b + 1] - centres[b], 1e-12), -0.5, 1.5)
    return b, w


def _at(table: np.ndarray, b: np.ndarray, w: np.ndarray, monotone: bool = False) -> np.ndarray:
    """table (K, ...) interpolated at every shower's condition: (N, ...); ``monotone`` along the last axis."""
    shape = (-1,) + (1,) * (table.ndim - 1)
    out = (1 - w).reshape(shape) * table[b] + w.reshape(shape) * table[b + (len(table) > 1)]
    return (
        np.maximum.accumulate(out, axis=-1) if monotone else out
    )  # extrapolation can break the order


def _interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` row by row: x (N, M), xp (N, J) non-decreasing, fp (J,); clamped at the ends."""
    j = xp.shape[1]
    out = np.empty_like(x, dtype=np.float64)
    for start in range(0, len(x), 2048):  # bounds the (rows, M, J) comparison
        s = slice(start, start + 2048)
        xs, xps = x[s], xp[s]
        i = np.clip((xps[:, None, :] <= xs[:, :, None]).sum(axis=2) - 1, 0, j - 2)
        lo, hi = np.take_along_axis(xps, i, 1), np.take_along_axis(xps, i + 1, 1)
        t = np.clip(
            np.divide(xs - lo, hi - lo, out=np.zeros_like(xs, dtype=np.float64), where=hi > lo),
            0.0,
            1.0,
        )
        out[s] = fp[i] + t * (fp[i + 1] - fp[i])
    return out


@dataclass
class ConditionalMarginals:
    """Conditional distribution of the values of every ring (see the module docstring)."""

    centres: np.ndarray  # (K,) bin centres in the condition
    empty: np.ndarray  # (K, R) probability that a voxel of the ring is empty
    quantiles: (
        np.ndarray
    )  # (K, R, LEVELS) quantiles of its non-zero values at linspace(0, 1, LEVELS)

    @classmethod
    def fit(
        cls, cond: np.ndarray, values: np.ndarray, rings: np.ndarray, bins: int
    ) -> ConditionalMarginals:
        centres = condition_bins(cond, bins)
        nearest = _assign(cond, centres)
        n_rings = int(rings.max()) + 1
        empty = np.ones((len(centres), n_rings))
        quantiles = np.zeros((len(centres), n_rings, LEVELS))
        levels = np.linspace(0, 1, LEVELS)
        for b in range(len(centres)):
            rows = values[nearest == b]
            for r in range(n_rings):
                v = rows[:, rings == r].ravel()
                nonzero = v[v > 0]
                if v.size:
                    empty[b, r] = 1.0 - nonzero.size / v.size
                if nonzero.size:
                    quantiles[b, r] = np.quantile(nonzero, levels)
        return cls(centres, empty, quantiles)

    def to_latent(
        self, cond: np.ndarray, values: np.ndarray, rings: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Standard-normal latents (N, V) of voxel values (N, V); empty voxels are randomised."""
        p0, table = self._tables(cond)
        levels = np.linspace(0, 1, LEVELS)
        u = np.empty(values.shape)
        for r in range(p0.shape[1]):
            cols = rings == r
            v = values[:, cols]
            q = _interp_rows(v, table[:, r], levels)
            p = p0[:, r : r + 1]
            u[:, cols] = np.where(
                v > 0, p + (1 - p) * q, p * (1 - EMPTY_MARGIN) * rng.random(v.shape)
            )
        return ndtri(np.clip(u, U_EPS, 1 - U_EPS))

    def from_latent(self, cond: np.ndarray, latent: np.ndarray, rings: np.ndarray) -> np.ndarray:
        """Voxel values (N, V) ≥ 0 of latents (N, V); exactly 0 where the latent falls in the empty mass."""
        p0, table = self._tables(cond)
        u = ndtr(latent)
        out = np.zeros(latent.shape)
        for r in range(p0.shape[1]):
            cols = rings == r
            p = p0[:, r : r + 1]
            q = np.clip((u[:, cols] - p) / np.maximum(1 - p, 1e-12), 0.0, 1.0) * (LEVELS - 1)
            i = np.minimum(q.astype(np.int64), LEVELS - 2)
            row = table[:, r]
            lo, hi = np.take_along_axis(row, i, 1), np.take_along_axis(row, i + 1, 1)
            out[:, cols] = np.where(
                u[:, cols] < p * (1 - EMPTY_MARGIN / 2), 0.0, lo + (q - i) * (hi - lo)
            )
        return out

    def _tables(self, cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(empty) (N, R) and non-zero quantiles (N, R, LEVELS) at every shower's condition."""
        b, w = _interpolation(cond, self.centres)
        return np.clip(_at(self.empty, b, w), 0.0, 1.0), np.maximum(
            _at(self.quantiles, b, w, monotone=True), 0.0
        )


@dataclass
class LatentCalibration:
    """Maps a sampler's latents onto N(0, 1), per (bin, ring) (see the module docstring)."""

    centres: np.ndarray  # (K,)
    quantiles: (
        np.ndarray
    )  # (K, R, LEVELS) the sampler's latent quantiles at Φ(linspace(-Z, Z, LEVELS))

    @staticmethod
    def targets() -> np.ndarray:
        return np.linspace(-CALIBRATION_Z, CALIBRATION_Z, LEVELS)

    @classmethod
    def fit(
        cls, cond: np.ndarray, latent: np.ndarray, rings: np.ndarray, centres: np.ndarray
    ) -> LatentCalibration:
        nearest = _assign(cond, centres)
        n_rings = int(rings.max()) + 1
        levels = ndtr(cls.targets())
        quantiles = np.tile(cls.targets(), (len(centres), n_rings, 1))  # identity where no samples
        for b in range(len(centres)):
            rows = latent[nearest == b]
            if len(rows):
                for r in range(n_rings):
                    quantiles[b, r] = np.quantile(rows[:, rings == r], levels)
        return cls(np.asarray(centres, dtype=np.float64), np.maximum.accumulate(quantiles, axis=2))

    def apply(self, cond: np.ndarray, latent: np.ndarray, rings: np.ndarray) -> np.ndarray:
        b, w = _interpolation(cond, self.centres)
        table = _at(self.quantiles, b, w, monotone=True)
        z = self.targets()
        out = np.empty(latent.shape)
        for r in range(table.shape[1]):
            cols = rings == r
            y, q = latent[:, cols], table[:, r]
            mapped = _interp_rows(y, q, z)
            # outside the table: shift, keeping the sampler's own tail
            mapped = np.where(y < q[:, :1], z[0] + (y - q[:, :1]), mapped)
            out[:, cols] = np.where(y > q[:, -1:], z[-1] + (y - q[:, -1:]), mapped)
        return out
