"""The standard unfolding comparison on Pythia default shower ("simulation") vs Vincia ("data").

Two phases:

- ``produce``: grows both jet samples (``offline.unfold.production``, the event generator's
  Dask engine, cached and resumable) in rounds of ``--step`` events each until
  ``--cpu-budget`` CPU seconds of generation are spent; writes jets per CPU second.
- ``study``: the comparison of arXiv 2503.09720 on the largest sample both have (binning
  ``STUDY_BINS``): prior, IBU, MultiFold (the six observables as a vector), OmniFold with
  the MLP, Deep Sets and the point-cloud transformer on the jets' particles (each
  particle carrying its jet's observables, ``with_event_features``), the
  ``omnifold`` package (MLP on the observables) where it runs, and the statistical floor
  (the discriminator between two independent truth samples of the same size). Ensemble
  and Poisson-bootstrap spreads of the discriminator, and the per-iteration weight
  diagnostics. Writes ``benchmarks/results/unfold_study.json`` and PNG plots beside it.

    nice -n 15 python benchmarks/unfold_study.py produce --cpu-budget 2700
    nice -n 15 python benchmarks/unfold_study.py study
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
RESULTS = Path(__file__).parent / "results"
CACHE = Path("cache")
SEED = 0
TASK_EVENTS = 1000
FEATURES = ("sim_reco", "sim_gen", "data_reco")  # the classifier inputs of omnifold_inputs()


def _log(name: str, line: str) -> None:
    print(f"  {name}: {line}", flush=True)


def _samples_done(cache: Path) -> int:
    """Events both samples have whole tasks for."""
    from offline.unfold.production import parts_directory

    counts = []
    for configuration, seed in (("simulation", SEED), ("vincia", SEED + 1)):
        directory = parts_directory(cache, configuration, seed)
        parts = list(directory.glob("task-*.npz")) if directory.is_dir() else []
        indices = sorted(int(p.stem.split("-")[1]) for p in parts)
        contiguous = next((i for i, j in enumerate(indices) if i != j), len(indices))
        counts.append(contiguous * TASK_EVENTS)
    return min(counts)


def produce(args: argparse.Namespace) -> None:
    from offline.unfold.production import jets_per_cpu_second, produce_jets

    spent, events, rates = 0.0, args.step, {}
    while True:
        for configuration, seed in (("simulation", SEED), ("vincia", SEED + 1)):
            sample = produce_jets(
                events,
                configuration,
                seed,
                args.cache,
                task_events=TASK_EVENTS,
                workers=args.workers,
                progress=True,
            )
            rates[configuration] = {
                "events": len(sample["gen"]),
                "jets_gen": int(sample["pass_gen"].sum()),
                "jets_reco": int(sample["pass_reco"].sum()),
                "cpu_seconds": float(sample["cpu_seconds"].sum()),
                "jets_per_cpu_second": jets_per_cpu_second(sample),
            }
        spent = sum(r["cpu_seconds"] for r in rates.values())
        print(
            f"{time.strftime('%H:%M:%S')} {events} events each, {spent:.0f} CPU s: {json.dumps(rates)}",
            flush=True,
        )
        if spent >= args.cpu_budget:
            break
        events += args.step
    per_jet = sum(1 / r["jets_per_cpu_second"] for r in rates.values())
    out = {
        "samples": rates,
        "cpu_seconds_total": spent,
        "projected_cpu_hours_for_1e5_jets_per_sample": 1e5 * per_jet / 3600,
    }
    (RESULTS / "unfold_study_production.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="phase", required=True)
    p = sub.add_parser("produce")
    p.add_argument(
        "--cpu-budget", type=float, default=2700.0, help="CPU seconds of generation, both samples"
    )
    p.add_argument("--step", type=int, default=4000, help="events per sample added each round")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--cache", type=Path, default=CACHE)
    s = sub.add_parser("study")
    s.add_argument("--cache", type=Path, default=CACHE)
    s.add_argument(
        "--events", type=int, default=None, help="events per sample (default: all both have)"
    )
    s.add_argument("--iterations", type=int, default=4)
    s.add_argument("--ensembles", type=int, default=2)
    s.add_argument(
        "--bootstrap",
        type=int,
        default=4,
        help="Poisson bootstrap replicas (IBU, --bootstrap-methods)",
    )
    s.add_argument("--bootstrap-methods", nargs="*", default=["multifold"])
    s.add_argument(
        "--methods",
        nargs="*",
        default=["multifold", "omnifold_mlp", "omnifold_deepsets", "omnifold_transformer"],
    )
    s.add_argument(
        "--mlp-particles", type=int, default=30, help="hardest particles the particle MLP sees"
    )
    s.add_argument("--batch-size", type=int, default=512)
    s.add_argument(
        "--epochs",
        type=int,
        default=100,
        help="most epochs per step (early stopping ends most sooner)",
    )
    # smaller than the library's PointCloudTransformer (64, 2): on one CPU core the 252 000-event
    # study's transformer then takes about an hour
    s.add_argument("--transformer-dim", type=int, default=32)
    s.add_argument("--transformer-layers", type=int, default=1)
    s.add_argument(
        "--transformer-particles",
        type=int,
        default=30,
        help="hardest particles the transformer sees (its attention costs grow as their square)",
    )
    s.add_argument("--patience", type=int, default=4)
    s.add_argument(
        "--lr-drops",
        type=int,
        default=0,
        help="learning-rate drops by 10 on plateaus before stopping",
    )
    s.add_argument("--tag", default="", help="suffix of this run's method names")
    s.add_argument(
        "--name",
        default="unfold_study",
        help="results stem: benchmarks/results/NAME.{json,md} and NAME_<obs>.png "
        "(e.g. unfold_study_28k for the 28 000-event table)",
    )
    s.add_argument("--append", action="store_true", help="keep the methods already in NAME.json")
    s.add_argument("--package", action="store_true", help="also run the omnifold package (slow)")
    s.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    {"produce": produce, "study": study}[args.phase](args)


# --------------------------------------------------------------------------- the comparison


def _histogram(values, bins, weights=None):
    from offline.unfold.metrics import weighted_histogram

    return weighted_histogram(values, bins, weights)


def statistical_floor(
    truth: np.ndarray, bins: np.ndarray, splits: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Discriminator between two independent truth samples of ``len(truth)`` events each.

    Estimated from random halves of the one truth sample: the halves are independent
    samples of N/2 events, and the expected discriminator of pure fluctuations falls as
    1/N, so the N-event floor is half the halves' value. Mean and spread over ``splits``.
    """
    from offline.unfold.metrics import triangular_discriminator

    values = []
    for _ in range(splits):
        half = rng.permutation(len(truth)) < len(truth) // 2
        values.append(
            0.5
            * triangular_discriminator(
                _histogram(truth[half], bins), _histogram(truth[~half], bins)
            )
        )
    return float(np.mean(values)), float(np.std(values))


