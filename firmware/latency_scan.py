"""Latency against trigger efficiency (``l1ad firmware --scan-latency``): the score-feature knob.

The anomaly score of each autoencoder sums the squared differences over ``k`` features. Fewer
features make the score's adder tree (and the decoder's last layer, which only has to produce
those features) shallower and smaller, and change what the trigger sees: this knob trades latency
against efficiency without retraining the autoencoders. For every ``k`` the scan

1. keeps the ``k`` features of largest background variance (``feature_order``: signal-agnostic;
   a feature that never varies, such as the MET's eta word, carries nothing),
2. costs the trigger as the budget check does: da4ml's pipeline (adder levels, LUTs) with each
   stage timed by the part's cited delays (:func:`firmware.cost.timed_cycles`, the headline
   latency of the default ``distributed_arithmetic`` project), and beside it the hls4ml Latency
   model (:mod:`firmware.latency_project`, the project ``--strategy latency`` writes),
3. places the ABCD thresholds on the exact background scores for ``rate_khz`` and measures the
   trigger efficiency per signal there (``offline.ad.metrics.trigger_efficiency_at_rate``).

The exact scores are the trigger emulator's (:func:`emulation.emulate_trigger`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emulation.spec import RECONSTRUCTION, FirmwareSpec
from emulation.trigger import emulate_trigger
from firmware.defaults import DEFAULT_PART

COLUMNS = (
    "features",
    "adder_levels",
    "latency_cycles",
    "latency_ns",
    "luts",
    "latency_ns_hls4ml_latency_model",
)


def feature_order(spec: FirmwareSpec, background_words: np.ndarray) -> list[int]:
    """The features of the spec's scores, largest background variance first (ties by index), variance
    taken on the preprocessed scale (hardware word shifted by the preprocessing's shift)."""
    words = np.asarray(background_words, dtype=np.float64)
    scaled = words * np.exp2(-np.asarray(spec.preprocessing.shifts, dtype=np.float64))
    variance = scaled.var(axis=0)
    recon = [ae.score.outputs for ae in spec.autoencoders if ae.score.kind == RECONSTRUCTION]
    used = sorted(set().union(*recon))
    return sorted(used, key=lambda j: (-variance[j], j))


def with_score_features(spec: FirmwareSpec, features: Sequence[int]) -> FirmwareSpec:
    """The spec with its reconstruction scores over ``features`` (ascending); a latent-norm score,
    whose outputs index the latent mean, not the features, is kept."""
    outputs = tuple(sorted(int(j) for j in features))
    first, second = (
        dataclasses.replace(ae, score=dataclasses.replace(ae.score, outputs=outputs))
        if ae.score.kind == RECONSTRUCTION
        else ae
        for ae in spec.autoencoders
    )
    return dataclasses.replace(spec, autoencoders=(first, second))


def scan_latency(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    background_words: np.ndarray,
    signal_words: Mapping[str, np.ndarray],
    clock_period_ns: float,
    feature_counts: Sequence[int] | None = None,
    rate_khz: float | None = None,
    background_weights: np.ndarray | None = None,
    signal_weights: Mapping[str, np.ndarray | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    part: str = DEFAULT_PART,
) -> Any:
    """One row per feature count: da4ml's adder levels and LUTs, the latency (cycles, ns) of its pipeline
    timed with ``part``'s delays, the hls4ml Latency model's latency, and ``efficiency_<signal>`` at
    ``rate_khz`` (None where the background sample is too small to resolve the rate). Returns a pandas
    DataFrame in the order of ``feature_counts``."""
    import pandas as pd

    from firmware.cost import da4ml_pipeline, timed_cycles
    from firmware.delay_model import fabric_for_part
    from firmware.latency_project import trigger_cost
    from offline.ad.defaults import DEFAULT_RATE_KHZ
    from offline.ad.metrics import trigger_efficiency_at_rate

    rate_khz = DEFAULT_RATE_KHZ if rate_khz is None else float(rate_khz)
    if not signal_words:
        raise ValueError("the latency scan needs at least one signal (--signal NAME=PATH)")
    order = feature_order(spec, background_words)
    counts = (
        default_feature_counts(len(order))
        if feature_counts is None
        else [int(k) for k in feature_counts]
    )
    for k in counts:
        if not 1 <= k <= len(order):
            raise ValueError(f"feature count {k} is not in 1..{len(order)} (the scores' features)")
    fabric = fabric_for_part(part)
    rows = []
    for i, k in enumerate(counts):
        point = with_score_features(spec, order[:k])
        _, pipe, lat = da4ml_pipeline(point, weights, clock_period_ns)
        cycles, _ = timed_cycles(pipe, clock_period_ns, fabric)
        hls = trigger_cost(point, weights, clock_period_ns, fabric)
        row: dict[str, Any] = {
            "features": k, "adder_levels": lat.adder_levels, "latency_cycles": cycles, "latency_ns": cycles * clock_period_ns,
            "luts": lat.luts, "latency_ns_hls4ml_latency_model": hls.latency_cycles * clock_period_ns,
        }  # fmt: skip
        background = emulate_trigger(point, weights, background_words)
        b1, b2 = background.r1_float, background.r2_float
        for name, words in signal_words.items():
            signal = emulate_trigger(point, weights, words)
            s1, s2 = signal.r1_float, signal.r2_float
            sw = None if signal_weights is None else signal_weights.get(name)
            wp = trigger_efficiency_at_rate(b1, b2, s1, s2, rate_khz, background_weights, sw)
            row[f"efficiency_{name}"] = wp.tpr
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(counts))
    return pd.DataFrame(rows)


def default_feature_counts(n: int) -> list[int]:
    """All features, then halving down to 2 (57, 28, 14, 7, 3 for 57)."""
    counts, k = [n], n // 2
    while k >= 2:
        counts.append(k)
        k //= 2
    return counts


def plot_scan(
    frame: Any, path: str | os.PathLike[str], rate_khz: float, budget_ns: float | None = None
) -> Path:
    """Trigger efficiency per signal against the latency estimate, one point per feature count."""
    from offline.plotting import new_figure, save_figure

    fig, ax = new_figure(figsize=(9, 6))
    columns = [c for c in frame.columns if c.startswith("efficiency_")]
    for n, col in enumerate(columns):
        ax.plot(
            frame["latency_ns"],
            frame[col],
            marker="o",
            ls="",
            label=col.removeprefix("efficiency_"),
        )
        if (
            n == 0
        ):  # the feature count beside each point of the first signal (points of one latency stack up)
            for _, r in frame.iterrows():
                if r[col] is not None and np.isfinite(r[col]):
                    ax.annotate(f"{int(r['features'])} feat.", (r["latency_ns"], r[col]), textcoords="offset points",
                                xytext=(6, 0), fontsize=10, va="center")  # fmt: skip
    if budget_ns is not None:
        ax.axvline(budget_ns, color="gray", ls="--", label=f"budget {budget_ns:g} ns")
    ax.set_xlabel("latency estimate (ns: da4ml's stages timed by the delay model)")
    ax.set_ylabel(f"trigger efficiency at {rate_khz:g} kHz")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.15)
    ax.legend(fontsize=11, title="signal (knob: score features)", title_fontsize=11)
    return save_figure(fig, path)


