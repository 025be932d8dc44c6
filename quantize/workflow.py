"""From a float checkpoint to a FirmwareSpec: QAT in either framework, thresholds, export, comparison.

The data follow the float training exactly (``offline.ad.workflow``): the same background
file, split with the same seed and fractions, the same preprocessing (the checkpoint's
``preprocessing.json``). QAT trains on the training part, the trigger thresholds are set on
the validation part, and float and quantized are compared on the held-out test part.

Model inputs, thresholds and quantized scores never come from a framework's float forward
pass: they come from the bit-exact executor of the spec (:mod:`emulation.trigger`, the trigger
emulator), so Brevitas and QKeras produce the same spec and the same thresholds for the same weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from emulation.trigger import emulate_trigger, input_mantissas, place_thresholds
from offline.ad.abcd import fire_mask, region_masks
from offline.ad.defaults import DEFAULT_FRACTIONS, DEFAULT_RATE_KHZ
from offline.ad.metrics import (
    auc,
    combined_score,
    none_if_nan,
    rate_to_fpr,
    trigger_efficiency_at_rate,
)
from offline.ad.model import AEConfig, AutoencoderPair
from offline.ad.score import score_events
from offline.ad.train import load_config, load_pair
from offline.ad.workflow import PREPROCESSING_FILE, load_background
from offline.artifacts import atomic_directory, check_replaceable, write_json
from offline.events.io import Events, read_events
from offline.preprocess import Preprocessing, to_hardware
from quantize.precision import QuantConfig, build_spec
from quantize.qat import QATConfig
from quantize.spec import FirmwareSpec

__all__ = [
    "FRAMEWORKS",
    "QuantizeResult",
    "compare",
    "exact_scores",
    "find_run_inputs",
    "model_inputs",
    "quantize_checkpoint",
    "train_quantized",
]

FRAMEWORKS = ("brevitas", "qkeras")
QUANTIZE_KIND = "quantize"  # atomic_directory replaces only earlier quantize outputs


Weights = dict[str, np.ndarray]


def model_inputs(spec: FirmwareSpec, events: Events) -> np.ndarray:
    """The values the quantized models see: the trigger's input mantissas of the events, as floats."""
    return np.ldexp(
        input_mantissas(spec, to_hardware(events.features)).astype(np.float64),
        -spec.input.fractional,
    )