def _diagnostics(result) -> list[dict]:
    """Per iteration, the push weights' (step 2) ESS/N and largest weights, averaged over members."""
    rows = []
    for it in sorted({r.iteration for r in result.diagnostics}):
        for step in (1, 2):
            recs = [r for r in result.diagnostics if r.iteration == it and r.step == step]
            rows.append(
                {
                    "iteration": it,
                    "step": step,
                    "ess_fraction": float(np.mean([r.ess_fraction for r in recs])),
                    "max_weight": float(np.max([r.max_weight for r in recs])),
                    "largest": recs[0].largest,
                    "epochs": [r.epochs for r in recs],
                }
            )
    return rows


def study(args: argparse.Namespace) -> None:
    import torch

    from offline.unfold.examples import jet_problem
    from offline.unfold.metrics import triangular_discriminator
    from offline.unfold.omnifold import OmniFoldConfig, bootstrap, omnifold
    from offline.unfold.production import jets_per_cpu_second, produce_jets

    torch.set_num_threads(args.threads)
    events = args.events or _samples_done(args.cache)
    if events < TASK_EVENTS:
        raise SystemExit(f"no finished tasks in {args.cache}; run the produce phase first")
    samples = {
        c: produce_jets(events, c, seed, args.cache, task_events=TASK_EVENTS)
        for c, seed in (("simulation", SEED), ("vincia", SEED + 1))
    }
    problem = jet_problem("jets-vincia", samples["simulation"], samples["vincia"])
    f = problem.flags()
    pg, dg = f["pass_gen"], f["data_pass_gen"]
    truth_rows = problem.data_gen[dg]
    print(
        f"{events} events per sample: simulation {int(pg.sum())} gen jets / {int(f['pass_reco'].sum())} reco; "
        f"data {int(dg.sum())} gen / {int(f['data_pass_reco'].sum())} reco",
        flush=True,
    )

    def discriminators(weights: np.ndarray) -> dict[str, float]:
        return {
            obs: triangular_discriminator(
                _histogram(problem.sim_gen[pg, j], problem.bins[obs], weights[pg]),
                _histogram(truth_rows[:, j], problem.bins[obs]),
            )
            for j, obs in enumerate(problem.observables)
        }

    def bin_spread(replicas: np.ndarray) -> dict[str, list[float]]:
        """Per bin, the replicas' relative standard deviation of the normalised histogram."""
        out = {}
        for j, obs in enumerate(problem.observables):
            hists = np.stack(
                [_histogram(problem.sim_gen[pg, j], problem.bins[obs], w[pg]) for w in replicas]
            )
            hists = hists / hists.sum(axis=1, keepdims=True)
            mean = hists.mean(axis=0)
            out[obs] = (
                np.where(mean > 0, hists.std(axis=0) / np.where(mean > 0, mean, 1), 0.0)
                .round(5)
                .tolist()
            )
        return out

    rng = np.random.default_rng(5)
    floor = {
        obs: statistical_floor(truth_rows[:, j], problem.bins[obs], 20, rng)
        for j, obs in enumerate(problem.observables)
    }
    prior = np.ones(len(problem.sim_gen))
    methods: dict[str, dict] = {"prior": {"triangular_discriminator_x1e3": discriminators(prior)}}
    histograms: dict[str, np.ndarray] = {"prior": prior}

    # IBU per observable, and its Poisson bootstrap
    def ibu_all(data_weights=None) -> dict[str, np.ndarray]:
        return problem.ibu(args.iterations, data_weights=data_weights)

    def tri(hists):
        return {
            obs: triangular_discriminator(h, _histogram(truth_rows[:, j], problem.bins[obs]))
            for j, (obs, h) in enumerate(hists.items())
        }

    start = time.perf_counter()
    ibu_hists = ibu_all()
    boot = [
        ibu_all(np.random.default_rng(100 + r).poisson(1.0, len(problem.data_reco)))
        for r in range(args.bootstrap)
    ]
    methods["ibu"] = {
        "triangular_discriminator_x1e3": tri(ibu_hists),
        "bootstrap_spread": {
            obs: float(np.std([tri(b)[obs] for b in boot])) for obs in problem.observables
        },
        "bin_spread": {
            obs: (
                np.std([b[obs] / b[obs].sum() for b in boot], axis=0)
                / np.maximum(ibu_hists[obs] / ibu_hists[obs].sum(), 1e-12)
            )
            .round(5)
            .tolist()
            for obs in problem.observables
        },
        "seconds": time.perf_counter() - start,
    }
    print("ibu", methods["ibu"]["triangular_discriminator_x1e3"], flush=True)

    # the particle classifiers see the jet observables too (``with_event_features``; not
    # omnifold_deepsets_particles); the particle MLP gets them once, after the flattened
    # hardest particles
    particles = problem.omnifold_inputs(particles=True)
    bare = problem.omnifold_inputs(particles=True, event_features=False)
    observables = problem.omnifold_inputs()

    def hardest(inputs: dict, n: int) -> dict:
        # particles are stored hardest first
        return {k: v[:, :n] if k in FEATURES else v for k, v in inputs.items()}

    flat = {
        k: np.concatenate([v.reshape(len(v), -1), observables[k]], axis=1)
        for k, v in hardest(bare, args.mlp_particles).items()
        if k in FEATURES
    }

    runs = {
        "multifold": (problem.omnifold_inputs(), "mlp", {}),
        "omnifold_mlp": ({**particles, **flat}, "mlp", {}),
        "omnifold_deepsets": (particles, "deepsets", {}),
        # the particles alone: what the Deep Sets learns from the constituents themselves
        "omnifold_deepsets_particles": (bare, "deepsets", {}),
        "omnifold_transformer": (
            hardest(particles, args.transformer_particles),
            "transformer",
            {"dim": args.transformer_dim, "layers": args.transformer_layers},
        ),
    }
    if args.append:  # earlier runs' methods stay; this run adds variants (named with --tag)
        earlier = json.loads((RESULTS / f"{args.name}.json").read_text())
        if earlier["events"]["generated_per_sample"] != events:
            raise SystemExit(
                f"--append: {args.name}.json has {earlier['events']['generated_per_sample']} "
                f"events per sample, this run {events}"
            )
        methods = {
            **earlier["methods"],
            **{k: v for k, v in methods.items() if k not in earlier["methods"]},
        }
    for base in args.methods:
        inputs, classifier, options = runs[base]
        name = base + args.tag
        config = OmniFoldConfig(
            iterations=args.iterations,
            ensembles=args.ensembles,
            classifier=classifier,
            classifier_options=options,
            batch_size=args.batch_size,
            epochs=args.epochs,
            patience=args.patience,
            lr_drops=args.lr_drops,
            seed=1,
        )
        start = time.perf_counter()
        result = omnifold(**inputs, config=config, log=functools.partial(_log, name))
        record = {
            "triangular_discriminator_x1e3": discriminators(result.weights),
            "ensemble_members": args.ensembles,
            "classifier": classifier,
            "classifier_options": options,
            "particles_per_jet": int(inputs["sim_reco"].shape[1])
            if inputs["sim_reco"].ndim == 3
            else None,
            "epochs_cap": args.epochs,
            "patience": args.patience,
            "lr_drops": args.lr_drops,
            "batch_size": args.batch_size,
            "diagnostics": _diagnostics(result),
            "seconds": time.perf_counter() - start,
        }
        histograms[name] = result.weights
        if args.ensembles > 1:
            members = [discriminators(w) for w in result.member_weights]
            record["ensemble_spread"] = {
                obs: float(np.std([m[obs] for m in members])) for obs in problem.observables
            }
            record["bin_spread_ensemble"] = bin_spread(result.member_weights)
        if base in args.bootstrap_methods and args.bootstrap > 0:
            replicas = bootstrap(**inputs, replicas=args.bootstrap, config=replace_members(config))
            reps = [discriminators(w) for w in replicas]
            record["bootstrap_spread"] = {
                obs: float(np.std([r[obs] for r in reps])) for obs in problem.observables
            }
            record["bin_spread"] = bin_spread(replicas)
            record["seconds_with_bootstrap"] = time.perf_counter() - start
        methods[name] = record
        print(
            name,
            {k: round(v, 2) for k, v in record["triangular_discriminator_x1e3"].items()},
            f"{record['seconds']:.0f} s",
            flush=True,
        )
        _write(args, events, samples, problem, floor, methods, histograms, jets_per_cpu_second)

    if args.package:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_unfold import run_package

        weights, timing, note = run_package(problem, args.iterations, args.threads)
        if weights is None or timing is None:
            methods["omnifold_package"] = {"skipped": note}
        else:
            methods["omnifold_package"] = {
                "triangular_discriminator_x1e3": discriminators(weights),
                "seconds": timing.wall,
                "cpu_seconds": timing.cpu,
                "note": note,
            }
            histograms["omnifold_package"] = weights
        print("omnifold_package", methods["omnifold_package"], flush=True)
    _write(
        args,
        events,
        samples,
        problem,
        floor,
        methods,
        histograms,
        jets_per_cpu_second,
        binned={"ibu": ibu_hists},
        plots=not args.tag and not args.append,
    )  # variants and appended runs keep the main plots (they lack the other methods)


