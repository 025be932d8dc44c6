"""Shower plots: average images per layer (polar r × α), feature histograms with ratio panels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from offline.generative.evaluate import high_level_features
from offline.generative.geometry import DATASET1_PHOTONS, Geometry
from offline.plotting import new_figure, save_figure


def plot_average_images(
    samples: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    geometry: Geometry = DATASET1_PHOTONS,
) -> Path:
    """Rows: samples (name -> (energies, showers)); columns: layers; mean energy per voxel, log colour.

    Radii are drawn as log10(1 + r/mm) so the fine inner bins stay visible.
    """
    names = list(samples)
    means = {k: np.asarray(v[1], dtype=np.float64).mean(axis=0) for k, v in samples.items()}
    positive = np.concatenate([m[m > 0] for m in means.values()])
    vmin = max(positive.min() if positive.size else 1e-3, 1e-3)
    vmax = max(positive.max() if positive.size else 1.0, vmin * 10)
    fig, axes = new_figure(
        len(names),
        geometry.n_layers,
        figsize=(3.2 * geometry.n_layers, 3.2 * len(names)),
        subplot_kw={"projection": "polar"},
        squeeze=False,
    )
    mesh = None
    for row, name in enumerate(names):
        for col, layer in enumerate(geometry.layers):
            ax = axes[row, col]
            img = means[name][geometry.layer_slice(col)].reshape(layer.n_alpha, layer.n_r)
            # draw at least 36 sectors: a single α bin spanning the full circle renders as nothing
            sub = max(1, int(np.ceil(36 / layer.n_alpha)))
            img = np.repeat(img, sub, axis=0)
            alpha = np.linspace(-np.pi, np.pi, layer.n_alpha * sub + 1)
            radius = np.log10(1.0 + np.asarray(layer.r_edges))
            aa, rr = np.meshgrid(alpha, radius, indexing="ij")
            mesh = ax.pcolormesh(
                aa, rr, np.where(img > 0, img, np.nan), norm=LogNorm(vmin, vmax), cmap="viridis"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(f"layer {layer.id}", fontsize=14)
            if col == 0:
                ax.text(
                    -0.25, 0.5, name, transform=ax.transAxes, rotation=90, va="center", fontsize=14
                )
    if mesh is not None:
        fig.colorbar(
            mesh, ax=axes.ravel().tolist(), shrink=0.6, label="mean energy per voxel [MeV]"
        )
    return save_figure(fig, path)


def plot_feature_histograms(
    reference: tuple[np.ndarray, np.ndarray],
    samples: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    geometry: Geometry = DATASET1_PHOTONS,
    bins: int = 30,
) -> Path:
    """Every high-level feature: reference (filled) vs each sample (lines), ratio sample/reference below."""
    ref_f = high_level_features(*reference, geometry)
    gen_f = {k: high_level_features(*v, geometry) for k, v in samples.items()}
    names = list(ref_f)
    ncols = 6
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(
        2 * nrows,
        ncols,
        figsize=(4.0 * ncols, 4.2 * nrows),
        gridspec_kw={"height_ratios": [3, 1] * nrows, "hspace": 0.12, "wspace": 0.35},
        squeeze=False,
    )
    for k, name in enumerate(names):
        r, c = divmod(k, ncols)
        top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
        values = [ref_f[name], *(g[name] for g in gen_f.values())]
        lo, hi = np.nanpercentile(np.concatenate(values), [0.5, 99.5])
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        h_ref, _ = np.histogram(np.clip(ref_f[name], lo, hi), edges, density=True)
        top.stairs(h_ref, edges, fill=True, alpha=0.3, color="grey", label="reference")
        for gname, g in gen_f.items():
            h, _ = np.histogram(np.clip(g[name], lo, hi), edges, density=True)
            (line,) = top.step(centres, h, where="mid", label=gname)
            ratio = np.divide(h, h_ref, out=np.full_like(h, np.nan), where=h_ref > 0)
            bottom.step(centres, ratio, where="mid", color=line.get_color())
        bottom.axhline(1.0, color="grey", lw=1)
        bottom.set_ylim(0.5, 1.5)
        for ax in (top, bottom):  # minor ticks on ~60 axes dominate the drawing time
            ax.minorticks_off()
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(4))
        top.set_xticklabels([])
        top.text(0.03, 0.95, name, transform=top.transAxes, va="top", fontsize=10)
        top.set_ylim(0, 1.25 * max(top.get_ylim()[1], 1e-12))
        top.tick_params(labelsize=9)
        bottom.tick_params(labelsize=9)
        if k == 0:
            top.legend(fontsize=9, loc="upper right")
    for k in range(len(names), nrows * ncols):
        r, c = divmod(k, ncols)
        axes[2 * r, c].set_visible(False)
        axes[2 * r + 1, c].set_visible(False)
    return save_figure(fig, path)


def plot_losses(curves: dict[str, list[float]], path: str | os.PathLike[str]) -> Path:
    """Training/distillation loss curves, one line each, log y."""
    fig, ax = new_figure(figsize=(8, 6))
    for name, values in curves.items():
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("epoch / iteration")
    ax.set_ylabel("loss")
    ax.legend()
    return save_figure(fig, path)
