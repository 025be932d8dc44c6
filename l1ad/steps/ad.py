"""``l1ad train|score|abcd`` and the ``ad`` pipeline stage: the DisCo autoencoder pair, scores, ABCD."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from l1ad import options
from l1ad.options import named_paths
from offline.ad.defaults import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_EPS_B,
    DEFAULT_FRACTIONS,
    DEFAULT_LAMBDA,
    DEFAULT_RATE_KHZ,
    DEFAULT_RATES_KHZ,
)

if TYPE_CHECKING:
    import pandas as pd

NAME = "ad"
DEFAULTS: dict[str, Any] = {
    "preset": "firmware",
    "lam": DEFAULT_LAMBDA,  # see offline/ad/defaults.py: R sums 57 features, so λ >> the paper's 10
    # small batches: a default run trains on ~3000 events, and DisCo needs many steps to act
    # (the paper used 10 000 on millions of events; raise it for large samples)
    "epochs": 100,
    "batch_size": 256,
    "lr": 1e-3,
    "patience": 10,
    "device": "auto",
    "split": list(DEFAULT_FRACTIONS),
    "eps_b": list(DEFAULT_EPS_B),
    "working_eps_b": 0.01,
    "injection": 0.001,
    # the paper skips regions under 100 events; default runs have ~10^4 test events, so 20
    "min_region_events": 20,
    "rate_khz": DEFAULT_RATE_KHZ,
    # trigger operating points with errors (kHz of 40 MHz); Poisson-bootstrap replicas for the thresholds
    "rates_khz": list(DEFAULT_RATES_KHZ),
    "bootstrap": DEFAULT_BOOTSTRAP,
    "lambda_scan": [],  # e.g. [0, 10, 100, 1000]: one extra training per value
}


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
    background: Annotated[Path, typer.Argument(help="Background event file (ADC2021 HDF5 layout).")],
    out: Annotated[Path, typer.Option(help="Checkpoint directory.")] = Path("ad_model"),
    preset: Annotated[str, typer.Option(help="Architecture: firmware or paper.")] = DEFAULTS["preset"],
    lam: Annotated[float, typer.Option("--lambda", help="DisCo weight λ.")] = DEFAULTS["lam"],
    epochs: Annotated[int, typer.Option(help="Maximum epochs.", min=1)] = DEFAULTS["epochs"],
    batch_size: Annotated[int, typer.Option(help="Global batch size (all processes together).", min=2)] = DEFAULTS["batch_size"],
    lr: Annotated[float, typer.Option(help="Adam learning rate.", callback=options.positive)] = DEFAULTS["lr"],
    patience: Annotated[int, typer.Option(help="Early-stopping patience (epochs).", min=1)] = DEFAULTS["patience"],
    seed: Annotated[int, typer.Option(help="Seed of the split, the initial weights and the batches.")] = 1234,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...", callback=options.device)] = "auto",
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in --out.")] = False,
    lambda_scan_values: Annotated[
        str | None, typer.Option("--lambda-scan", help="Comma-separated λ values: train one pair each, tabulate.")
    ] = None,
    signal: Annotated[list[str] | None, typer.Option(help="NAME=PATH signal file for the λ scan's AUC.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    stream: Annotated[bool, typer.Option(help="Stream the background file in chunks (files larger than memory).")]
    = False,
    shuffle_chunk: Annotated[int | None, typer.Option(
        help=f"Shuffle contiguous chunks of this many events (0: every event; default {STREAM_CHUNK} with --stream, "
             "else 0).")] = None,
) -> None:
    """Train the DisCo-decorrelated autoencoder pair on background (works under torchrun for DDP)."""
    from offline import distributed
    from offline.ad.train import TrainConfig
    from offline.ad.workflow import lambda_scan, train_from_file

    chunk = (STREAM_CHUNK if stream else 0) if shuffle_chunk is None else shuffle_chunk
    config = TrainConfig(preset=preset, lam=lam, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                         seed=seed, device=device, progress=progress, shuffle_chunk=chunk)
    console = Console(stderr=True, markup=False)
    if lambda_scan_values is not None:
        frame = lambda_scan(background, named_paths(signal), out, _lambdas(lambda_scan_values), config)
        console.print(frame.to_string(index=False))
        console.print(f"wrote {out / 'lambda_scan.csv'} and {out / 'lambda_scan.png'}")
        return
    result = train_from_file(background, out, config, resume=resume, stream=stream)
    distributed.teardown()
    if int(os.environ.get("RANK", "0")) != 0:
        return
    console.print(
        f"best epoch {result.best_epoch} (val loss {result.best_val_loss:.5g}), {result.epochs_run} epochs"
        f"{' (stopped early)' if result.stopped_early else ''}, {result.events_per_second:,.0f} events/s; wrote {out}"
    )


def score(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory written by l1ad train.")],
    events: Annotated[Path, typer.Argument(help="Event file to score.")],
    out: Annotated[Path, typer.Option(help="Output HDF5 with R1, R2, weights, labels.")] = Path("scores.h5"),
    preprocessing: Annotated[Path | None, typer.Option(help="preprocessing.json (default: the checkpoint's).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Events per chunk.", min=1)] = 200_000,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.", callback=options.device)] = "cpu",
) -> None:
    """Compute R1, R2 for every event of a file, in chunks."""
    from offline.ad.score import score_file

    path = score_file(checkpoint, events, out, preprocessing, chunk_size, device)
    Console(stderr=True, markup=False).print(f"wrote {path}")


def abcd(
    background: Annotated[Path, typer.Argument(help="Scores file of held-out background (l1ad score).")],
    signal: Annotated[list[str] | None, typer.Option(help="NAME=SCORES.h5 of a signal, repeatable.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for tables, plots and metrics.json.")] = Path("abcd"),
    working_eps_b: Annotated[float, typer.Option(help="ε_B of the quoted significance.")] = 0.01,
    injection: Annotated[float, typer.Option(help="Injected signal fraction of the background.")] = 0.001,
    min_region_events: Annotated[int, typer.Option(help="Skip ε_B points with a region below this.", min=0)] = 100,
    rate_khz: Annotated[float, typer.Option(help="L1 rate [kHz at 40 MHz] for the TPR working point.", callback=options.positive)] = DEFAULT_RATE_KHZ,
) -> None:
    """ABCD scan over ε_B: closure on background, significance of each signal injected; ROC/AUC and dCor."""
    import pandas as pd

    from offline.ad.metrics import rate_to_fpr
    from offline.ad.score import read_scores
    from offline.ad.workflow import evaluate_scores

    bkg = read_scores(background)
    sigs = {name: read_scores(path) for name, path in named_paths(signal).items()}
    result = evaluate_scores(bkg, sigs, out, working_eps_b=working_eps_b, injection=injection,
                             min_region_events=min_region_events, rate_khz=rate_khz)
    console = Console(markup=False)
    scan = result["abcd"]
    table = Table(title="ABCD: pull = (N_A - N_B N_C / N_D) / σ")
    for col in ("ε_B", "sample", "N_A", "predicted", "pull"):
        table.add_column(col, justify="right")
    for _, row in scan.iterrows():
        pull = "—" if pd.isna(row["pull"]) else f"{row['pull']:+.2f}"
        table.add_row(f"{row['eps_b']:.4f}", row["sample"], f"{row['n_a']:.1f}",
                      f"{row['predicted']:.1f} ± {row['predicted_sigma']:.1f}", pull)
    console.print(table)
    s = result["summary"]
    console.print(f"dCor(R1, R2) background: {s['ad']['dcor_background']:.4f}; "
                  f"max |closure pull|: {s['abcd']['max_abs_closure_pull']}")
    console.print(rates_frame({**s["rates"], "FPR 1e-5": s["fpr_1e-5"]}).to_string())
    if not result["metrics"].empty:
        console.print(f"rate {rate_khz:g} kHz at 40 MHz = FPR {rate_to_fpr(rate_khz):.3g}")
        console.print(result["metrics"].to_string(float_format=lambda v: f"{v:.4g}"))
    console.print(f"wrote {out}")


def rates_frame(rates: dict[str, dict]) -> pd.DataFrame:
    """One row per target rate: thresholds ± bootstrap σ, the tail's effective events, TPR ± σ per signal."""
    import pandas as pd

    rows = []
    for rate, p in rates.items():
        row: dict[str, Any] = {"rate [kHz]": rate, "ε_B": f"{p['eps_b']:.3g}", "tail ESS": f"{p['tail_ess']:.1f}"}
        if not p["resolved"]:
            row["x (R1)"] = p["note"]
        else:
            t, e = p["threshold"], p["threshold_sigma"]
            row["x (R1)"] = f"{t['r1']:.4g} ± {e['r1']:.2g}"
            row["y (R2)"] = f"{t['r2']:.4g} ± {e['r2']:.2g}"
            for name, v in p["tpr"].items():
                row[f"TPR {name}"] = f"{v['value']:.4f} ± {v['sigma']:.4f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("rate [kHz]").fillna("—")


