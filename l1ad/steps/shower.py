"""``l1ad shower {simulate,train,sample,evaluate}``: calorimeter-shower surrogates (not a pipeline step)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from l1ad import options
from l1ad.errors import ErrorReportingTyper

NAME = "shower"
DEFAULTS: dict = {}
run = None  # not a pipeline step

console = Console(stderr=True, markup=False)
app = typer.Typer(
    name="shower",
    help="Calorimeter showers: GFlash reference simulation, diffusion surrogate, distillation, evaluation.",
    no_args_is_help=True,
)


_command = ErrorReportingTyper(app).command()


@_command
def simulate(
    events: Annotated[int, typer.Option(help="Number of showers.", min=1)],
    out: Annotated[Path, typer.Option(help="Output HDF5 file (CaloChallenge layout).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    e_min: Annotated[float, typer.Option(help="Lowest incident energy [MeV].")] = 1e3,
    e_max: Annotated[float, typer.Option(help="Highest incident energy [MeV].")] = 1e6,
    discrete: Annotated[
        bool,
        typer.Option(
            help="Draw from the DS1 ladder 2^8..2^22 MeV in [e_min, e_max] instead of log-uniform."
        ),
    ] = False,
) -> None:
    """Simulate photon showers with GFlash in the CaloChallenge dataset-1 geometry."""
    import numpy as np
    from rich.progress import Progress

    from offline.generative.gflash import GFlashSimulator, sample_energies
    from offline.generative.io import Showers, write_showers

    rng = np.random.default_rng(seed)
    energies = sample_energies(events, rng, e_min, e_max, discrete)
    sim = GFlashSimulator()
    parts = []
    chunk = 1000
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=events)
        for start in range(0, events, chunk):
            parts.append(sim.simulate(energies[start : start + chunk], rng))
            progress.update(task, advance=min(chunk, events - start))
    meta = {
        "generator": "gflash",
        "material": sim.material.name,
        "seed": seed,
        "e_min_mev": e_min,
        "e_max_mev": e_max,
        "discrete": discrete,
    }
    write_showers(out, Showers(energies, np.concatenate(parts)), meta)
    console.print(f"wrote {events} showers to {out}")


@_command
def train(
    data: Annotated[Path, typer.Option(help="Training showers (CaloChallenge HDF5 layout).")],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    epochs: Annotated[int, typer.Option(min=1)] = 100,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    lr: Annotated[float, typer.Option(callback=options.positive)] = 1e-3,
    steps: Annotated[
        int,
        typer.Option(
            help="Sampling steps of the full (teacher) model; a power of two for distillation.",
            min=1,
        ),
    ] = 64,
    distill: Annotated[
        str, typer.Option(help="Comma-separated distillation targets (steps); empty for none.")
    ] = "8,1",
    distill_iterations: Annotated[
        int, typer.Option(help="Optimiser steps per halving round.", min=1)
    ] = 2000,
    voxel_width: Annotated[int, typer.Option(min=1)] = 512,
    voxel_depth: Annotated[int, typer.Option(min=1)] = 4,
    max_events: Annotated[
        int | None, typer.Option(help="Use at most this many showers.", min=1)
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:1 ...", callback=options.device)
    ] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train the diffusion surrogate (layer + voxel models), then distil it (run under torchrun for DDP)."""
    from offline.generative.diffusion import DiffusionConfig
    from offline.generative.io import read_showers
    from offline.generative.workflow import train_and_distill

    targets = options.halving_targets(distill, steps)
    showers = read_showers(data, max_events=max_events)
    config = DiffusionConfig(
        voxel_width=voxel_width,
        voxel_depth=voxel_depth,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )
    quiet = int(os.environ.get("RANK", "0")) != 0
    result = train_and_distill(
        showers,
        out,
        config,
        targets,
        distill_iterations,
        device,
        log=(lambda _msg: None) if quiet else (lambda msg: console.print(msg)),
    )
    if result is not None:
        console.print(f"wrote model to {result}")


