"""Shower files in the CaloChallenge HDF5 layout: ``incident_energies`` (N, 1), ``showers`` (N, voxels), MeV.

Real CaloChallenge files load unchanged; files written here add a JSON
``l1ad_metadata`` attribute (generator, seed, ...) that readers never require.
Reading validates what models silently choke on: voxel count, NaN/inf, negative
energies, mismatched lengths.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from offline.artifacts import FileFormatError, atomic_path
from offline.generative.geometry import DATASET1_PHOTONS, Geometry

ENERGY_KEY = "incident_energies"
SHOWER_KEY = "showers"
METADATA_ATTR = "l1ad_metadata"


class ShowerFileError(FileFormatError):
    """A shower file is missing, malformed or holds bad values; the message names file and problem."""


@dataclass(frozen=True)
class Showers:
    """Incident energies (N,) and voxel energies (N, voxels), both in MeV."""

    incident_energies: np.ndarray
    showers: np.ndarray

    def __len__(self) -> int:
        return len(self.incident_energies)

    def __getitem__(self, index: slice | np.ndarray) -> Showers:
        return Showers(self.incident_energies[index], self.showers[index])


def deposits_as_float32(showers: np.ndarray, incident_energies: np.ndarray) -> np.ndarray:
    """Voxel energies (N, V) as float32 whose sum never exceeds the incident energy, in any summation order.

    Rounding each voxel to float32 (relative error <= u = 2^-24) and then adding
    V float32 numbers in any order (relative error <= gamma_V = V u / (1 - V u),
    Higham, *Accuracy and Stability of Numerical Algorithms*, eq. 4.4) can push a
    shower that deposits all of E a few ulps above E. Showers that close to E are
    scaled down by that much (at most ~V u = 2e-5 relative) before the cast.
    """
    x = np.asarray(showers, dtype=np.float64)
    e = np.asarray(incident_energies, dtype=np.float64).reshape(-1, 1)
    u = 2.0**-24
    n = max(x.shape[1], 1) if x.ndim == 2 else 1
    gamma = n * u / (1.0 - n * u)
    # 1e-12: the float64 arithmetic of this line and the next, and float32 subnormals (< 2^-149 each)
    limit = e / ((1.0 + u) * (1.0 + gamma)) * (1.0 - 1e-12)
    total = x.sum(axis=1, keepdims=True)
    scale = np.where(total > limit, limit / np.where(total > 0, total, 1.0), 1.0)
    return (x * scale).astype(np.float32)


def validate_showers(
    incident_energies: np.ndarray,
    showers: np.ndarray,
    geometry: Geometry = DATASET1_PHOTONS,
    where: str = "showers",
) -> Showers:
    """Check shapes and values; return float arrays (energies (N,) float64, showers float32).

    Raises ValueError naming ``where`` and the problem: wrong voxel count, length
    mismatch, NaN/inf, negative voxel energies, non-positive incident energies.
    """
    e = np.asarray(incident_energies, dtype=np.float64)
    if e.ndim == 2 and e.shape[1] == 1:
        e = e[:, 0]
    if e.ndim != 1:
        raise ValueError(
            f"{where}: incident energies must have shape (N,) or (N, 1), got {e.shape}"
        )
    x = np.asarray(showers, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{where}: showers must have shape (N, voxels), got {x.shape}")
    if x.shape[1] != geometry.n_voxels:
        raise ValueError(
            f"{where}: showers have {x.shape[1]} voxels, but the geometry "
            f"({geometry.name}) has {geometry.n_voxels}"
        )
    if len(e) != len(x):
        raise ValueError(f"{where}: {len(e)} incident energies but {len(x)} showers")
    if not np.all(np.isfinite(e)):
        raise ValueError(
            f"{where}: incident energies contain NaN or inf ({np.count_nonzero(~np.isfinite(e))} values)"
        )
    if e.size and e.min() <= 0:
        raise ValueError(f"{where}: incident energies must be positive (MeV), min is {e.min():.6g}")
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        raise ValueError(
            f"{where}: showers contain NaN or inf ({int(bad.sum())} voxels, first in shower {row})"
        )
    if x.size and x.min() < 0:
        row, col = map(int, np.unravel_index(int(np.argmin(x)), x.shape))
        raise ValueError(
            f"{where}: negative voxel energies ({int((x < 0).sum())} voxels; "
            f"min {x.min():.6g} MeV in shower {row}, voxel {col})"
        )
    return Showers(e, x)


def read_showers(
    path: str | os.PathLike[str],
    geometry: Geometry = DATASET1_PHOTONS,
    max_events: int | None = None,
) -> Showers:
    """Read and validate a CaloChallenge-layout file (``ShowerFileError`` names file and problem)."""
    path = Path(path)
    if not path.is_file():
        raise ShowerFileError(path, "no such file")
    try:
        with h5py.File(path, "r") as f:
            for key in (ENERGY_KEY, SHOWER_KEY):
                if key not in f:
                    raise ShowerFileError(
                        path, f"missing dataset {key!r} (found {sorted(f.keys())})"
                    )
            sl = slice(None) if max_events is None else slice(0, max_events)
            e = f[ENERGY_KEY][sl]
            x = f[SHOWER_KEY][sl]
    except (
        OSError,
        RuntimeError,
        KeyError,
        TypeError,
    ) as err:  # HDF5's ways of reporting a damaged file
        raise ShowerFileError(path, f"not a readable HDF5 file ({err})") from None
    try:
        return validate_showers(e, x, geometry, where=str(path))
    except ShowerFileError:
        raise
    except ValueError as err:
        raise ShowerFileError(path, str(err).removeprefix(f"{path}: ")) from None


def read_shower_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        raw = f.attrs.get(METADATA_ATTR)
    return {} if raw is None else json.loads(raw)


def write_showers(
    path: str | os.PathLike[str],
    data: Showers,
    metadata: dict[str, Any] | None = None,
    geometry: Geometry = DATASET1_PHOTONS,
) -> Path:
    """Write the CaloChallenge layout atomically (validated first; never leaves a partial file)."""
    data = validate_showers(data.incident_energies, data.showers, geometry, where=str(path))
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(
                ENERGY_KEY, data=data.incident_energies.reshape(-1, 1), compression="gzip"
            )
            f.create_dataset(SHOWER_KEY, data=data.showers, compression="gzip", shuffle=True)
            if metadata:
                f.attrs[METADATA_ATTR] = json.dumps(metadata)
    return path
