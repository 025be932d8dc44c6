"""End-to-end helpers over files: train from a background file, evaluate scores, scan λ.

These are what ``l1ad train|score|abcd`` and the ``ad`` pipeline stage call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from offline import distributed
from offline.ad.abcd import (
    abcd_scan,
    max_abs_closure_pull,
    significance_at,
    thresholds,
)
from offline.ad.consistency import closure_consistency
from offline.ad.data import (
    ArraySource,
    BatchSource,
    EventFileSource,
    Split,
    file_sha256,
    fit_preprocessing,
    fit_preprocessing_streamed,
    inputs,
    split_indices,
)
from offline.ad.defaults import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_EPS_B,
    DEFAULT_FRACTIONS,
    DEFAULT_INJECTION,
    DEFAULT_MIN_REGION_EVENTS,
    DEFAULT_RATE_KHZ,
    DEFAULT_RATES_KHZ,
    DEFAULT_WORKING_EPS_B,
)
from offline.ad.disco import distance_correlation
from offline.ad.metrics import (
    auc,
    combined_score,
    none_if_nan,
    rate_to_fpr,
    roc,
    tpr_at_fpr,
    trigger_efficiency_at_rate,
    weights_or_ones,
)
from offline.ad.plots import (
    plot_abcd_plane,
    plot_closure,
    plot_lambda_scan,
    plot_roc,
    plot_significance,
)
from offline.ad.rates import bootstrap_sigma, operating_point, rate_points
from offline.ad.score import Scores, score_events
from offline.ad.train import (
    TrainConfig,
    TrainResult,
    build_pair,
    check_resume,
    fit_sources,
    load_pair,
)
from offline.artifacts import atomic_directory, check_replaceable, write_json
from offline.events.io import Events, event_count, read_events
from offline.preprocess import Preprocessing

SPLIT_FILE = "split.json"
PREPROCESSING_FILE = "preprocessing.json"
ABCD_KIND = "abcd"  # atomic_directory replaces only earlier abcd outputs
DCOR_BOOTSTRAP = 20  # replicas of the O(N²) dCor error
LIMITED_RELATIVE_ERROR = 0.3  # a TPR known to worse than 30 % is called statistically limited
MIN_INJECTED = 1000  # injected signal events the significance figure asks for


def load_background(
    path: str | os.PathLike[str], seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> tuple[Events, Split]:
    events = read_events(path)
    return events, split_indices(len(events), seed, tuple(fractions))


def train_from_file(
    background: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: TrainConfig,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    resume: bool = False,
    stream: bool = False,
) -> TrainResult:
    """Split the background (seeded by ``config.seed``), fit the preprocessing on its training part, train.

    Writes ``preprocessing.json`` and ``split.json`` beside the checkpoint in ``out_dir``.
    ``stream`` reads the file chunk by chunk instead of into memory (files larger than memory;
    needs ``config.shuffle_chunk > 0``, and gives the same model as in-memory training with the
    same settings). ``resume`` refuses, before writing anything, a file or settings that differ
    from the checkpoint's. Works under ``torchrun`` (every rank reads the file; rank 0 writes).
    """
    out_dir = Path(out_dir)
    if stream and config.shuffle_chunk == 0:
        raise ValueError(
            "streamed training reads contiguous chunks: set shuffle_chunk > 0 (--shuffle-chunk)"
        )
    n = event_count(background)
    split = split_indices(n, config.seed, tuple(fractions))
    fingerprint = {
        "background": {"events": n, "sha256": file_sha256(background)},
        "split": {"seed": config.seed, "fractions": [float(f) for f in fractions]},
    }
    if resume:
        check_resume(out_dir, config, fingerprint)
    info = distributed.setup(config.device)
    if stream:
        pre = fit_preprocessing_streamed(background, split.train)
        train: BatchSource = EventFileSource(Path(background), split.train, pre)
        val: BatchSource = EventFileSource(Path(background), split.val, pre)
    else:
        events = read_events(background)
        train_events, val_events = events[split.train], events[split.val]
        pre = fit_preprocessing(train_events)
        train = ArraySource(inputs(train_events, pre), train_events.event_weights)
        val = ArraySource(inputs(val_events, pre), val_events.event_weights)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        pre.save(out_dir / PREPROCESSING_FILE)
        write_json(
            out_dir / SPLIT_FILE,
            {
                "background": str(background),
                "seed": config.seed,
                "fractions": list(fractions),
                "events": n,
            },
        )
    extra = {"background": str(background), "split_fractions": list(fractions)}
    arch, model = build_pair(config)
    return fit_sources(model, train, val, config, out_dir, resume, arch, extra, fingerprint)


def _tuple(s: Scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return s.r1, s.r2, s.weights


def evaluate_scores(
    background: Scores,
    signals: dict[str, Scores],
    out_dir: str | os.PathLike[str] | None = None,
    eps_b: tuple[float, ...] = DEFAULT_EPS_B,
    working_eps_b: float = DEFAULT_WORKING_EPS_B,
    injection: float = DEFAULT_INJECTION,
    min_region_events: int = DEFAULT_MIN_REGION_EVENTS,
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
    ``summary["abcd"]["closure_consistency"]`` is the χ² of the resolved closure pulls and the
    largest pull's global p-value (:mod:`offline.ad.consistency`; None without a resolved point,
    or where the bootstrap cannot give it, with the reason in ``statistically_limited``).
    """
    if out_dir is not None:
        check_replaceable(out_dir, ABCD_KIND)  # before the work, not after
    b1, b2, bw = _tuple(background)
    rows, curves = [], {}
    fpr_rate = rate_to_fpr(rate_khz)
    sb = combined_score(b1, b2, b1, b2, bw)
    auc_sigma: dict[str, float | None] = {}
    for name, s in signals.items():
        ss = combined_score(s.r1, s.r2, b1, b2, bw)
        a = auc(sb, ss, bw, s.weights)
        # the combined score's background CDFs stay fixed: the error of the AUC given them
        auc_sigma[name] = bootstrap_sigma(
            lambda wb, ws, ss=ss: auc(sb, ss, wb, ws),
            [weights_or_ones(b1, bw), weights_or_ones(s.r1, s.weights)],
            bootstrap,
        )
        fpr, tpr, _ = roc(sb, ss, bw, s.weights)
        curves[name] = (fpr, tpr, a)
        low = tpr_at_fpr(sb, ss, 1e-5, bw, s.weights)
        at_rate = trigger_efficiency_at_rate(b1, b2, s.r1, s.r2, rate_khz, bw, s.weights)
        rows.append(
            {
                "signal": name,
                "events": len(s),
                "auc": a,
                "auc_r1": auc(b1, s.r1, bw, s.weights),
                "auc_r2": auc(b2, s.r2, bw, s.weights),
                "tpr_at_fpr_1e-5": low.tpr,
                f"tpr_at_{rate_khz:g}kHz": at_rate.tpr,
            }
        )
    metrics = pd.DataFrame(rows).set_index("signal") if rows else pd.DataFrame()
    dcor_bkg = distance_correlation(b1, b2, bw, max_events=dcor_max_events)
    # O(N²) per replica: fewer replicas than the cheap statistics get
    dcor_sigma = bootstrap_sigma(
        lambda wb: distance_correlation(b1, b2, wb, max_events=dcor_max_events),
        [weights_or_ones(b1, bw)],
        min(bootstrap, DCOR_BOOTSTRAP),
    )
    scan = abcd_scan(
        b1, b2, bw, {k: _tuple(v) for k, v in signals.items()}, eps_b, injection, min_region_events
    )
    signif = significance_at(scan, working_eps_b)
    resolved = scan.loc[(scan["sample"] == "background") & scan["pull"].notna(), "eps_b"]
    consistency: dict[str, Any] | None = None
    consistency_note = None
    if len(resolved):
        try:
            consistency = closure_consistency(b1, b2, bw, tuple(resolved), bootstrap).to_dict()
        except ValueError as err:  # the scan's points stand; only their joint reading is missing
            consistency_note = f"ABCD closure as a whole: {err}"
    sig_tuples = {k: _tuple(v) for k, v in signals.items()}
    # the headline working rate gets the same errors as the target rates
    rates = rate_points((b1, b2, bw), sig_tuples, tuple(sorted({*rates_khz, rate_khz})), bootstrap)
    fpr_low = operating_point((b1, b2, bw), sig_tuples, 1e-5, bootstrap)
    summary = {
        "ad": {
            "auc": {k: none_if_nan(v) for k, v in metrics["auc"].items()} if rows else {},
            "tpr_at_fpr_1e-5": {k: none_if_nan(v) for k, v in metrics["tpr_at_fpr_1e-5"].items()}
            if rows
            else {},
            "tpr_at_rate": {
                k: none_if_nan(v) for k, v in metrics[f"tpr_at_{rate_khz:g}kHz"].items()
            }
            if rows
            else {},
            "rate_khz": rate_khz,
            "fpr_at_rate": fpr_rate,
            "auc_sigma": auc_sigma,
            "dcor_background": none_if_nan(dcor_bkg),
            "dcor_background_sigma": dcor_sigma,
            "background_test_events": len(background),
        },
        "abcd": {
            "max_abs_closure_pull": none_if_nan(max_abs_closure_pull(scan)),
            "closure_consistency": consistency,
            "significance": {k: none_if_nan(v) for k, v in signif.items()},
            "working_eps_b": working_eps_b,
            "injection": injection,
            "min_region_events": min_region_events,
        },
        "rates": {f"{r:g}": p.to_dict() for r, p in rates.items()},
        "fpr_1e-5": fpr_low.to_dict(),
    }
    summary["statistically_limited"] = statistical_limits(summary, scan, len(background)) + (
        [consistency_note] if consistency_note else []
    )
    plots: dict[str, Path] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        with atomic_directory(out_dir, kind=ABCD_KIND) as tmp:  # whole or not at all
            if rows:
                metrics.to_csv(tmp / "metrics.csv")
                plots["roc"] = plot_roc(curves, tmp / "roc.png", fpr_rate)
            scan.to_csv(tmp / "abcd_scan.csv", index=False)
            x, y = thresholds(b1, b2, bw, working_eps_b)
            plots["abcd_plane"] = plot_abcd_plane(
                (b1, b2),
                {k: (v.r1, v.r2) for k, v in signals.items()},
                x,
                y,
                working_eps_b,
                tmp / "abcd_plane.png",
            )
            plots["closure"] = plot_closure(scan, tmp / "abcd_closure.png")
            if signals:
                plots["significance"] = plot_significance(
                    scan, tmp / "abcd_significance.png", injection
                )
            write_json(
                tmp / "metrics.json",
                {**summary, "per_signal": metrics.reset_index().to_dict("records") if rows else []},
            )
        plots = {k: out_dir / Path(p).name for k, p in plots.items()}
    return {"metrics": metrics, "abcd": scan, "summary": summary, "plots": plots}


