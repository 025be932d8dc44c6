"""Anomaly detection: the DisCo-decorrelated autoencoder pair and ABCD.

For quantization-aware training and the float-vs-quantized comparison:
:func:`pair_loss` (the training loss), :func:`fit` (the training loop for any module
returning (R1, R2)), :func:`trigger_efficiency_at_rate` / :func:`tpr_at_rate` (signal
efficiency at an L1 rate at 40 MHz) and :func:`thresholds` (the ABCD thresholds x, y).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offline.ad.abcd import (
        DEFAULT_EPS_B,
        ABCDPoint,
        RegionCounts,
        abcd_scan,
        count_regions,
        inject,
        max_abs_closure_pull,
        region_masks,
        significance_at,
        thresholds,
    )
    from offline.ad.data import (
        DEFAULT_FRACTIONS,
        ArraySource,
        BatchSource,
        EventFileSource,
        Split,
        fit_preprocessing,
        inputs,
        split_indices,
    )
    from offline.ad.disco import dense_disco_sq, disco_sq, distance_correlation
    from offline.ad.metrics import (
        BUNCH_CROSSING_KHZ,
        DEFAULT_RATE_KHZ,
        WorkingPoint,
        auc,
        combined_score,
        fpr_to_rate,
        rate_to_fpr,
        roc,
        tpr_at_fpr,
        tpr_at_rate,
        trigger_efficiency_at_rate,
    )
    from offline.ad.model import (
        PRESETS,
        AEConfig,
        Autoencoder,
        AutoencoderPair,
        preset,
        reconstruction_error,
    )
    from offline.ad.rates import (
        DEFAULT_RATES_KHZ,
        Efficiency,
        RatePoint,
        operating_point,
        rate_points,
        weighted_efficiency,
    )
    from offline.ad.score import (
        Scores,
        read_scores,
        score_events,
        score_file,
        score_inputs,
        write_scores,
    )
    from offline.ad.train import (
        DEFAULT_LAMBDA,
        LossParts,
        TrainConfig,
        TrainResult,
        evaluate,
        fit,
        fit_sources,
        load_config,
        load_pair,
        pair_loss,
        train_pair,
    )
    from offline.ad.workflow import (
        evaluate_scores,
        held_out_scores,
        lambda_scan,
        load_background,
        train_from_file,
    )

__all__ = [
    "BUNCH_CROSSING_KHZ",
    "DEFAULT_EPS_B",
    "DEFAULT_FRACTIONS",
    "DEFAULT_LAMBDA",
    "DEFAULT_RATES_KHZ",
    "DEFAULT_RATE_KHZ",
    "PRESETS",
    "ABCDPoint",
    "AEConfig",
    "ArraySource",
    "Autoencoder",
    "AutoencoderPair",
    "BatchSource",
    "Efficiency",
    "EventFileSource",
    "LossParts",
    "RatePoint",
    "RegionCounts",
    "Scores",
    "Split",
    "TrainConfig",
    "TrainResult",
    "WorkingPoint",
    "abcd_scan",
    "auc",
    "combined_score",
    "count_regions",
    "dense_disco_sq",
    "disco_sq",
    "distance_correlation",
    "evaluate",
    "evaluate_scores",
    "fit",
    "fit_preprocessing",
    "fit_sources",
    "fpr_to_rate",
    "held_out_scores",
    "inject",
    "inputs",
    "lambda_scan",
    "load_background",
    "load_config",
    "load_pair",
    "max_abs_closure_pull",
    "operating_point",
    "pair_loss",
    "preset",
    "rate_points",
    "rate_to_fpr",
    "read_scores",
    "reconstruction_error",
    "region_masks",
    "roc",
    "score_events",
    "score_file",
    "score_inputs",
    "significance_at",
    "split_indices",
    "thresholds",
    "tpr_at_fpr",
    "tpr_at_rate",
    "train_from_file",
    "train_pair",
    "trigger_efficiency_at_rate",
    "weighted_efficiency",
    "write_scores",
]

# public names load their submodule on first use (PEP 562), so `import offline.ad.x` stays light
_EXPORTS = {
    "DEFAULT_EPS_B": "offline.ad.abcd",
    "ABCDPoint": "offline.ad.abcd",
    "RegionCounts": "offline.ad.abcd",
    "abcd_scan": "offline.ad.abcd",
    "count_regions": "offline.ad.abcd",
    "inject": "offline.ad.abcd",
    "max_abs_closure_pull": "offline.ad.abcd",
    "region_masks": "offline.ad.abcd",
    "significance_at": "offline.ad.abcd",
    "thresholds": "offline.ad.abcd",
    "DEFAULT_FRACTIONS": "offline.ad.data",
    "ArraySource": "offline.ad.data",
    "BatchSource": "offline.ad.data",
    "EventFileSource": "offline.ad.data",
    "Split": "offline.ad.data",
    "fit_preprocessing": "offline.ad.data",
    "inputs": "offline.ad.data",
    "split_indices": "offline.ad.data",
    "dense_disco_sq": "offline.ad.disco",
    "disco_sq": "offline.ad.disco",
    "distance_correlation": "offline.ad.disco",
    "BUNCH_CROSSING_KHZ": "offline.ad.metrics",
    "DEFAULT_RATE_KHZ": "offline.ad.metrics",
    "WorkingPoint": "offline.ad.metrics",
    "auc": "offline.ad.metrics",
    "combined_score": "offline.ad.metrics",
    "fpr_to_rate": "offline.ad.metrics",
    "rate_to_fpr": "offline.ad.metrics",
    "roc": "offline.ad.metrics",
    "tpr_at_fpr": "offline.ad.metrics",
    "tpr_at_rate": "offline.ad.metrics",
    "trigger_efficiency_at_rate": "offline.ad.metrics",
    "PRESETS": "offline.ad.model",
    "AEConfig": "offline.ad.model",
    "Autoencoder": "offline.ad.model",
    "AutoencoderPair": "offline.ad.model",
    "preset": "offline.ad.model",
    "reconstruction_error": "offline.ad.model",
    "DEFAULT_RATES_KHZ": "offline.ad.rates",
    "Efficiency": "offline.ad.rates",
    "RatePoint": "offline.ad.rates",
    "operating_point": "offline.ad.rates",
    "rate_points": "offline.ad.rates",
    "weighted_efficiency": "offline.ad.rates",
    "Scores": "offline.ad.score",
    "read_scores": "offline.ad.score",
    "score_events": "offline.ad.score",
    "score_file": "offline.ad.score",
    "score_inputs": "offline.ad.score",
    "write_scores": "offline.ad.score",
    "DEFAULT_LAMBDA": "offline.ad.train",
    "LossParts": "offline.ad.train",
    "TrainConfig": "offline.ad.train",
    "TrainResult": "offline.ad.train",
    "evaluate": "offline.ad.train",
    "fit": "offline.ad.train",
    "fit_sources": "offline.ad.train",
    "load_config": "offline.ad.train",
    "load_pair": "offline.ad.train",
    "pair_loss": "offline.ad.train",
    "train_pair": "offline.ad.train",
    "evaluate_scores": "offline.ad.workflow",
    "held_out_scores": "offline.ad.workflow",
    "lambda_scan": "offline.ad.workflow",
    "load_background": "offline.ad.workflow",
    "train_from_file": "offline.ad.workflow",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