def replace_members(config):
    """Bootstrap replicas train one network each: the ensemble spread is measured apart."""
    from dataclasses import replace

    return replace(config, ensembles=1)


def _write(
    args,
    events,
    samples,
    problem,
    floor,
    methods,
    histograms,
    rate,
    binned=None,
    plots: bool = False,
) -> None:
    from offline.artifacts import write_json

    f = problem.flags()
    floor_mean = {obs: v[0] for obs, v in floor.items()}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}.json"
    if args.append and path.exists():  # another --append run may have added methods meanwhile
        methods = {**json.loads(path.read_text())["methods"], **methods}
    out = {
        "description": "Pythia 8.3 default shower (simulation) vs Vincia shower (data), leading anti-kT R=0.4 jet, "
        "pT > 150 GeV, |eta| < 2; detector model of offline/unfold/jets.py",
        "events": {
            "generated_per_sample": events,
            "simulation_gen_jets": int(f["pass_gen"].sum()),
            "simulation_reco_jets": int(f["pass_reco"].sum()),
            "data_gen_jets": int(f["data_pass_gen"].sum()),
            "data_reco_jets": int(f["data_pass_reco"].sum()),
        },
        "production": {
            c: {
                "events": len(s["gen"]),
                "gen_jets": int(s["pass_gen"].sum()),
                "cpu_seconds": float(s["cpu_seconds"].sum()),
                "jets_per_cpu_second": rate(s),
            }
            for c, s in samples.items()
        },
        "binning": {
            obs: [float(b[0]), float(b[-1]), len(b) - 1] for obs, b in problem.bins.items()
        },
        "iterations": args.iterations,
        "statistical_floor": floor_mean,
        "statistical_floor_spread": {obs: v[1] for obs, v in floor.items()},
        "triangular_discriminator_x1e3": {
            m: r["triangular_discriminator_x1e3"]
            for m, r in methods.items()
            if "triangular_discriminator_x1e3" in r
        },
        "methods": methods,
    }
    per_jet = sum(1 / p["jets_per_cpu_second"] for p in out["production"].values())
    out["production"]["projected_cpu_hours_for_1e5_jets_per_sample"] = 1e5 * per_jet / 3600
    write_json(path, out)
    (RESULTS / f"{args.name}.md").write_text(_table(out))
    if plots:
        _plots(args.name, problem, histograms, binned)


