"""Everything ``l1ad unfold`` does, as library functions: read inputs, unfold, write outputs.

Outputs in the output directory: ``weights.h5`` (per-event weights), ``unfolded_<observable>.png``
(histograms with ratio panels), ``metrics.csv`` (triangular discriminator x10^3),
``diagnostics.csv``/``diagnostics.png`` (ESS and largest weights per iteration),
``config.json`` and, last, ``metrics.json``. Each file is written atomically.

Ensembles run in parallel under ``torchrun``: each rank trains members rank, rank + G, ...;
rank 0 writes the outputs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.text import Text

from offline import distributed
from offline.artifacts import atomic_directory, atomic_path, check_replaceable, write_json
from offline.unfold.classifiers import CLASSIFIERS, PARTICLE_CLASSIFIERS
from offline.unfold.diagnostics import diagnostics_table, effective_sample_size, weight_change
from offline.unfold.examples import EXAMPLES, UnfoldingProblem
from offline.unfold.ibu import ibu_samples
from offline.unfold.metrics import metric_table, weighted_histogram
from offline.unfold.omnifold import OmniFoldConfig, OmniFoldResult, bootstrap, omnifold

ARRAYS = ("sim_reco", "sim_gen", "data_reco")
UNFOLD_KIND = "unfold"  # atomic_directory replaces only earlier unfold outputs
OPTIONAL = (
    "pass_reco",
    "pass_gen",
    "data_pass_reco",
    "sim_weights",
    "data_weights",
    "data_gen",
    "data_pass_gen",
)
# (N, P, F) zero-padded particle sets, the inputs of --model deepsets/transformer: all or none
PARTICLE_ARRAYS = ("sim_reco_particles", "sim_gen_particles", "data_reco_particles")


def read_arrays(path: Path, observables: list[str] | None, n_bins: int) -> UnfoldingProblem:
    """An HDF5 file with datasets sim_reco, sim_gen, data_reco (N×F) and optional flags/weights.

    ``data_gen`` (and ``data_pass_gen``), when present, is the truth used by the metrics;
    ``PARTICLE_ARRAYS`` (N×P×F, all-zero rows = padding), when present, are the inputs of
    the particle-level classifiers.
    """
    import h5py

    if not path.exists():
        raise ValueError(f"{path}: input file does not exist")
    try:
        with h5py.File(path, "r") as f:
            absent = [k for k in ARRAYS if k not in f]
            if absent:
                raise ValueError(
                    f"{path}: missing datasets {', '.join(absent)} (need {', '.join(ARRAYS)})"
                )
            datasets = (*ARRAYS, *OPTIONAL, *PARTICLE_ARRAYS)
            arrays = {k: np.asarray(f[k][()]) for k in datasets if k in f}
    except (OSError, RuntimeError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}"
        ) from None
    for key, values in arrays.items():
        # real numbers only: strings, complex numbers and records have no place in a classifier input
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"{path}: dataset {key!r} has dtype {values.dtype}, expected real numbers"
            )
    for key in ("sim_reco", "sim_gen", "data_reco", "data_gen"):
        if key in arrays and arrays[key].ndim == 1:
            arrays[key] = arrays[key][:, None]
    for key in ("sim_reco", "sim_gen", "data_reco", "data_gen"):
        if key in arrays and arrays[key].ndim != 2:
            raise ValueError(
                f"{path}: {key} has shape {arrays[key].shape}; the command takes (N,) or (N, F) "
                "observables (particle sets: use offline.unfold.omnifold with classifier='deepsets' or 'transformer')"
            )
    particles = None
    given = [k for k in PARTICLE_ARRAYS if k in arrays]
    if given:
        if len(given) < len(PARTICLE_ARRAYS):
            missing = ", ".join(k for k in PARTICLE_ARRAYS if k not in arrays)
            raise ValueError(
                f"{path}: has {', '.join(given)} but not {missing} (particle sets: all or none)"
            )
        for key in PARTICLE_ARRAYS:
            rows = len(arrays[key.removesuffix("_particles")])
            if arrays[key].ndim != 3 or len(arrays[key]) != rows:
                raise ValueError(
                    f"{path}: {key} has shape {arrays[key].shape}, expected ({rows}, P, F) particle sets"
                )
        particles = {k.removesuffix("_particles"): arrays[k] for k in PARTICLE_ARRAYS}
    n_feat = arrays["sim_gen"].shape[1]
    names = observables or [f"x{i}" for i in range(n_feat)]
    if len(names) != n_feat:
        raise ValueError(f"observables: {len(names)} names for {n_feat} feature columns")
    truth = arrays.get("data_gen")
    bins = {}
    for j, name in enumerate(names):
        column = arrays["sim_gen"][:, j]
        column = column[np.isfinite(column)]
        lo, hi = np.quantile(column, [0.005, 0.995]) if column.size else (0.0, 1.0)
        bins[name] = np.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
    return UnfoldingProblem(
        name=path.stem,
        observables=names,
        sim_reco=arrays["sim_reco"],
        sim_gen=arrays["sim_gen"],
        data_reco=arrays["data_reco"],
        data_gen=truth if truth is not None else np.zeros((0, n_feat)),
        bins=bins,
        pass_reco=arrays.get("pass_reco"),
        pass_gen=arrays.get("pass_gen"),
        data_pass_reco=arrays.get("data_pass_reco"),
        data_pass_gen=arrays.get("data_pass_gen"),
        sim_weights=arrays.get("sim_weights"),
        data_weights=arrays.get("data_weights"),
        particles=particles,
    )


def _write_weights(path: Path, result: OmniFoldResult, boot: np.ndarray | None) -> None:
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("weights", data=result.weights, compression="gzip")
        f.create_dataset("prior", data=result.prior, compression="gzip")
        f.create_dataset("push", data=result.push, compression="gzip")
        f.create_dataset("pull", data=result.pull, compression="gzip")
        f.create_dataset("member_weights", data=result.member_weights, compression="gzip")
        if boot is not None:
            f.create_dataset("bootstrap_weights", data=boot, compression="gzip")
        f.attrs["description"] = (
            "weights: unfolded particle-level weights of the simulated events (prior * push[-1]); "
            "push/pull: per-iteration OmniFold weights relative to the prior"
        )


def run_unfold(settings: dict[str, Any], console: Console | None = None) -> dict[str, Any]:
    """Everything ``l1ad unfold`` does, from a resolved settings dict; returns metrics.json's content."""
    console = console or Console(stderr=True, markup=False)
    out = Path(settings["out"])
    check_replaceable(out, UNFOLD_KIND)  # before the unfolding, not after
    example = settings["example"]
    if (example is None) == (settings["input"] is None):
        raise ValueError(
            "unfold: give exactly one of an input file (--config with 'input') or --example"
        )
    for key, least in (("bootstrap", 0), ("events", 1), ("bins", 1)):
        if int(settings[key]) < least:
            raise ValueError(f"unfold: {key} must be >= {least}, got {settings[key]}")
    model = settings["model"]  # checked before an example is generated
    if model not in CLASSIFIERS:
        raise ValueError(f"--model: unknown classifier {model!r} (known: {', '.join(CLASSIFIERS)})")
    if example is not None:
        if example not in EXAMPLES:
            raise ValueError(
                f"--example: unknown example {example!r} (known: {', '.join(EXAMPLES)})"
            )
        kwargs = (
            {"cache_dir": os.environ.get("L1AD_CACHE", "cache"), "progress": True}
            if example.startswith("jets")
            else {}
        )
        problem = EXAMPLES[example](int(settings["events"]), seed=int(settings["seed"]), **kwargs)
    else:
        problem = read_arrays(
            Path(settings["input"]), settings["observables"], int(settings["bins"])
        )
    on_particles = model in PARTICLE_CLASSIFIERS
    if on_particles and problem.particles is None:
        raise ValueError(
            f"--model {model}: needs per-particle inputs, and {problem.name} has observables "
            f"only (the jets example has particles; input files can add {', '.join(PARTICLE_ARRAYS)})"
        )
    config = OmniFoldConfig(
        iterations=int(settings["iterations"]),
        ensembles=int(settings["ensembles"]),
        classifier=model,
        classifier_options={} if on_particles else {"hidden": tuple(settings["hidden"])},
        epochs=int(settings["epochs"]),
        batch_size=int(settings["batch_size"]),
        learning_rate=float(settings["learning_rate"]),
        patience=int(settings["patience"]),
        clip=settings["clip"],
        seed=int(settings["seed"]),
    )
    dist = distributed.setup()  # joins torchrun's process group when started by torchrun
    rank = dist.rank
    try:
        if rank == 0:
            console.print(
                f"unfolding {problem.name}: {len(problem.sim_reco)} simulated, {len(problem.data_reco)} data events, "
                f"{config.iterations} iterations, {config.ensembles} ensemble member(s), "
                f"{model} classifier"
                + (" on the particles and the event's observables" if on_particles else "")
            )
        start = time.perf_counter()
        result = omnifold(
            **problem.omnifold_inputs(particles=on_particles),
            config=config,
            log=console.print if rank == 0 else None,
        )
        boot = None
        if int(settings["bootstrap"]) > 0:
            if rank == 0:
                console.print(f"bootstrap: {settings['bootstrap']} replicas")
            boot = bootstrap(
                **problem.omnifold_inputs(particles=on_particles),
                replicas=int(settings["bootstrap"]),
                config=config,
            )
        seconds = time.perf_counter() - start
    finally:
        distributed.teardown()
    if rank != 0:
        return {}
    with atomic_directory(out, kind=UNFOLD_KIND) as tmp:  # whole or not at all
        metrics = _write_outputs(tmp, problem, result, boot, config, settings, seconds, console)
    console.print(
        Text.assemble(
            ("wrote", "bold green"),
            f" {out}/metrics.json, weights.h5, plots ({seconds:.1f} s of unfolding)",
        )
    )
    return metrics