def exact_scores(
    spec: FirmwareSpec, weights: Weights, words: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """R1, R2 of hardware words (N, 57) as floats on the score grids: the trigger emulator's."""
    out = emulate_trigger(spec, weights, words)
    return out.r1_float, out.r2_float


@dataclass
class QuantizeResult:
    """What :func:`quantize_checkpoint` wrote and measured."""

    out_dir: Path
    framework: str
    spec: FirmwareSpec
    spec_path: Path
    weights: dict[str, np.ndarray]
    models: dict[str, Path]
    comparison: pd.DataFrame
    tpr_ratio: dict[str, float | None]
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class FloatModel:
    pair: AutoencoderPair
    architecture: AEConfig
    lam: float
    seed: int
    preprocessing: Preprocessing
    fractions: tuple[float, float, float]
    background: Path | None


def load_float(checkpoint: str | os.PathLike[str]) -> FloatModel:
    """The float pair, its architecture, λ, seed, preprocessing and data split from a checkpoint directory."""
    checkpoint = Path(checkpoint)
    arch, train_cfg, raw = load_config(checkpoint)
    pre_path = checkpoint / PREPROCESSING_FILE
    if not pre_path.exists():
        raise ValueError(
            f"{pre_path}: the checkpoint has no preprocessing (train it with l1ad train)"
        )
    background = raw.get("background")
    return FloatModel(
        pair=load_pair(checkpoint),
        architecture=arch,
        lam=train_cfg.lam,
        seed=train_cfg.seed,
        preprocessing=Preprocessing.load(pre_path),
        fractions=tuple(raw.get("split_fractions", DEFAULT_FRACTIONS)),
        background=Path(background) if background else None,
    )


def find_run_inputs(run_dir: str | os.PathLike[str]) -> tuple[Path, dict[str, Path]]:
    """Checkpoint and signal event files of a finished ``l1ad run`` directory.

    The checkpoint is ``RUN/ad/model``; the signals are the event files named in the scores files
    under ``RUN/ad/scores`` (all but ``background_test``), keyed by the scores file's stem.
    """
    run_dir = Path(run_dir)
    checkpoint = run_dir / "ad" / "model"
    if not (checkpoint / "config.json").exists():
        raise ValueError(f"{run_dir}: no ad checkpoint at {checkpoint}")
    signals = {}
    for path in sorted((run_dir / "ad" / "scores").glob("*.h5")):
        if path.stem == "background_test":
            continue
        with h5py.File(path, "r") as f:
            attrs = json.loads(f.attrs.get("l1ad_scores", "{}"))
        if "events" in attrs:
            signals[path.stem] = Path(attrs["events"])
    return checkpoint, signals


def load_float_with_split(
    checkpoint: str | os.PathLike[str], background: str | os.PathLike[str] | None
) -> tuple[FloatModel, Events, Events, Events]:
    """The float checkpoint and its background split (train, validation, test), as it was trained.

    ``background`` defaults to the file recorded in the checkpoint.
    """
    fm = load_float(checkpoint)
    events, split = load_background(
        background_file(fm, checkpoint, background), fm.seed, fm.fractions
    )
    return fm, events[split.train], events[split.val], events[split.test]


def background_file(
    fm: FloatModel, checkpoint: str | os.PathLike[str], background: str | os.PathLike[str] | None
) -> Path:
    """``background`` if given, else the background file recorded in the checkpoint."""
    if background is not None:
        return Path(background)
    if fm.background is None:
        raise ValueError(f"{checkpoint}: no background file recorded in the checkpoint; pass one")
    return fm.background


def train_quantized(
    framework: str,
    spec: FirmwareSpec,
    float_pair: AutoencoderPair,
    train: Events,
    val: Events,
    qat: QATConfig,
    lam: float,
) -> tuple[Any, dict[str, np.ndarray], list[dict[str, float]]]:
    """Initialise the framework's quantized pair from the float one and fine-tune it; returns
    (model, grid weights, history). Inputs are the trigger's input cast of the events."""
    x_train, x_val = model_inputs(spec, train), model_inputs(spec, val)
    state = {k: v.detach().numpy() for k, v in float_pair.state_dict().items()}
    if framework == "brevitas":
        from quantize import brevitas_model as bm

        brevitas_pair = bm.BrevitasPair(spec).load_float(float_pair)
        history = bm.finetune(
            brevitas_pair, x_train, train.event_weights, x_val, val.event_weights, qat, lam
        )
        return brevitas_pair, bm.quantized_weights(brevitas_pair), history
    if framework == "qkeras":
        from quantize import qkeras_model as qm

        qkeras_pair = qm.QKerasPair(spec).load_float(state)
        history = qm.finetune(
            qkeras_pair, x_train, train.event_weights, x_val, val.event_weights, qat, lam
        )
        return qkeras_pair, qm.quantized_weights(qkeras_pair), history
    raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")


def export(framework: str, model: Any, directory: Path) -> dict[str, Path]:
    if framework == "brevitas":
        from quantize.brevitas_model import export_qonnx

        return export_qonnx(model, directory)
    from quantize.qkeras_model import save_keras

    return save_keras(model, directory)


def compare(
    float_pair: AutoencoderPair,
    preprocessing: Preprocessing,
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    background: Events,
    signals: dict[str, Events],
    rate_khz: float = DEFAULT_RATE_KHZ,
) -> pd.DataFrame:
    """Float vs quantized per signal: AUC (ABCD-family score) and trigger efficiency at ``rate_khz``.

    Quantized scores are the trigger emulator's. ``tpr_spec`` is the quantized efficiency with the spec's own
    thresholds and region logic.
    """
    fb = score_events(float_pair, preprocessing, background)
    qb1, qb2 = exact_scores(spec, weights, to_hardware(background.features))
    bw = background.event_weights
    t = spec.trigger
    rows = []
    for name, ev in signals.items():
        fs = score_events(float_pair, preprocessing, ev)
        q1, q2 = exact_scores(spec, weights, to_hardware(ev.features))
        sw = ev.event_weights
        f_tpr = trigger_efficiency_at_rate(fb.r1, fb.r2, fs.r1, fs.r2, rate_khz, bw, sw).tpr
        q_tpr = trigger_efficiency_at_rate(qb1, qb2, q1, q2, rate_khz, bw, sw).tpr
        fired = fire_mask(region_masks(q1, q2, t.threshold_r1, t.threshold_r2), t.fire_on)
        rows.append(
            {
                "signal": name,
                "auc_float": auc(
                    combined_score(fb.r1, fb.r2, fb.r1, fb.r2, bw),
                    combined_score(fs.r1, fs.r2, fb.r1, fb.r2, bw),
                    bw,
                    sw,
                ),
                "auc_quantized": auc(
                    combined_score(qb1, qb2, qb1, qb2, bw),
                    combined_score(q1, q2, qb1, qb2, bw),
                    bw,
                    sw,
                ),
                "tpr_float": f_tpr,
                "tpr_quantized": q_tpr,
                "tpr_ratio": q_tpr / f_tpr if f_tpr and q_tpr is not None else None,
                "tpr_spec": float(sw[fired].sum() / sw.sum()),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.set_index("signal") if rows else frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-strict rows: NaN (pandas' None) becomes None."""
    if not len(frame):
        return []
    rows = frame.reset_index().to_dict("records")
    return [
        {k: none_if_nan(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows
    ]


def quantize_checkpoint(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    framework: str = "brevitas",
    background: str | os.PathLike[str] | None = None,
    signals: Mapping[str, str | os.PathLike[str]] | None = None,
    quant_config: QuantConfig | None = None,
    qat: QATConfig | None = None,
    rate_khz: float = DEFAULT_RATE_KHZ,
    fire_on: tuple[str, ...] = ("A",),
) -> QuantizeResult:
    """QAT of a float checkpoint in ``framework``; writes ``spec.json`` + ``weights.safetensors``, the
    exported models (``ae1/ae2.onnx`` or ``.h5``), ``comparison.csv`` and ``metrics.json`` into ``out_dir``.

    ``background`` defaults to the file the checkpoint was trained on (same split). Model inputs,
    thresholds (validation part, ε_B of ``rate_khz``) and quantized scores come from the trigger emulator.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    out_dir = Path(out_dir)
    check_replaceable(out_dir, QUANTIZE_KIND)
    quant_config = quant_config or QuantConfig()
    qat = qat or QATConfig()
    # every input is read (and checked) before QAT starts and before anything is written
    fm, train, val, test = load_float_with_split(checkpoint, background)
    sig_events = {k: read_events(p) for k, p in (signals or {}).items()}
    lam = fm.lam if qat.lam is None else qat.lam
    # provenance that differs between frameworks (which one, where from) goes to metrics.json, so that
    # both frameworks write byte-identical spec.json files for the same model
    meta = {
        "rate_khz": rate_khz,
        "qat": {k: v for k, v in qat.to_dict().items() if k != "progress"},
    }
    draft = build_spec(
        fm.architecture, quant_config, fm.preprocessing, fire_on=fire_on, metadata=meta
    )
    model, weights, history = train_quantized(framework, draft, fm.pair, train, val, qat, lam)
    spec = place_thresholds(
        draft, weights, to_hardware(val.features), val.event_weights, rate_to_fpr(rate_khz)
    )
    t = (spec.trigger.threshold_r1, spec.trigger.threshold_r2)
    comparison = compare(fm.pair, fm.preprocessing, spec, weights, test, sig_events, rate_khz)
    ratios = (
        {k: none_if_nan(v) for k, v in comparison["tpr_ratio"].items()} if len(comparison) else {}
    )
    # the directory appears whole or not at all: a firmware build never picks up half of it
    with atomic_directory(out_dir, kind=QUANTIZE_KIND) as tmp:
        spec_path = out_dir / spec.save(tmp, weights).name
        models = {k: out_dir / p.name for k, p in export(framework, model, tmp).items()}
        if len(comparison):
            comparison.to_csv(tmp / "comparison.csv")
        write_json(
            tmp / "metrics.json",
            {
                "framework": framework,
                "checkpoint": str(checkpoint),
                "background": str(background_file(fm, checkpoint, background)),
                "spec": str(spec_path),
                "thresholds": list(t),
                "rate_khz": rate_khz,
                "tpr_ratio_vs_float": ratios,
                "per_signal": _records(comparison),
                "history": history,
            },
        )
    return QuantizeResult(
        out_dir, framework, spec, spec_path, weights, models, comparison, ratios, history
    )
