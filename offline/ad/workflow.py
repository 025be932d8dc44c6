"""End-to-end helpers over files: train from a background file, evaluate scores, scan λ.

These are what ``l1ad train|score|abcd`` and the ``ad`` pipeline stage call.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from offline import distributed
from offline.ad.abcd import (
    DEFAULT_EPS_B,
    abcd_scan,
    max_abs_closure_pull,
    significance_at,
    thresholds,
)
from offline.ad.data import DEFAULT_FRACTIONS, Split, fit_preprocessing, inputs, split_indices
from offline.ad.disco import distance_correlation
from offline.ad.metrics import (
    DEFAULT_RATE_KHZ,
    auc,
    combined_score,
    none_if_nan,
    rate_to_fpr,
    roc,
    tpr_at_fpr,
    trigger_efficiency_at_rate,
)
from offline.ad.plots import (
    plot_abcd_plane,
    plot_closure,
    plot_lambda_scan,
    plot_roc,
    plot_significance,
)
from offline.ad.rates import DEFAULT_BOOTSTRAP, DEFAULT_RATES_KHZ, operating_point, rate_points
from offline.ad.score import Scores, score_events
from offline.ad.train import TrainConfig, TrainResult, load_pair, train_pair
from offline.artifacts import atomic_directory, check_replaceable, write_json
from offline.events.io import Events, read_events
from offline.preprocess import Preprocessing

SPLIT_FILE = "split.json"
PREPROCESSING_FILE = "preprocessing.json"
ABCD_KIND = "abcd"  # atomic_directory replaces only earlier abcd outputs


def load_background(path: str | os.PathLike[str], seed: int, fractions=DEFAULT_FRACTIONS) -> tuple[Events, Split]:
    events = read_events(path)
    return events, split_indices(len(events), seed, tuple(fractions))


def train_from_file(
    background: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: TrainConfig,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    resume: bool = False,
) -> TrainResult:
    """Split the background (seeded by ``config.seed``), fit the preprocessing on its training part, train.

    Writes ``preprocessing.json`` and ``split.json`` beside the checkpoint in ``out_dir``.
    Works under ``torchrun`` (every rank reads the file; rank 0 writes).
    """
    out_dir = Path(out_dir)
    events, split = load_background(background, config.seed, fractions)
    train, val = events[split.train], events[split.val]
    info = distributed.setup(config.device)
    pre = fit_preprocessing(train, out_dir / PREPROCESSING_FILE if info.is_main else None)
    if info.is_main:
        write_json(out_dir / SPLIT_FILE, {"background": str(background), "seed": config.seed,
                                          "fractions": list(fractions), "events": len(events)})
    extra = {"background": str(background), "split_fractions": list(fractions)}
    return train_pair(inputs(train, pre), train.event_weights, inputs(val, pre), val.event_weights, config,
                      out_dir, resume=resume, extra_config=extra)


def _tuple(s: Scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return s.r1, s.r2, s.weights


def evaluate_scores(
    background: Scores,
    signals: dict[str, Scores],
    out_dir: str | os.PathLike[str] | None = None,
    eps_b: tuple[float, ...] = DEFAULT_EPS_B,
    working_eps_b: float = 0.01,
    injection: float = 1e-3,
    min_region_events: int = 100,
    rate_khz: float = DEFAULT_RATE_KHZ,
    dcor_max_events: int = 20_000,
    rates_khz: tuple[float, ...] = DEFAULT_RATES_KHZ,
    bootstrap: int = DEFAULT_BOOTSTRAP,
) -> dict[str, Any]:
    """Every figure of merit of one scored pair; with ``out_dir`` also CSV tables, plots, metrics.json.

    Returns {"metrics": per-signal DataFrame, "abcd": scan DataFrame, "summary": JSON-ready dict,
    "plots": {name: path}}. The ROC score is :func:`offline.ad.metrics.combined_score`.
    ``summary["rates"]`` holds the trigger at each of ``rates_khz`` (thresholds with bootstrap
    errors, TPR per signal with weighted binomial errors, the tail's effective sample size;
    :mod:`offline.ad.rates`) and ``summary["fpr_1e-5"]`` the same at FPR 10⁻⁵.
    """
    if out_dir is not None:
        check_replaceable(out_dir, ABCD_KIND)  # before the work, not after
    b1, b2, bw = _tuple(background)
    rows, curves = [], {}
    fpr_rate = rate_to_fpr(rate_khz)
    sb = combined_score(b1, b2, b1, b2, bw)
    for name, s in signals.items():
        ss = combined_score(s.r1, s.r2, b1, b2, bw)
        a = auc(sb, ss, bw, s.weights)
        fpr, tpr, _ = roc(sb, ss, bw, s.weights)
        curves[name] = (fpr, tpr, a)
        low = tpr_at_fpr(sb, ss, 1e-5, bw, s.weights)
        at_rate = trigger_efficiency_at_rate(b1, b2, s.r1, s.r2, rate_khz, bw, s.weights)
        rows.append({
            "signal": name,
            "events": len(s),
            "auc": a,
            "auc_r1": auc(b1, s.r1, bw, s.weights),
            "auc_r2": auc(b2, s.r2, bw, s.weights),
            "tpr_at_fpr_1e-5": low.tpr,
            f"tpr_at_{rate_khz:g}kHz": at_rate.tpr,
        })
    metrics = pd.DataFrame(rows).set_index("signal") if rows else pd.DataFrame()
    dcor_bkg = distance_correlation(b1, b2, bw, max_events=dcor_max_events)
    scan = abcd_scan(b1, b2, bw, {k: _tuple(v) for k, v in signals.items()}, eps_b, injection, min_region_events)
    signif = significance_at(scan, working_eps_b)
    sig_tuples = {k: _tuple(v) for k, v in signals.items()}
    rates = rate_points((b1, b2, bw), sig_tuples, tuple(rates_khz), bootstrap)
    fpr_low = operating_point((b1, b2, bw), sig_tuples, 1e-5, bootstrap)
    summary = {
        "ad": {
            "auc": {k: none_if_nan(v) for k, v in metrics["auc"].items()} if rows else {},
            "tpr_at_fpr_1e-5": {k: none_if_nan(v) for k, v in metrics["tpr_at_fpr_1e-5"].items()} if rows else {},
            "tpr_at_rate": {k: none_if_nan(v) for k, v in metrics[f"tpr_at_{rate_khz:g}kHz"].items()} if rows else {},
            "rate_khz": rate_khz,
            "fpr_at_rate": fpr_rate,
            "dcor_background": none_if_nan(dcor_bkg),
            "background_test_events": len(background),
        },
        "abcd": {
            "max_abs_closure_pull": none_if_nan(max_abs_closure_pull(scan)),
            "significance": {k: none_if_nan(v) for k, v in signif.items()},
            "working_eps_b": working_eps_b,
            "injection": injection,
            "min_region_events": min_region_events,
        },
        "rates": {f"{r:g}": p.to_dict() for r, p in rates.items()},
        "fpr_1e-5": fpr_low.to_dict(),
    }
    plots: dict[str, Path] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        with atomic_directory(out_dir, kind=ABCD_KIND) as tmp:  # whole or not at all
            if rows:
                metrics.to_csv(tmp / "metrics.csv")
                plots["roc"] = plot_roc(curves, tmp / "roc.png", fpr_rate)
            scan.to_csv(tmp / "abcd_scan.csv", index=False)
            x, y = thresholds(b1, b2, bw, working_eps_b)
            plots["abcd_plane"] = plot_abcd_plane((b1, b2), {k: (v.r1, v.r2) for k, v in signals.items()}, x, y,
                                                  working_eps_b, tmp / "abcd_plane.png")
            plots["closure"] = plot_closure(scan, tmp / "abcd_closure.png")
            if signals:
                plots["significance"] = plot_significance(scan, tmp / "abcd_significance.png", injection)
            write_json(tmp / "metrics.json", {**summary, "per_signal": metrics.reset_index().to_dict("records")
                                              if rows else []})
        plots = {k: out_dir / Path(p).name for k, p in plots.items()}
    return {"metrics": metrics, "abcd": scan, "summary": summary, "plots": plots}


def lambda_scan(
    background: str | os.PathLike[str],
    signals: dict[str, str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    lambdas: list[float],
    config: TrainConfig,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> pd.DataFrame:
    """Train one pair per λ (same seed, same split) and tabulate held-out dCor and AUC per signal."""
    out_dir = Path(out_dir)
    events, split = load_background(background, config.seed, fractions)
    test = events[split.test]
    sig_events = {name: read_events(path) for name, path in signals.items()}
    rows = []
    for lam in lambdas:
        sub = out_dir / f"lambda_{lam:g}"
        train_from_file(background, sub, replace(config, lam=float(lam)), fractions)
        model = load_pair(sub)
        pre = Preprocessing.load(sub / PREPROCESSING_FILE)
        bkg = score_events(model, pre, test)
        sig = {k: score_events(model, pre, v) for k, v in sig_events.items()}
        row: dict[str, Any] = {"lambda": float(lam),
                               "dcor_background": distance_correlation(bkg.r1, bkg.r2, bkg.weights)}
        for k, s in sig.items():
            row[f"auc_{k}"] = auc(combined_score(bkg.r1, bkg.r2, bkg.r1, bkg.r2, bkg.weights),
                                  combined_score(s.r1, s.r2, bkg.r1, bkg.r2, bkg.weights), bkg.weights, s.weights)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.to_csv(out_dir / "lambda_scan.csv", index=False)
    plot_lambda_scan(frame, out_dir / "lambda_scan.png")
    return frame


def held_out_scores(checkpoint_dir: str | os.PathLike[str], background: str | os.PathLike[str], seed: int,
                fractions=DEFAULT_FRACTIONS, device: str = "cpu") -> Scores:
    """Scores of the held-out test background of ``background`` (the split training used)."""
    checkpoint_dir = Path(checkpoint_dir)
    events, split = load_background(background, seed, fractions)
    pre = Preprocessing.load(checkpoint_dir / PREPROCESSING_FILE)
    return score_events(load_pair(checkpoint_dir), pre, events[split.test], device)
