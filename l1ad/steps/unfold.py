"""``l1ad unfold``: OmniFold (with IBU and the prior for comparison) on HDF5 arrays or a built-in example.

Outputs in ``--out DIR``: ``weights.h5`` (per-event weights), ``unfolded_<observable>.png``
(histograms with ratio panels), ``metrics.csv`` (triangular discriminator ×10³),
``diagnostics.csv``/``diagnostics.png`` (ESS and largest weights per iteration),
``config.json`` and, last, ``metrics.json``. Each file is written atomically.

Ensembles run in parallel under ``torchrun`` (``torchrun --nproc-per-node G -m l1ad unfold
... --ensembles E``): each rank trains members rank, rank + G, …; rank 0 writes the outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from l1ad.config import load_config

NAME = "unfold"
DEFAULTS: dict = {
    "input": None,  # HDF5 file with the arrays (see offline.unfold.workflow.read_arrays); or use "example"
    "example": None,  # "gaussian", "jets" (two Pythia tunes) or "jets-vincia" (Pythia vs Vincia shower)
    "events": 20_000,  # for examples: simulated (and data) events
    "observables": None,  # names of the feature columns; default x0, x1, ...
    "bins": 40,  # histogram bins per observable for inputs without their own binning
    "iterations": 4,
    "ensembles": 1,
    "bootstrap": 0,  # Poisson bootstrap replicas (statistical uncertainty)
    "model": "mlp",  # classifier: mlp (observables), deepsets or transformer (particles + observables)
    "hidden": [64, 128, 64],  # MLP hidden sizes (GELU)
    "epochs": 100,
    "batch_size": 2048,
    "learning_rate": 0.002,
    "patience": 4,
    "clip": None,
    "seed": 0,
    "out": "unfold",
}
run = None  # a command of its own, not a pipeline stage


def unfold(
    config: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file; its 'unfold' mapping sets any DEFAULTS key."),
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(
            help="Built-in example: gaussian, jets (two Pythia tunes) or jets-vincia (Pythia vs Vincia shower)."
        ),
    ] = None,
    events: Annotated[
        int | None, typer.Option(help="Events per sample for an example.", min=1)
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(help="OmniFold (and IBU) iterations.", min=1)
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Classifier: mlp (on the observables), deepsets or transformer (on the jets' particles, each carrying the jet's observables)."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Most training epochs per step.", min=1)
    ] = None,
    ensembles: Annotated[
        int | None, typer.Option(help="Independent OmniFold runs to average.", min=1)
    ] = None,
    bootstrap_replicas: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Poisson bootstrap replicas of the data.", min=0),
    ] = None,
    clip: Annotated[
        float | None,
        typer.Option(help="Clip the classifier output f to eps..1-eps (warns when it acts)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the example and of the training.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
) -> None:
    """Unfold with OmniFold (IBU and the prior alongside): weights, plots, metric table, diagnostics."""
    from l1ad.steps import STEPS  # late: this module is one of them
    from offline.unfold.workflow import run_unfold

    # a full run config (other steps' mappings too) is accepted; only 'unfold' is used
    settings = load_config(config, {step.NAME: step.DEFAULTS for step in STEPS})[NAME]
    given = {
        "example": example,
        "events": events,
        "iterations": iterations,
        "model": model,
        "epochs": epochs,
        "ensembles": ensembles,
        "bootstrap": bootstrap_replicas,
        "clip": clip,
        "seed": seed,
        "out": out,
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    if example is not None:
        settings["input"] = None
    run_unfold(settings, Console(stderr=True, markup=False))


def register(app: typer.Typer) -> None:
    app.command()(unfold)
