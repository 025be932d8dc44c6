"""``l1ad train|score|abcd`` and the ``ad`` pipeline stage: the DisCo autoencoder pair, scores, ABCD."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from l1ad import options
from l1ad.config import GLOBAL_DEFAULTS
from l1ad.options import named_paths
from offline.ad.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BOOTSTRAP,
    DEFAULT_CLOSURE_EFFICIENCIES,
    DEFAULT_CLOSURE_JITTER,
    DEFAULT_CLOSURE_LAM,
    DEFAULT_DEVICE,
    DEFAULT_EPOCHS,
    DEFAULT_EPS_B,
    DEFAULT_FRACTIONS,
    DEFAULT_INJECTION,
    DEFAULT_LAMBDA,
    DEFAULT_LR,
    DEFAULT_MIN_REGION_EVENTS,
    DEFAULT_MONITOR,
    DEFAULT_PATIENCE,
    DEFAULT_PRESET,
    DEFAULT_RATE_KHZ,
    DEFAULT_RATES_KHZ,
    DEFAULT_WORKING_EPS_B,
    Monitor,
)

if TYPE_CHECKING:
    from l1ad.pipeline import RunContext
    from offline.ad.stage import ADStageResult
    from offline.events.stage import EventSamples

NAME = "ad"
# the values and why they are what they are: offline/ad/defaults.py
DEFAULTS: dict[str, Any] = {
    "preset": DEFAULT_PRESET,
    "lam": DEFAULT_LAMBDA,
    "closure_lam": DEFAULT_CLOSURE_LAM,  # ABCD non-closure penalty (ABCDisCoTEC); 0: DisCo alone
    # the penalty's per-axis cut efficiencies (a pair enters where the batch fills its regions)
    "closure_efficiencies": list(DEFAULT_CLOSURE_EFFICIENCIES),
    # > 0: each step moves each axis's grid by exp(±closure_jitter), closing between its points
    "closure_jitter": DEFAULT_CLOSURE_JITTER,
    "epochs": DEFAULT_EPOCHS,
    "batch_size": DEFAULT_BATCH_SIZE,
    "lr": DEFAULT_LR,
    "patience": DEFAULT_PATIENCE,
    "monitor": DEFAULT_MONITOR,  # early stopping on the validation loss or its reconstruction alone
    "device": DEFAULT_DEVICE,
    "split": list(DEFAULT_FRACTIONS),
    "eps_b": list(DEFAULT_EPS_B),
    "working_eps_b": DEFAULT_WORKING_EPS_B,
    "injection": DEFAULT_INJECTION,
    "min_region_events": DEFAULT_MIN_REGION_EVENTS,
    "rate_khz": DEFAULT_RATE_KHZ,
    # trigger operating points with errors (kHz of 40 MHz); Poisson-bootstrap replicas for the thresholds
    "rates_khz": list(DEFAULT_RATES_KHZ),
    "bootstrap": DEFAULT_BOOTSTRAP,
    "lambda_scan": [],  # e.g. [0, 10, 100, 1000]: one extra training per value
}
NEEDS = ("events",)


MONITOR_DEFAULT = Monitor(DEFAULT_MONITOR)  # the CLI's choice type; the config keeps the string
STREAM_CHUNK = 32_768  # events per contiguous read when streaming (7.5 MB of inputs); 8 chunks are shuffled together


def _lambdas(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--lambda-scan expects comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError("--lambda-scan needs at least one value")
    return values


def train(
    background: Annotated[
        Path, typer.Argument(help="Background event file (ADC2021 HDF5 layout).")
    ],
    out: Annotated[Path, typer.Option(help="Checkpoint directory.")] = Path("ad_model"),
    preset: Annotated[str, typer.Option(help="Architecture: firmware or paper.")] = DEFAULTS[
        "preset"
    ],
    lam: Annotated[float, typer.Option("--lambda", help="DisCo weight λ.")] = DEFAULTS["lam"],
    closure_lam: Annotated[
        float,
        typer.Option(
            "--closure-lam",
            help="Weight of the ABCD non-closure penalty (ABCDisCoTEC); 0 trains with DisCo alone.",
        ),
    ] = DEFAULTS["closure_lam"],
    closure_jitter: Annotated[
        float,
        typer.Option(
            "--closure-jitter",
            help="Move each score's cut grid of the closure penalty by a seeded factor "
            "exp(±J) every step, so that closure holds between the grid points too; 0: fixed grid.",
        ),
    ] = DEFAULTS["closure_jitter"],
    epochs: Annotated[int, typer.Option(help="Maximum epochs.", min=1)] = DEFAULTS["epochs"],
    batch_size: Annotated[
        int, typer.Option(help="Global batch size (all processes together).", min=2)
    ] = DEFAULTS["batch_size"],
    lr: Annotated[
        float, typer.Option(help="Adam learning rate.", callback=options.positive)
    ] = DEFAULTS["lr"],
    patience: Annotated[
        int, typer.Option(help="Early-stopping patience (epochs).", min=1)
    ] = DEFAULTS["patience"],
    monitor: Annotated[
        Monitor,
        typer.Option(
            help="Validation figure of early stopping and the best checkpoint: the loss, or the "
            "reconstruction alone (with a large --closure-lam on a small validation split)."
        ),
    ] = MONITOR_DEFAULT,
    seed: Annotated[
        int, typer.Option(help="Seed of the split, the initial weights and the batches.")
    ] = GLOBAL_DEFAULTS["seed"],
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:1 ...", callback=options.device)
    ] = DEFAULTS["device"],
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in --out.")] = False,
    lambda_scan_values: Annotated[
        str | None,
        typer.Option(
            "--lambda-scan", help="Comma-separated λ values: train one pair each, tabulate."
        ),
    ] = None,
    signal: Annotated[
        list[str] | None, typer.Option(help="NAME=PATH signal file for the λ scan's AUC.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    stream: Annotated[
        bool, typer.Option(help="Stream the background file in chunks (files larger than memory).")
    ] = False,
    shuffle_chunk: Annotated[
        int | None,
        typer.Option(
            help=f"Shuffle contiguous chunks of this many events (0: every event; default {STREAM_CHUNK} with --stream, "
            "else 0)."
        ),
    ] = None,
) -> None:
    """Train the DisCo-decorrelated autoencoder pair on background (works under torchrun for DDP)."""
    from offline import distributed
    from offline.ad.train import TrainConfig
    from offline.ad.workflow import lambda_scan, train_from_file

    chunk = (STREAM_CHUNK if stream else 0) if shuffle_chunk is None else shuffle_chunk
    config = TrainConfig(
        preset=preset,
        lam=lam,
        closure_lam=closure_lam,
        closure_jitter=closure_jitter,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        monitor=monitor.value,
        seed=seed,
        device=device,
        progress=progress,
        shuffle_chunk=chunk,
    )
    console = Console(stderr=True, markup=False)
    if lambda_scan_values is not None:
        frame = lambda_scan(
            background, named_paths(signal), out, _lambdas(lambda_scan_values), config
        )
        console.print(frame.to_string(index=False))
        console.print(f"wrote {out / 'lambda_scan.csv'} and {out / 'lambda_scan.png'}")
        return
    result = train_from_file(background, out, config, resume=resume, stream=stream)
    distributed.teardown()
    if int(os.environ.get("RANK", "0")) != 0:
        return
    console.print(
        f"best epoch {result.best_epoch} (val {config.monitor} {result.best_val_loss:.5g}), {result.epochs_run} epochs"
        f"{' (stopped early)' if result.stopped_early else ''}, {result.events_per_second:,.0f} events/s; wrote {out}"
    )


def score(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory written by l1ad train.")],
    events: Annotated[Path, typer.Argument(help="Event file to score.")],
    out: Annotated[Path, typer.Option(help="Output HDF5 with R1, R2, weights, labels.")] = Path(
        "scores.h5"
    ),
    preprocessing: Annotated[
        Path | None, typer.Option(help="preprocessing.json (default: the checkpoint's).")
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="Events per chunk.", min=1)] = 200_000,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda or cuda:N.", callback=options.device)
    ] = DEFAULTS["device"],
) -> None:
    """Compute R1, R2 for every event of a file, in chunks."""
    from offline.ad.score import score_file
    from offline.distributed import pick_device

    path = score_file(checkpoint, events, out, preprocessing, chunk_size, str(pick_device(device)))
    Console(stderr=True, markup=False).print(f"wrote {path}")


def abcd(
    background: Annotated[
        Path, typer.Argument(help="Scores file of held-out background (l1ad score).")
    ],
    signal: Annotated[
        list[str] | None, typer.Option(help="NAME=SCORES.h5 of a signal, repeatable.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for tables, plots and metrics.json.")] = Path(
        "abcd"
    ),
    working_eps_b: Annotated[
        float, typer.Option(help="ε_B of the quoted significance.")
    ] = DEFAULTS["working_eps_b"],
    injection: Annotated[
        float, typer.Option(help="Injected signal fraction of the background.")
    ] = DEFAULTS["injection"],
    min_region_events: Annotated[
        int,
        typer.Option(
            help="Skip ε_B points with a region below this many effective events ((Σw)²/Σw²).",
            min=0,
        ),
    ] = DEFAULTS["min_region_events"],
    rate_khz: Annotated[
        float,
        typer.Option(
            help="L1 rate [kHz at 40 MHz] for the TPR working point.", callback=options.positive
        ),
    ] = DEFAULTS["rate_khz"],
) -> None:
    """ABCD scan over ε_B: closure on background, significance of each signal injected; ROC/AUC and dCor."""
    import pandas as pd

    from l1ad.report import closure_consistency_text, rates_frame
    from offline.ad.metrics import rate_to_fpr
    from offline.ad.score import read_scores
    from offline.ad.workflow import evaluate_scores

    bkg = read_scores(background)
    sigs = {name: read_scores(path) for name, path in named_paths(signal).items()}
    result = evaluate_scores(
        bkg,
        sigs,
        out,
        working_eps_b=working_eps_b,
        injection=injection,
        min_region_events=min_region_events,
        rate_khz=rate_khz,
    )
    console = Console(markup=False)
    scan = result["abcd"]
    table = Table(title="ABCD: pull = (N_A - N_B N_C / N_D) / σ")
    for col in ("ε_B", "sample", "N_A", "predicted", "pull"):
        table.add_column(col, justify="right")
    for _, row in scan.iterrows():
        pull = "—" if pd.isna(row["pull"]) else f"{row['pull']:+.2f}"
        table.add_row(
            f"{row['eps_b']:.4f}",
            row["sample"],
            f"{row['n_a']:.1f}",
            f"{row['predicted']:.1f} ± {row['predicted_sigma']:.1f}",
            pull,
        )
    console.print(table)
    s = result["summary"]
    console.print(
        f"dCor(R1, R2) background: {s['ad']['dcor_background']:.4f}; "
        f"max |closure pull|: {s['abcd']['max_abs_closure_pull']}"
    )
    if s["abcd"]["closure_consistency"] is not None:
        console.print(closure_consistency_text(s["abcd"]["closure_consistency"]))
    console.print(rates_frame({**s["rates"], "FPR 1e-5": s["fpr_1e-5"]}).to_string())
    if not result["metrics"].empty:
        console.print(f"rate {rate_khz:g} kHz at 40 MHz = FPR {rate_to_fpr(rate_khz):.3g}")
        console.print(result["metrics"].to_string(float_format=lambda v: f"{v:.4g}"))
    console.print(f"wrote {out}")


def register(app) -> None:
    app.command()(train)
    app.command()(score)
    app.command()(abcd)


def run(ctx: RunContext, events: EventSamples) -> ADStageResult:
    """Train on the events stage's background, score held-out background and signals, ABCD."""
    from offline.ad.stage import Evaluation, train_and_evaluate
    from offline.ad.train import TrainConfig

    cfg = ctx.config[NAME]
    config = TrainConfig(
        preset=cfg["preset"],
        lam=float(cfg["lam"]),
        closure_lam=float(cfg["closure_lam"]),
        closure_efficiencies=tuple(cfg["closure_efficiencies"]),
        closure_jitter=float(cfg["closure_jitter"]),
        epochs=int(cfg["epochs"]),
        batch_size=int(cfg["batch_size"]),
        lr=float(cfg["lr"]),
        patience=int(cfg["patience"]),
        monitor=str(cfg["monitor"]),
        seed=ctx.seed,
        device=cfg["device"],
    )
    evaluation = Evaluation(
        eps_b=tuple(cfg["eps_b"]),
        working_eps_b=float(cfg["working_eps_b"]),
        injection=float(cfg["injection"]),
        min_region_events=int(cfg["min_region_events"]),
        rate_khz=float(cfg["rate_khz"]),
        rates_khz=tuple(float(r) for r in cfg["rates_khz"]),
        bootstrap=int(cfg["bootstrap"]),
    )
    return train_and_evaluate(
        events.background,
        events.signals,
        ctx.step_dir(NAME),
        config,
        tuple(cfg["split"]),
        evaluation,
        tuple(float(v) for v in cfg["lambda_scan"]),
    )
