"""Anomaly detection: the DisCo-decorrelated autoencoder pair and ABCD.

For quantization-aware training and the float-vs-quantized comparison:
:func:`pair_loss` (the training loss), :func:`fit` (the training loop for any module
returning (R1, R2)), :func:`trigger_efficiency_at_rate` / :func:`tpr_at_rate` (signal
efficiency at an L1 rate at 40 MHz) and :func:`thresholds` (the ABCD thresholds x, y).
"""

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
from offline.ad.data import DEFAULT_FRACTIONS, Split, fit_preprocessing, inputs, split_indices
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
    "DEFAULT_RATE_KHZ",
    "PRESETS",
    "ABCDPoint",
    "AEConfig",
    "Autoencoder",
    "AutoencoderPair",
    "LossParts",
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
    "fpr_to_rate",
    "held_out_scores",
    "inject",
    "inputs",
    "lambda_scan",
    "load_background",
    "load_config",
    "load_pair",
    "max_abs_closure_pull",
    "pair_loss",
    "preset",
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
    "write_scores",
]