def statistical_limits(
    summary: dict[str, Any], scan: pd.DataFrame, background_events: int
) -> list[str]:
    """Plain sentences naming the figures of :func:`evaluate_scores` that the sample's size limits:
    unresolved operating points, TPRs with a relative error above
    ``LIMITED_RELATIVE_ERROR``, closure that stops above the smallest ε_B asked for, and
    significances from fewer than ``MIN_INJECTED`` injected signal events."""
    limits = []
    for rate, point in summary["rates"].items():
        if not point["resolved"]:
            limits.append(f"trigger at {rate} kHz: {point['note']}")
            continue
        for signal, tpr in point["tpr"].items():
            if tpr["value"] == 0 or tpr["sigma"] > LIMITED_RELATIVE_ERROR * tpr["value"]:
                limits.append(
                    f"TPR of {signal} at {rate} kHz: {tpr['value']:.3g} ± {tpr['sigma']:.2g}"
                )
    if not summary["fpr_1e-5"]["resolved"]:
        limits.append(f"TPR at FPR 1e-5: {summary['fpr_1e-5']['note']}")
    closure = scan[(scan["sample"] == "background")]
    resolved = closure[closure["pull"].notna()]
    if len(resolved) < len(closure):
        enough = f"≥ {summary['abcd']['min_region_events']} effective events in every region"
        limits.append(
            f"ABCD closure: {enough} only down to ε_B = {resolved['eps_b'].min():g} "
            f"(of {closure['eps_b'].min():g} asked for)"
            if len(resolved)
            else f"ABCD closure: no ε_B of the scan has {enough}"
        )
    injected = summary["abcd"]["injection"] * background_events
    if summary["abcd"]["significance"] and injected < MIN_INJECTED:
        limits.append(
            f"significance: {injected:.0f} injected signal events per signal "
            f"({summary['abcd']['injection']:.2%} of {background_events} test events; "
            f"{MIN_INJECTED} needs {math.ceil(MIN_INJECTED / summary['abcd']['injection'])})"
        )
    return limits