def _write_outputs(
    out: Path,
    problem: UnfoldingProblem,
    result: OmniFoldResult,
    boot: np.ndarray | None,
    config: OmniFoldConfig,
    settings: dict[str, Any],
    seconds: float,
    console: Console,
) -> dict[str, Any]:
    from offline.unfold.plots import plot_diagnostics, plot_unfolded

    _write_weights(out / "weights.h5", result, boot)
    diag = diagnostics_table(result.diagnostics)
    with atomic_path(out / "diagnostics.csv") as tmp:
        diag.to_csv(tmp, index=False)
    plot_diagnostics(out / "diagnostics.png", diag)
    flags = problem.flags()
    pg = flags["pass_gen"]
    has_truth = len(problem.data_gen) > 0
    if has_truth:
        table = metric_table(problem, {"omnifold": result.weights}, config.iterations)
        with atomic_path(out / "metrics.csv") as tmp:
            table.to_csv(tmp)
        console.print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    prior = result.prior
    for j, obs in enumerate(problem.observables):
        bins = problem.bins[obs]
        curves = {
            "OmniFold": weighted_histogram(problem.sim_gen[pg, j], bins, result.weights[pg]),
            "IBU": ibu_samples(
                problem.sim_reco[:, j],
                problem.sim_gen[:, j],
                problem.data_reco[:, j],
                bins,
                bins,
                config.iterations,
                pass_reco=flags["pass_reco"],
                pass_gen=pg,
                data_pass_reco=flags["data_pass_reco"],
                sim_weights=prior,
                data_weights=problem.data_weights,
            ),
            "prior (simulation)": weighted_histogram(problem.sim_gen[pg, j], bins, prior[pg]),
        }
        truth = None
        if has_truth:
            dg = flags["data_pass_gen"]
            dw = None if problem.data_weights is None else problem.data_weights[dg]
            truth = weighted_histogram(problem.data_gen[dg, j], bins, dw)
        plot_unfolded(
            out / f"unfolded_{obs}.png",
            bins,
            curves,
            truth,
            problem.labels.get(obs, obs),
            title=f"{problem.name}: {config.iterations} iteration(s)",
        )
    write_json(out / "config.json", {k: v for k, v in settings.items()})
    ess = effective_sample_size(result.weights[pg])
    metrics = {
        "triangular_discriminator": {
            method: ({obs: float(v) for obs, v in table[method].items()} if has_truth else {})
            for method in ("omnifold", "ibu", "prior")
        },
        "effective_sample_size": ess,
        "effective_sample_size_fraction": ess / max(int(pg.sum()), 1),
        "seconds": seconds,
        # mean |ν_i − ν_{i−1}| (ν_0 = 1): should shrink as the iterations converge
        "weight_change_per_iteration": [
            weight_change(
                np.ones_like(result.push[0]) if i == 0 else result.push[i - 1], result.push[i]
            )
            for i in range(len(result.push))
        ],
        "iterations": config.iterations,
        "ensembles": config.ensembles,
        "events": {"simulation": len(problem.sim_reco), "data": len(problem.data_reco)},
        "truth_available": has_truth,
    }
    write_json(out / "metrics.json", metrics)
    return metrics