@_command
def sample(
    model: Annotated[Path, typer.Option(help="Model directory from `l1ad shower train`.")],
    out: Annotated[Path, typer.Option(help="Output HDF5 file (CaloChallenge layout).")],
    sampler: Annotated[
        str, typer.Option(help="full, or distilled_N for a distilled student.")
    ] = "full",
    energies: Annotated[
        Path | None, typer.Option(help="Take incident energies from this shower file.")
    ] = None,
    events: Annotated[
        int | None,
        typer.Option(
            help="Otherwise draw this many log-uniform energies (or take the first N).", min=1
        ),
    ] = None,
    e_min: Annotated[float, typer.Option(help="[MeV]")] = 1e3,
    e_max: Annotated[float, typer.Option(help="[MeV]")] = 1e6,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(callback=options.device)] = "auto",
) -> None:
    """Generate showers with a trained sampler."""
    from offline.generative.gflash import sample_energies
    from offline.generative.io import Showers, read_showers, write_showers
    from offline.generative.workflow import load_samplers, timed

    samplers = load_samplers(model, device)
    if sampler not in samplers:
        raise ValueError(f"{model}: no sampler {sampler!r} (have {', '.join(samplers)})")
    if energies is not None:
        e = read_showers(energies).incident_energies
        if events is not None:
            e = e[:events]
    elif events is not None:
        e = sample_energies(events, seed, e_min, e_max)
    else:
        raise ValueError("give --energies FILE or --events N")
    m = samplers[sampler]
    showers, ms = timed(lambda: m.sample(e, seed=seed), len(e), next(m.parameters()).device)
    write_showers(
        out,
        Showers(e, showers),
        {"generator": f"diffusion:{sampler}", "steps": m.steps, "seed": seed},
    )
    console.print(
        f"wrote {len(e)} showers ({sampler}, {m.steps} steps, {ms:.3f} ms/shower) to {out}"
    )


@_command
def evaluate(
    reference: Annotated[
        Path, typer.Option(help="Held-out reference showers (CaloChallenge layout).")
    ],
    out: Annotated[Path, typer.Option(help="Directory for metrics.json and plots.")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory; every sampler in it is evaluated.")
    ] = None,
    generated: Annotated[
        list[Path] | None,
        typer.Option(help="Already generated shower files to evaluate too (name = file stem)."),
    ] = None,
    max_events: Annotated[
        int | None, typer.Option(help="Use at most this many reference showers.", min=1)
    ] = None,
    classifier_epochs: Annotated[int, typer.Option(min=1)] = 30,
    device: Annotated[str, typer.Option(callback=options.device)] = "auto",
    seed: Annotated[int, typer.Option()] = 1,
    plots: Annotated[bool, typer.Option(help="Write average_images.png and features.png.")] = True,
) -> None:
    """Compare samplers to reference showers: classifier AUCs, W1 per feature, ms/shower -> metrics.json."""
    import numpy as np

    from offline.generative.evaluate import ClassifierConfig
    from offline.generative.io import read_showers
    from offline.generative.workflow import evaluate_generated, generate_all, load_samplers

    ref = read_showers(reference, max_events=max_events)
    samplers = load_samplers(model, device) if model is not None else {}
    gen = generate_all(ref.incident_energies, samplers, seed=seed)
    for path in generated or []:
        other = read_showers(path, max_events=len(ref))
        if len(other) != len(ref) or not np.allclose(
            other.incident_energies, ref.incident_energies, rtol=1e-5
        ):
            raise ValueError(
                f"{path}: incident energies differ from the reference's (generate with --energies REFERENCE)"
            )
        gen[path.stem] = (other.showers, None, None)
    metrics = evaluate_generated(
        ref,
        gen,
        out,
        ClassifierConfig(epochs=classifier_epochs, device=device, seed=seed),
        log=lambda msg: console.print(msg),
        plots=plots,
    )
    console.print(
        f"wrote {out / 'metrics.json'} ({len(metrics)} samplers)" + (" and plots" if plots else "")
    )


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name=NAME)