def lambda_scan(
    background: str | os.PathLike[str],
    signals: Mapping[str, str | os.PathLike[str]],
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
        row: dict[str, Any] = {
            "lambda": float(lam),
            "dcor_background": distance_correlation(bkg.r1, bkg.r2, bkg.weights),
        }
        for k, s in sig.items():
            row[f"auc_{k}"] = auc(
                combined_score(bkg.r1, bkg.r2, bkg.r1, bkg.r2, bkg.weights),
                combined_score(s.r1, s.r2, bkg.r1, bkg.r2, bkg.weights),
                bkg.weights,
                s.weights,
            )
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.to_csv(out_dir / "lambda_scan.csv", index=False)
    plot_lambda_scan(frame, out_dir / "lambda_scan.png")
    return frame


def held_out_scores(
    checkpoint_dir: str | os.PathLike[str],
    background: str | os.PathLike[str],
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    device: str = "cpu",
    part: Literal["train", "val", "test"] = "test",
) -> Scores:
    """Scores of the held-out test background of ``background`` (the split training used), or of
    another ``part`` of that split."""
    checkpoint_dir = Path(checkpoint_dir)
    events, split = load_background(background, seed, fractions)
    pre = Preprocessing.load(checkpoint_dir / PREPROCESSING_FILE)
    return score_events(load_pair(checkpoint_dir), pre, events[getattr(split, part)], device)
