"""The ``ad`` stage of ``l1ad run``: train the pair on a background file, score the held-out
background and each signal, evaluate (ROC, rates, ABCD), optionally scan λ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from offline import distributed
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
from offline.ad.score import read_scores, score_file, write_scores
from offline.ad.train import BEST_FILE, CONFIG_FILE, TrainConfig, TrainResult
from offline.ad.workflow import (
    PREPROCESSING_FILE,
    evaluate_scores,
    held_out_scores,
    lambda_scan,
    train_from_file,
)

BACKGROUND_TEST = "background_test"


@dataclass(frozen=True)
class Evaluation:
    """Settings of the evaluation (see :func:`offline.ad.workflow.evaluate_scores`)."""

    eps_b: tuple[float, ...] = DEFAULT_EPS_B
    working_eps_b: float = DEFAULT_WORKING_EPS_B
    injection: float = DEFAULT_INJECTION
    min_region_events: int = DEFAULT_MIN_REGION_EVENTS
    rate_khz: float = DEFAULT_RATE_KHZ
    rates_khz: tuple[float, ...] = DEFAULT_RATES_KHZ
    bootstrap: int = DEFAULT_BOOTSTRAP


@dataclass
class ADStageResult:
    """The trained pair, its scores and every figure of merit."""

    out_dir: Path
    checkpoint: Path
    config: TrainConfig
    fractions: tuple[float, float, float]
    evaluation: Evaluation
    training: TrainResult
    scores: dict[str, Path]  # "background_test" and each signal -> scores file
    background_test_events: int
    metrics: pd.DataFrame  # per signal (empty without signals)
    abcd_scan: pd.DataFrame
    summary: dict[str, Any]  # JSON-ready figures (evaluate_scores' "summary")
    plots: dict[str, Path]
    lambda_scan: pd.DataFrame | None = None

    @property
    def preprocessing(self) -> Path:
        return self.checkpoint / PREPROCESSING_FILE

    @property
    def weights(self) -> Path:
        return self.checkpoint / BEST_FILE

    @property
    def config_file(self) -> Path:
        return self.checkpoint / CONFIG_FILE

    @property
    def loss_plot(self) -> Path:
        return self.checkpoint / "loss.png"

    @property
    def lambda_scan_plot(self) -> Path:
        return self.out_dir / "lambda_scan" / "lambda_scan.png"


def train_and_evaluate(
    background: str | os.PathLike[str],
    signals: dict[str, Path],
    out_dir: str | os.PathLike[str],
    config: TrainConfig,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    evaluation: Evaluation | None = None,
    lambdas: tuple[float, ...] = (),
) -> ADStageResult:
    """Train into ``out_dir/model`` (split seeded by ``config.seed``), write scores to ``out_dir/scores``
    and the evaluation to ``out_dir/evaluation``; with ``lambdas``, one more training per value
    (``out_dir/lambda_scan``)."""
    background = Path(background)
    out_dir = Path(out_dir)
    evaluation = evaluation or Evaluation()
    model_dir = out_dir / "model"
    training = train_from_file(background, model_dir, config, fractions)

    scores_dir = out_dir / "scores"
    device = str(distributed.pick_device(config.device))
    bkg = held_out_scores(model_dir, background, config.seed, fractions, device=device)
    write_scores(
        scores_dir / f"{BACKGROUND_TEST}.h5", bkg, {"events": str(background), "split": "test"}
    )
    score_paths = {BACKGROUND_TEST: scores_dir / f"{BACKGROUND_TEST}.h5"}
    sigs = {}
    for name, path in signals.items():
        score_paths[name] = score_file(
            model_dir, path, scores_dir / f"{name}.h5", device=device, progress=False
        )
        sigs[name] = read_scores(score_paths[name])

    ev = evaluate_scores(
        bkg,
        sigs,
        out_dir / "evaluation",
        evaluation.eps_b,
        evaluation.working_eps_b,
        evaluation.injection,
        evaluation.min_region_events,
        evaluation.rate_khz,
        rates_khz=evaluation.rates_khz,
        bootstrap=evaluation.bootstrap,
    )
    scan = None
    if lambdas:
        scan = lambda_scan(
            background, dict(signals), out_dir / "lambda_scan", list(lambdas), config, fractions
        )
    return ADStageResult(
        out_dir=out_dir,
        checkpoint=model_dir,
        config=config,
        fractions=fractions,
        evaluation=evaluation,
        training=training,
        scores=score_paths,
        background_test_events=len(bkg),
        metrics=ev["metrics"],
        abcd_scan=ev["abcd"],
        summary=ev["summary"],
        plots=ev["plots"],
        lambda_scan=scan,
    )
