"""Bit-width × sparsity scan: physics performance against a hardware-cost proxy, and its Pareto front.

Cost proxy: bit operations, BOPs = Σ_layers nnz(W) · b_w · b_in (Baskin et al.,
arXiv 1804.10969, without the accumulator term): every non-zero weight is one
b_w × b_in multiplication in the firmware, zero weights cost nothing once hls4ml
(or da4ml) drops them. It ranks designs the way LUT counts of unrolled dense
layers do, without running synthesis.

Each point fine-tunes the float checkpoint with QAT at ``weight_bits = activation_bits
= b`` (integer bits as in the base config, input and score types unchanged) and the
given sparsity, then scores the held-out test background and the signals with the
bit-exact executor of the spec (the trigger emulator, through ``quantize.workflow``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from offline.ad.defaults import DEFAULT_RATE_KHZ
from offline.artifacts import atomic_directory, check_replaceable
from offline.events.io import read_events
from offline.plotting import new_figure, save_figure
from quantize.defaults import DEFAULT_SCAN_BITS, DEFAULT_SCAN_SPARSITY
from quantize.precision import QuantConfig, build_spec
from quantize.qat import QATConfig
from quantize.spec import FirmwareSpec, weight_key
from quantize.workflow import (
    FRAMEWORKS,
    compare,
    load_float_with_split,
    train_quantized,
)

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_SPARSITY",
    "bit_operations",
    "pareto_front",
    "plot_scan",
    "run_scan",
]

DEFAULT_BITS = DEFAULT_SCAN_BITS
DEFAULT_SPARSITY = DEFAULT_SCAN_SPARSITY
FLOAT_BITS = 32
SCAN_KIND = "quantize-scan"  # atomic_directory replaces only earlier scans


def bit_operations(spec: FirmwareSpec, weights: dict[str, np.ndarray] | None = None) -> int:
    """BOPs of both autoencoders; with no weights every weight counts (dense)."""
    total = 0
    for i, ae in enumerate(spec.autoencoders):
        t_in = spec.input
        for k, d in enumerate(ae.layers):
            nnz = (
                d.n_in * d.n_out
                if weights is None
                else int(np.count_nonzero(weights[weight_key(i, k, "weight")]))
            )
            total += nnz * d.weight.width * t_in.width
            t_in = d.activation_result
    return total


def pareto_front(cost: np.ndarray, merit: np.ndarray) -> np.ndarray:
    """True for points no other point beats (cost <= and merit >=, one strictly)."""
    cost, merit = np.asarray(cost, dtype=float), np.asarray(merit, dtype=float)
    out = np.ones(len(cost), dtype=bool)
    for j in range(len(cost)):
        dominated = (
            (cost <= cost[j]) & (merit >= merit[j]) & ((cost < cost[j]) | (merit > merit[j]))
        )
        out[j] = not dominated.any()
    return out


def run_scan(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    signals: Mapping[str, str | os.PathLike[str]],
    framework: str = "brevitas",
    background: str | os.PathLike[str] | None = None,
    bits: tuple[int, ...] = DEFAULT_BITS,
    sparsities: tuple[float, ...] = DEFAULT_SPARSITY,
    base: QuantConfig | None = None,
    qat: QATConfig | None = None,
    rate_khz: float = DEFAULT_RATE_KHZ,
) -> pd.DataFrame:
    """One QAT per (bits, sparsity); writes ``scan.csv`` and ``scan.png`` into ``out_dir``; returns the table.

    The table's first row is the float pair (cost at 32-bit weights and activations, dense).
    ``mean_auc``/``mean_tpr`` average over signals; ``pareto`` marks the front in (BOPs, mean TPR),
    falling back to mean AUC where the TPR is not resolvable.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    if not signals:
        raise ValueError("the scan needs at least one signal file")
    out_dir = Path(out_dir)
    check_replaceable(out_dir, SCAN_KIND)
    base = base or QuantConfig()
    qat = qat or QATConfig(epochs=3)
    fm, train, val, test = load_float_with_split(checkpoint, background)
    sig_events = {k: read_events(p) for k, p in signals.items()}
    lam = fm.lam if qat.lam is None else qat.lam

    rows: list[dict[str, Any]] = []
    points = [(b, s) for b in bits for s in sparsities]
    for b, s in tqdm(points, desc="quantization scan", disable=not qat.progress):
        config = base.uniform(b)
        spec = build_spec(fm.architecture, config, fm.preprocessing)
        _, weights, _ = train_quantized(
            framework, spec, fm.pair, train, val, replace(qat, sparsity=s), lam
        )
        cmp = compare(fm.pair, fm.preprocessing, spec, weights, test, sig_events, rate_khz)
        if not rows:  # the float pair's figures are in every comparison; take them once
            dense = sum(d.n_in * d.n_out for ae in spec.autoencoders for d in ae.layers)
            rows.append(
                _row("float", FLOAT_BITS, 0.0, dense * FLOAT_BITS * FLOAT_BITS, cmp, "float")
            )
        rows.append(_row("quantized", b, s, bit_operations(spec, weights), cmp, "quantized"))
    frame = pd.DataFrame(rows)
    merit = frame["mean_tpr"] if frame["mean_tpr"].notna().all() else frame["mean_auc"]
    frame["pareto"] = pareto_front(frame["bops"].to_numpy(), merit.to_numpy())
    with atomic_directory(out_dir, kind=SCAN_KIND) as tmp:
        frame.to_csv(tmp / "scan.csv", index=False)
        plot_scan(frame, tmp / "scan.png", rate_khz)
    return frame


def _row(
    model: str, bits: int, sparsity: float, bops: int, cmp: pd.DataFrame, which: str
) -> dict[str, Any]:
    row = {"model": model, "bits": bits, "sparsity": sparsity, "bops": bops}
    for name, r in cmp.iterrows():
        row[f"auc_{name}"] = r[f"auc_{which}"]
        row[f"tpr_{name}"] = r[f"tpr_{which}"]
    row["mean_auc"] = float(cmp[f"auc_{which}"].mean())
    tpr = pd.to_numeric(cmp[f"tpr_{which}"], errors="coerce")
    row["mean_tpr"] = float(tpr.mean()) if tpr.notna().all() else None
    return row


def plot_scan(frame: pd.DataFrame, path: str | os.PathLike[str], rate_khz: float) -> Path:
    use_tpr = frame["mean_tpr"].notna().all()
    col = "mean_tpr" if use_tpr else "mean_auc"
    fig, ax = new_figure(figsize=(8, 6))
    q = frame[frame["model"] == "quantized"]
    for s, group in q.groupby("sparsity"):
        ax.scatter(group["bops"], group[col], label=f"sparsity {s:g}", zorder=3)
        for _, r in group.iterrows():
            ax.annotate(
                f"{int(r['bits'])}b",
                (r["bops"], r[col]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=10,
            )
    f = frame[frame["model"] == "float"]
    if len(f):
        ax.axhline(float(f[col].iloc[0]), color="gray", ls="--", label="float")
    front = frame[frame["pareto"]].sort_values("bops")
    ax.step(front["bops"], front[col], where="post", color="black", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("bit operations (BOPs)")
    ax.set_ylabel(f"mean trigger efficiency at {rate_khz:g} kHz" if use_tpr else "mean AUC")
    ax.legend(fontsize=11)
    return save_figure(fig, path)