def register(app) -> None:
    app.command()(train)
    app.command()(score)
    app.command()(abcd)


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.4g}"


def run(ctx) -> dict[str, dict]:
    """Train on the events stage's background, score held-out background and signals, ABCD, report."""
    from offline import distributed
    from offline.ad.metrics import rate_to_fpr
    from offline.ad.score import read_scores, score_file, write_scores
    from offline.ad.train import TrainConfig
    from offline.ad.workflow import evaluate_scores, held_out_scores, lambda_scan, train_from_file

    cfg = ctx.config[NAME]
    try:
        events = ctx.artifacts["events"]
        background = Path(events["background"])
        signal_files = {k: Path(v) for k, v in events["signals"].items()}
    except KeyError as err:
        raise ValueError(f"ad stage needs the events stage's artifacts (missing {err})") from None
    out = ctx.step_dir(NAME)
    model_dir = out / "model"
    fractions = tuple(cfg["split"])
    config = TrainConfig(preset=cfg["preset"], lam=float(cfg["lam"]), epochs=int(cfg["epochs"]),
                         batch_size=int(cfg["batch_size"]), lr=float(cfg["lr"]), patience=int(cfg["patience"]),
                         seed=ctx.seed, device=cfg["device"])
    result = train_from_file(background, model_dir, config, fractions)

    scores_dir = out / "scores"
    device = str(distributed.pick_device(cfg["device"]))
    bkg = held_out_scores(model_dir, background, ctx.seed, fractions, device=device)
    write_scores(scores_dir / "background_test.h5", bkg, {"events": str(background), "split": "test"})
    score_paths = {"background_test": scores_dir / "background_test.h5"}
    sigs = {}
    for name, path in signal_files.items():
        score_paths[name] = score_file(model_dir, path, scores_dir / f"{name}.h5", device=device,
                                       progress=False)
        sigs[name] = read_scores(score_paths[name])

    ev = evaluate_scores(bkg, sigs, out / "evaluation", tuple(cfg["eps_b"]), float(cfg["working_eps_b"]),
                         float(cfg["injection"]), int(cfg["min_region_events"]), float(cfg["rate_khz"]),
                         rates_khz=tuple(float(r) for r in cfg["rates_khz"]), bootstrap=int(cfg["bootstrap"]))
    summary = ev["summary"]

    report = ctx.report
    report.section(
        "Anomaly detection: DisCo-decorrelated autoencoder pair",
        f"Preset `{cfg['preset']}`, λ = {config.lam:g}, batch {config.batch_size}, lr {config.lr:g}. "
        f"Background split {fractions} (train/validation/test) with seed {ctx.seed}; "
        f"{result.epochs_run} epochs, best epoch {result.best_epoch}"
        f"{' (early stop)' if result.stopped_early else ''}, {result.events_per_second:,.0f} training events/s. "
        f"dCor(R1, R2) on {len(bkg)} held-out background events: {_fmt(summary['ad']['dcor_background'])}. "
        f"ROC score: min of the two background-CDF-transformed errors (the ABCD signal-region family). "
        f"TPR at FPR 1e-5 is '—' when the test sample cannot resolve it; the rate working point is "
        f"{cfg['rate_khz']:g} kHz at 40 MHz (FPR {rate_to_fpr(float(cfg['rate_khz'])):.3g}), trigger = region A.",
    )
    report.figure(model_dir / "loss.png", "Loss per epoch (top) and DisCo² (bottom)")
    if not ev["metrics"].empty:
        report.table(ev["metrics"], caption="Per-signal metrics on held-out background")
        report.figure(ev["plots"]["roc"], "ROC per signal")
    report.table(
        rates_frame({**summary["rates"], "FPR 1e-5": summary["fpr_1e-5"]}),
        caption="Trigger (region A) at target rates of 40 MHz: thresholds ± Poisson-bootstrap σ "
                f"({int(cfg['bootstrap'])} replicas), TPR ± weighted binomial σ, and the effective sample size "
                "(Σw)²/Σw² of the background beyond the thresholds; rows with a tail ESS under 10 are not resolved",
    )
    scan = ev["abcd"]
    closure = scan[scan["sample"] == "background"][["eps_b", "n_a", "predicted", "predicted_sigma", "pull"]]
    report.section(
        "ABCD background estimate",
        f"Thresholds from background: x at √ε_B, y so that A keeps ε_B. Signals injected at "
        f"{float(cfg['injection']):.2%} of the background; significance quoted at ε_B = {cfg['working_eps_b']}. "
        f"Points with a region under {cfg['min_region_events']} events have no pull. "
        f"Max |closure pull| = {_fmt(summary['abcd']['max_abs_closure_pull'])}."
        + (" **Closure fails (|pull| > 2): R1 and R2 are not independent enough in the tail, so the "
           "significances below include the background's own excess.**"
           if (summary["abcd"]["max_abs_closure_pull"] or 0) > 2 else ""),
    )
    report.table(closure.set_index("eps_b"), caption="Closure on background")
    if sigs:
        pivot = scan[scan["sample"] != "background"].pivot(index="eps_b", columns="sample", values="pull")
        report.table(pivot, caption="Significance (N_A − N_B N_C/N_D)/σ per injected signal")
    for key, caption in (("abcd_plane", "ABCD plane"), ("closure", "Closure vs ε_B"),
                         ("significance", "Significance vs ε_B")):
        if key in ev["plots"]:
            report.figure(ev["plots"][key], caption)

    if cfg["lambda_scan"]:
        frame = lambda_scan(background, signal_files, out / "lambda_scan", [float(v) for v in cfg["lambda_scan"]],
                            config, fractions)
        report.table(frame.set_index("lambda"), caption="λ scan: held-out dCor and AUC")
        report.figure(out / "lambda_scan" / "lambda_scan.png", "λ scan")

    ctx.artifacts[NAME] = {
        "dir": out,
        "checkpoint": model_dir,
        "config": model_dir / "config.json",
        "weights": model_dir / "model.safetensors",
        "preprocessing": model_dir / "preprocessing.json",
        "scores": score_paths,
        "metrics": out / "evaluation" / "metrics.json",
        "seed": ctx.seed,
        "split": list(fractions),
    }
    ad = summary["ad"]
    return {
        "ad": {"auc": ad["auc"], "tpr_at_fpr_1e-5": ad["tpr_at_fpr_1e-5"], "dcor_background": ad["dcor_background"],
               "tpr_at_rate": ad["tpr_at_rate"], "rate_khz": ad["rate_khz"]},
        "abcd": {"max_abs_closure_pull": summary["abcd"]["max_abs_closure_pull"],
                 "significance": summary["abcd"]["significance"]},
        "rates": summary["rates"],
        "fpr_1e-5": summary["fpr_1e-5"],
    }
