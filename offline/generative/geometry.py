"""Voxel geometry of CaloChallenge dataset 1 (photons): 368 voxels in 5 layers, r × α bins.

The binning is copied from ``code/binning_dataset_1_photons.xml`` in the
CaloChallenge repository (``CaloChallenge/homepage``): the calorimeter layers with
bins are ATLAS samplings 0, 1, 2, 3 and 12, with radial edges in mm and 1 or 10
angular (α) bins uniform in [-π, π). Within a layer the voxel index is
``alpha_bin * n_r + r_bin`` (α outer, r inner), as the challenge's ``XMLHandler``
lays them out; layers follow each other in increasing sampling id.
:func:`read_binning_xml` reads any CaloChallenge binning file, so the same code
serves other particles/datasets.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Layer:
    """One binned calorimeter layer: its sampling id, radial edges [mm] and number of α bins."""

    id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_r * self.n_alpha


@dataclass(frozen=True)
class Geometry:
    """A sequence of binned layers; voxels of layer i occupy ``slice(offsets[i], offsets[i+1])``."""

    layers: tuple[Layer, ...]
    name: str = "custom"

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_voxels(self) -> int:
        return sum(layer.n_voxels for layer in self.layers)

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([layer.n_voxels for layer in self.layers])])

    def layer_slice(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @cached_property
    def voxel_layer(self) -> np.ndarray:
        """Layer index (0..n_layers-1) of every voxel."""
        return np.repeat(np.arange(self.n_layers), [layer.n_voxels for layer in self.layers])

    @cached_property
    def voxel_r(self) -> np.ndarray:
        """Radial bin centre [mm] of every voxel (the challenge's ``radial_center_mult``)."""
        out = []
        for layer in self.layers:
            edges = np.asarray(layer.r_edges)
            out.append(np.tile(0.5 * (edges[1:] + edges[:-1]), layer.n_alpha))
        return np.concatenate(out)

    @cached_property
    def voxel_alpha(self) -> np.ndarray:
        """Angular bin centre [rad] of every voxel (midpoints of ``linspace(-π, π, n_alpha+1)``)."""
        out = []
        for layer in self.layers:
            a = np.linspace(-np.pi, np.pi, layer.n_alpha + 1)
            out.append(np.repeat(0.5 * (a[1:] + a[:-1]), layer.n_r))
        return np.concatenate(out)

    @property
    def voxel_x(self) -> np.ndarray:
        """Cartesian position [mm] of voxel centres (the challenge's η direction)."""
        return self.voxel_r * np.cos(self.voxel_alpha)

    @property
    def voxel_y(self) -> np.ndarray:
        """Cartesian position [mm] of voxel centres (the challenge's φ direction)."""
        return self.voxel_r * np.sin(self.voxel_alpha)

    def voxel_index(self, layer: int, r_mm: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Global voxel index of points at radius ``r_mm`` and angle ``alpha`` ∈ [-π, π) in a layer.

        Points beyond the last radial edge get -1 (they leave the binned region).
        """
        spec = self.layers[layer]
        r_bin = np.searchsorted(np.asarray(spec.r_edges), r_mm, side="right") - 1
        a_bin = np.floor((np.asarray(alpha) + np.pi) / (2 * np.pi) * spec.n_alpha).astype(np.int64)
        a_bin = np.clip(a_bin, 0, spec.n_alpha - 1)
        inside = (r_bin >= 0) & (r_bin < spec.n_r)
        return np.where(inside, self.offsets[layer] + a_bin * spec.n_r + r_bin, -1)


def read_binning_xml(path: str | os.PathLike[str], particle: str = "photon") -> Geometry:
    """Read a CaloChallenge binning XML; layers with a single edge (no bins) are skipped."""
    root = ET.parse(path).getroot()
    for bin_ in root:
        if bin_.attrib.get("name") != particle:
            continue
        layers = []
        for elem in bin_:
            edges = tuple(float(s) for s in elem.attrib["r_edges"].split(","))
            if len(edges) < 2:
                continue
            layers.append(Layer(int(elem.attrib["id"]), edges, int(elem.attrib["n_bin_alpha"])))
        return Geometry(tuple(layers), name=f"{os.path.basename(os.fspath(path))}:{particle}")
    raise ValueError(f"{path}: no <Bin name={particle!r}> in the binning file")


# CaloChallenge dataset 1, photons (binning_dataset_1_photons.xml): 8 + 160 + 190 + 5 + 5 = 368.
DATASET1_PHOTONS = Geometry(
    (
        Layer(0, (0, 5, 10, 30, 50, 100, 200, 400, 600), 1),
        Layer(1, (0, 2, 4, 6, 8, 10, 12, 15, 20, 30, 40, 50, 70, 90, 120, 150, 200), 10),
        Layer(
            2,
            (0, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 130, 160, 200, 250, 300, 350, 400),
            10,
        ),
        Layer(3, (0, 50, 100, 200, 400, 600), 1),
        Layer(12, (0, 100, 200, 400, 1000, 2000), 1),
    ),
    name="CaloChallenge dataset 1 photons",
)