def write_scan(frame: Any, directory: str | os.PathLike[str], rate_khz: float, clock_period_ns: float,
               budget_ns: float | None = None) -> dict[str, Path]:  # fmt: skip
    """``scan.csv``, ``scan.json`` (rows and settings) and ``scan.png`` in ``directory``."""
    from offline.artifacts import atomic_path, write_json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": directory / "scan.csv",
        "json": directory / "scan.json",
        "png": directory / "scan.png",
    }
    with atomic_path(paths["csv"]) as tmp:
        frame.to_csv(tmp, index=False)
    rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]  # fmt: skip
    write_json(paths["json"], {"knob": "score features (largest background variance first)", "rate_khz": rate_khz,
                               "clock_period_ns": clock_period_ns, "latency_budget_ns": budget_ns, "rows": rows})  # fmt: skip
    plot_scan(frame, paths["png"], rate_khz, budget_ns)
    return paths


SCAN_KIND = "latency-scan"


def scan_latency_files(
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    background: str | os.PathLike[str],
    signals: Mapping[str, str | os.PathLike[str]],
    clock_period_ns: float,
    out_dir: str | os.PathLike[str],
    feature_counts: Sequence[int] | None = None,
    rate_khz: float | None = None,
    budget_ns: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    part: str = DEFAULT_PART,
) -> tuple[Any, dict[str, Path]]:
    """:func:`scan_latency` on event files (event weights used); writes ``out_dir`` whole or not at all
    (``scan.csv``, ``scan.json``, ``scan.png``). Every file is read before anything is written."""
    from offline.ad.defaults import DEFAULT_RATE_KHZ
    from offline.artifacts import atomic_directory, check_replaceable
    from offline.events.io import read_events
    from offline.preprocess import to_hardware

    rate_khz = DEFAULT_RATE_KHZ if rate_khz is None else float(rate_khz)
    check_replaceable(out_dir, SCAN_KIND)
    bkg = read_events(background)
    sig = {name: read_events(path) for name, path in signals.items()}
    frame = scan_latency(
        spec, weights, to_hardware(bkg.features), {n: to_hardware(e.features) for n, e in sig.items()},
        clock_period_ns, feature_counts, rate_khz, bkg.event_weights, {n: e.event_weights for n, e in sig.items()},
        progress, part,
    )  # fmt: skip
    with atomic_directory(out_dir, SCAN_KIND) as tmp:
        write_scan(frame, tmp, rate_khz, clock_period_ns, budget_ns)
    out = Path(out_dir)
    return frame, {k: out / f"scan.{k}" for k in ("csv", "json", "png")}
