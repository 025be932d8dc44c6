"""Firmware-friendly preprocessing: per feature ``(x - offset) >> shift``.

The inputs are L1 objects in hardware units (integer words, as the Global
Trigger receives them): pT in 0.5 GeV steps, eta and phi in calorimeter-tower
halves (LSB 0.0435 in eta, 2*pi/144 in phi), the units AXOL1TL uses in the CMS
Global Trigger. Each feature then gets an integer offset and a power-of-two
scale, so the firmware needs one subtractor and a re-wiring of the binary point,
no multiplier. ``>> shift`` keeps the fractional bits (it moves the binary
point): the float value ``(x - offset) * 2**-shift`` is exact and equals the
integer ``(x - offset) << (F - shift)`` read with F fractional bits.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offline.artifacts import read_json, write_json
from offline.events.schema import N_FEATURES, feature_names

# LSB of each (pT, eta, phi) column in physical units: GeV, 1, rad.
HARDWARE_LSB: dict[str, float] = {"pt": 0.5, "eta": 0.087 / 2, "phi": 2 * math.pi / 144}
FORMAT_VERSION = 1


def hardware_lsb() -> np.ndarray:
    """LSB of each of the 57 features, in model order."""
    return np.tile([HARDWARE_LSB["pt"], HARDWARE_LSB["eta"], HARDWARE_LSB["phi"]], N_FEATURES // 3)


def to_hardware(features: np.ndarray) -> np.ndarray:
    """Physical (N, 57) features -> integer hardware words (int64), rounded to the nearest LSB."""
    _check_features(features)
    return np.rint(features / hardware_lsb()).astype(np.int64)


def from_hardware(words: np.ndarray) -> np.ndarray:
    """Integer hardware words -> physical units (float64)."""
    return np.asarray(words, dtype=np.float64) * hardware_lsb()


def _check_features(x: np.ndarray) -> None:
    if x.ndim != 2 or x.shape[1] != N_FEATURES:
        raise ValueError(f"expected features of shape (N, {N_FEATURES}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold NaN or inf")


@dataclass(frozen=True)
class Preprocessing:
    """Integer offsets and power-of-two shifts of the 57 hardware-unit features."""

    offsets: tuple[int, ...]
    shifts: tuple[int, ...]
    lsb: dict[str, float] = field(default_factory=lambda: dict(HARDWARE_LSB))

    def __post_init__(self) -> None:
        if len(self.offsets) != N_FEATURES or len(self.shifts) != N_FEATURES:
            raise ValueError(
                f"preprocessing needs {N_FEATURES} offsets and shifts, got {len(self.offsets)} and {len(self.shifts)}"
            )
        if not all(isinstance(v, int) for v in (*self.offsets, *self.shifts)):
            raise ValueError("preprocessing offsets and shifts must be integers")

    @classmethod
    def fit(cls, words: np.ndarray, weights: np.ndarray | None = None) -> Preprocessing:
        """Fit on background hardware words: offset = rounded weighted mean, scale 2**shift >= std."""
        words = np.asarray(words)
        _check_features(words.astype(np.float64))
        w = np.ones(len(words)) if weights is None else np.asarray(weights, dtype=np.float64)
        mean = np.average(words, axis=0, weights=w)
        std = np.sqrt(np.average((words - mean) ** 2, axis=0, weights=w))
        return cls.from_moments(mean, std)

    @classmethod
    def from_moments(cls, mean: np.ndarray, std: np.ndarray) -> Preprocessing:
        """From the weighted mean and standard deviation of each hardware word (e.g. accumulated in chunks)."""
        offsets = tuple(int(v) for v in np.rint(mean))
        # smallest power of two at least the spread: scaled features have std in (0.5, 1]
        shifts = tuple(math.ceil(math.log2(s)) if s > 0 else 0 for s in std)
        return cls(offsets, shifts)

    @property
    def fractional_bits(self) -> int:
        """Fractional bits the integer form needs to be exact (the largest shift, at least 0)."""
        return max(0, *self.shifts)

    def apply(self, words: np.ndarray) -> np.ndarray:
        """Float form, float64: ``(x - offset) * 2**-shift`` (exact)."""
        words = np.asarray(words, dtype=np.int64)
        return (words - np.asarray(self.offsets)) * np.exp2(
            -np.asarray(self.shifts, dtype=np.float64)
        )

    def apply_integer(self, words: np.ndarray, frac_bits: int | None = None) -> np.ndarray:
        """Integer form: the same values scaled by ``2**frac_bits``, as int64 (shifts only)."""
        frac_bits = self.fractional_bits if frac_bits is None else frac_bits
        if frac_bits < self.fractional_bits:
            raise ValueError(
                f"{frac_bits} fractional bits cannot hold shifts up to {self.fractional_bits}"
            )
        left = frac_bits - np.asarray(self.shifts, dtype=np.int64)
        return (np.asarray(words, dtype=np.int64) - np.asarray(self.offsets)) << left

    def to_dict(self) -> dict:
        names = feature_names()
        return {
            "format_version": FORMAT_VERSION,
            "lsb": self.lsb,
            "features": [
                {"name": n, "offset": o, "shift": s}
                for n, o, s in zip(names, self.offsets, self.shifts, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "preprocessing") -> Preprocessing:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: must be a JSON object, got {type(data).__name__}")
        try:
            if data["format_version"] != FORMAT_VERSION:
                raise ValueError(
                    f"{where}: format_version {data['format_version']!r} is not {FORMAT_VERSION}"
                )
            feats = data["features"]
            if not isinstance(feats, list) or not all(isinstance(f, dict) for f in feats):
                raise ValueError(f"{where}: 'features' must be a list of objects")
            if [f["name"] for f in feats] != feature_names():
                raise ValueError(
                    f"{where}: 'features' must list the {N_FEATURES} features in model order"
                )
            values = [(f["offset"], f["shift"]) for f in feats]
            if any(isinstance(v, bool) or not isinstance(v, int) for pair in values for v in pair):
                raise ValueError(f"{where}: offsets and shifts must be integers")
            lsb = data["lsb"]
            if not isinstance(lsb, dict):
                raise ValueError(f"{where}: 'lsb' must be an object")
            return cls(tuple(o for o, _ in values), tuple(s for _, s in values), dict(lsb))
        except KeyError as err:
            raise ValueError(f"{where}: missing field {err}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Preprocessing:
        return cls.from_dict(read_json(path, "preprocessing file"), where=str(Path(path)))
