"""Plots of the anomaly-detection stage: loss curves, ROC, ABCD plane, closure, significance, λ scan."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from offline.plotting import new_figure, save_figure


def plot_loss_curves(history: list[dict[str, float]], path: str | os.PathLike[str]) -> Path:
    """Training and validation loss per epoch, with the DisCo² term on a second panel."""
    fig, (ax, ax2) = new_figure(2, 1, figsize=(9, 9), sharex=True)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax2.plot(epochs, [h["train_disco"] for h in history], label="train")
    ax2.plot(epochs, [h["val_disco"] for h in history], label="validation")
    ax2.set_ylabel("DisCo$^2$(R$_1$, R$_2$)")
    ax2.set_xlabel("epoch")
    ax2.legend()
    return save_figure(fig, path)


def plot_roc(
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path, rate_fpr: float | None = None
) -> Path:
    """ROC per signal: curves = {name: (fpr, tpr, auc)}; background efficiency on a log axis."""
    fig, ax = new_figure(figsize=(9, 8))
    for name, (fpr, tpr, auc) in curves.items():
        keep = fpr > 0
        ax.plot(fpr[keep], tpr[keep], label=f"{name} (AUC {auc:.3f})")
    if rate_fpr is not None:
        ax.axvline(rate_fpr, color="grey", ls="--", label="L1 rate working point")
    ax.set_xscale("log")
    ax.set_xlabel("background efficiency (FPR)")
    ax.set_ylabel("signal efficiency (TPR)")
    ax.legend(fontsize="small", loc="upper left")
    return save_figure(fig, path)


def plot_abcd_plane(
    bkg: tuple[np.ndarray, np.ndarray],
    signals: dict[str, tuple[np.ndarray, np.ndarray]],
    x: float,
    y: float,
    eps_b: float,
    path,
) -> Path:
    """Background R1-R2 density with the thresholds (regions A-D) and signal contours."""
    fig, ax = new_figure(figsize=(9, 8))
    r1, r2 = bkg
    # log axes: the background core and the signal tails span decades
    low1, low2 = max(np.quantile(r1, 0.001), 1e-6), max(np.quantile(r2, 0.001), 1e-6)
    lim1, lim2 = np.quantile(r1, 0.999) * 1.5, np.quantile(r2, 0.999) * 1.5
    for s1, s2 in signals.values():
        lim1, lim2 = max(lim1, np.quantile(s1, 0.99)), max(lim2, np.quantile(s2, 0.99))
    bins = [np.geomspace(low1, lim1, 60), np.geomspace(low2, lim2, 60)]
    h = ax.hist2d(r1, r2, bins=bins, cmin=1, cmap="Greys", norm="log")
    fig.colorbar(h[3], ax=ax, label="background events")
    for name, (s1, s2) in signals.items():
        sel = np.random.default_rng(0).permutation(len(s1))[:300]
        ax.scatter(s1[sel], s2[sel], s=4, alpha=0.5, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low1, lim1)
    ax.set_ylim(low2, lim2)
    ax.axvline(x, color="red")
    ax.axhline(y, color="red")
    mid = np.sqrt  # geometric midpoints on log axes
    for label, px, py in (
        ("A", mid(x * lim1), mid(y * lim2)),
        ("B", mid(x * lim1), mid(y * low2)),
        ("C", mid(x * low1), mid(y * lim2)),
        ("D", mid(x * low1), mid(y * low2)),
    ):
        ax.text(px, py, label, color="red", fontsize=20, ha="center", va="center")
    ax.set_xlabel("R$_1$")
    ax.set_ylabel("R$_2$")
    ax.set_title(f"ABCD regions at $\\varepsilon_B$ = {eps_b:.3g}", fontsize=16)
    if signals:
        ax.legend(fontsize="x-small", loc="upper right", markerscale=3)
    return save_figure(fig, path)


def plot_closure(scan: pd.DataFrame, path) -> Path:
    """Observed vs predicted N_A on background (top) and the pull (bottom), over ε_B."""
    b = scan[scan["sample"] == "background"]
    fig, (ax, ax2) = new_figure(
        2, 1, figsize=(9, 9), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    ax.plot(b["eps_b"], b["n_a"], "o-", label="observed $N_A$")
    ax.errorbar(
        b["eps_b"], b["predicted"], yerr=b["predicted_sigma"], fmt="s--", label="$N_B N_C / N_D$"
    )
    ax.set_ylabel("events in A")
    ax.set_xscale("log")
    ax.legend()
    ax2.plot(b["eps_b"], b["pull"], "o-")
    ax2.axhspan(-2, 2, color="grey", alpha=0.2)
    ax2.axhline(0, color="black", lw=1)
    ax2.set_ylabel("pull")
    ax2.set_xlabel("background efficiency $\\varepsilon_B$")
    return save_figure(fig, path)


def plot_significance(scan: pd.DataFrame, path, injection: float) -> Path:
    """(N_A − N_B N_C/N_D)/σ per injected signal, over ε_B."""
    fig, ax = new_figure(figsize=(9, 7))
    usable = scan[(scan["sample"] != "background") & scan["pull"].notna()]
    for name, group in usable.groupby("sample"):
        ax.plot(group["eps_b"], group["pull"], "o-", label=name)
    ax.axhline(0, color="black", lw=1)
    if usable.empty:
        ax.text(
            0.5,
            0.5,
            "no ε_B point with enough events per region",
            transform=ax.transAxes,
            ha="center",
        )
    else:
        ax.set_xscale("log")
        ax.legend(fontsize="small")
    ax.set_xlabel("background efficiency $\\varepsilon_B$")
    ax.set_ylabel("significance $(N_A - N_B N_C/N_D)/\\sigma$")
    ax.set_title(f"signal injected at {injection:.2%} of background", fontsize=16)
    return save_figure(fig, path)


def plot_lambda_scan(scan: pd.DataFrame, path) -> Path:
    """Decorrelation vs sensitivity: held-out dCor(R1, R2) and AUC per signal against λ."""
    fig, (ax, ax2) = new_figure(2, 1, figsize=(9, 9), sharex=True)
    lam = scan["lambda"].to_numpy(dtype=float)
    xs = np.where(lam > 0, lam, np.nan)
    ax.plot(lam, scan["dcor_background"], "o-")
    ax.set_ylabel("dCor(R$_1$, R$_2$) background")
    for col in [c for c in scan.columns if c.startswith("auc_")]:
        ax2.plot(lam, scan[col], "o-", label=col[4:])
    ax2.set_ylabel("AUC")
    ax2.set_xlabel("$\\lambda$")
    if np.isfinite(xs).sum() >= 2:
        ax2.set_xscale("symlog", linthresh=float(np.nanmin(xs)))
    if len(scan.columns) > 2:
        ax2.legend(fontsize="small")
    return save_figure(fig, path)