def _table(out: dict) -> str:
    obs = list(out["statistical_floor"])
    lines = [
        "Triangular discriminator ×10³ against the truth; ± is the Poisson-bootstrap spread where "
        "bootstrap replicas ran (`bootstrap_spread`), else the spread over ensemble members "
        "(`ensemble_spread`); ESS/N and the largest weight / mean of the final push weights.",
        "",
        "| method | " + " | ".join(obs) + " | ESS/N (last it.) | largest weight |",
        "| --- |" + " --- |" * (len(obs) + 2),
    ]
    for name, rec in out["methods"].items():
        if "triangular_discriminator_x1e3" not in rec:
            continue
        spread = rec.get("bootstrap_spread") or rec.get("ensemble_spread") or {}
        cells = [
            f"{rec['triangular_discriminator_x1e3'][o]:.2f}"
            + (f" ± {spread[o]:.2f}" if o in spread else "")
            for o in obs
        ]
        diag = rec.get("diagnostics")
        last = diag[-1] if diag else None
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + (
                f" | {last['ess_fraction']:.3f} | {last['max_weight']:.1f} |"
                if last
                else " | – | – |"
            )
        )
    floor = " | ".join(
        f"{out['statistical_floor'][o]:.2f} ± {out['statistical_floor_spread'][o]:.2f}" for o in obs
    )
    lines.append(f"| statistical floor | {floor} | – | – |")
    lines += [
        "",
        "Weights per iteration (step 1 pull / step 2 push): ESS/N, largest weight / mean",
        "",
        "| method | iteration | step 1 ESS/N | step 1 largest | step 2 ESS/N | step 2 largest | epochs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rec in out["methods"].items():
        rows = rec.get("diagnostics") or []
        for it in sorted({r["iteration"] for r in rows}):
            one, two = (
                next(r for r in rows if r["iteration"] == it and r["step"] == k) for k in (1, 2)
            )
            lines.append(
                f"| {name} | {it} | {one['ess_fraction']:.3f} | {one['max_weight']:.2f} | "
                f"{two['ess_fraction']:.3f} | {two['max_weight']:.2f} | {one['epochs']} / {two['epochs']} |"
            )
    return "\n".join(lines) + "\n"


def _plots(stem, problem, histograms, binned) -> None:
    from offline.unfold.plots import plot_unfolded

    f = problem.flags()
    pg, dg = f["pass_gen"], f["data_pass_gen"]
    for j, obs in enumerate(problem.observables):
        bins = problem.bins[obs]
        curves = {
            name: _histogram(problem.sim_gen[pg, j], bins, w[pg]) for name, w in histograms.items()
        }
        curves.update({name: hists[obs] for name, hists in binned.items()})
        plot_unfolded(
            RESULTS / f"{stem}_{obs}.png",
            bins,
            curves,
            _histogram(problem.data_gen[dg, j], bins),
            problem.labels[obs],
            title="Pythia default (simulation) → Vincia (data)",
        )


if __name__ == "__main__":
    main()
