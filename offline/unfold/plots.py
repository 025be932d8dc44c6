"""Plots of unfolded distributions (with ratio panels) and of the weight diagnostics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from offline.plotting import new_figure, save_figure


def plot_unfolded(
    path: str | os.PathLike[str],
    bins: np.ndarray,
    curves: dict[str, np.ndarray],
    truth: np.ndarray | None,
    label: str,
    title: str | None = None,
) -> Path:
    """Normalised histograms (``curves``: name -> bin contents) over a ratio-to-truth panel."""
    fig, (top, bottom) = new_figure(
        2, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    centers = 0.5 * (bins[1:] + bins[:-1])

    def norm(counts):
        counts = np.asarray(counts, dtype=float)
        total = counts.sum()
        return counts / (total * np.diff(bins)) if total > 0 else counts

    ref = None
    if truth is not None:
        ref = norm(truth)
        top.fill_between(bins, np.append(ref, ref[-1]), step="post", color="0.85", label="truth")
    styles = ["-", "--", ":", "-.", (0, (5, 1))]
    for i, (name, counts) in enumerate(curves.items()):
        dens = norm(counts)
        top.step(
            bins,
            np.append(dens, dens[-1]),
            where="post",
            ls=styles[i % len(styles)],
            lw=2,
            label=name,
        )
        if ref is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(ref > 0, dens / ref, np.nan)
            bottom.step(centers, ratio, where="mid", ls=styles[i % len(styles)], lw=2)
    top.set_ylabel("normalised density")
    top.legend(fontsize="small")
    if title:
        top.set_title(title, fontsize="medium")
    bottom.axhline(1.0, color="k", lw=1)
    bottom.set_ylim(0.7, 1.3)
    bottom.set_ylabel("ratio to truth" if ref is not None else "")
    bottom.set_xlabel(label)
    return save_figure(fig, path)


def plot_diagnostics(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Effective sample size fraction and largest weight per iteration and step."""
    fig, (left, right) = new_figure(1, 2, figsize=(14, 6))
    for (member, step), rows in table.groupby(["member", "step"]):
        label = f"step {step}" + (f", member {member}" if table["member"].nunique() > 1 else "")
        left.plot(rows["iteration"], rows["ess_fraction"], marker="o", label=label)
        right.plot(rows["iteration"], rows["max_weight"], marker="o", label=label)
    left.set_xlabel("iteration")
    left.set_ylabel("ESS / N")
    right.set_xlabel("iteration")
    right.set_ylabel("largest weight / mean")
    right.set_yscale("log")
    left.legend(fontsize="small")
    return save_figure(fig, path)
