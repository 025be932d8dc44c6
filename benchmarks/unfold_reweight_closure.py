"""Reweighting closure on Pythia jets: do the particle classifiers move the weights?

    nice python benchmarks/unfold_reweight_closure.py [--events 16000] [--alpha 0.15]

The simulation sample (Pythia's default shower, ``production.produce_jets``, cached under
``--cache``) is split in halves: one is the simulation, the other the pseudo-data,
reweighted at particle level by the known function exp(α·(ŵ − τ̂₂₁)) of the standardised
jet width and τ₂₁. The truth is that half's particle level with those weights, so the
answer is known and the only differences are the ones put in. Compared: the prior, the
oracle (the true weights on the simulation: what is left is the two halves' statistical
difference), IBU per observable, MultiFold (MLP on the six observables) and OmniFold with
Deep Sets on the particles alone and on the particles carrying the jet observables
(``with_event_features``), optionally the transformer. Writes the triangular
discriminator ×10³ per observable and the step weights' ESS/N to
``benchmarks/results/unfold_reweight_closure.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offline.artifacts import write_json
from offline.unfold.examples import jet_problem
from offline.unfold.metrics import triangular_discriminator, weighted_histogram
from offline.unfold.omnifold import OmniFoldConfig, omnifold
from offline.unfold.production import produce_jets

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=16_000, help="simulated events in all")
    parser.add_argument("--alpha", type=float, default=0.15, help="strength of the reweighting")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument(
        "--methods",
        nargs="*",
        default=["multifold", "deepsets_particles_only", "deepsets"],
        help="also: transformer_particles_only, transformer",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "unfold_reweight_closure.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    sample = produce_jets(args.events, "simulation", 0, args.cache, progress=True)
    n = len(sample["gen"])
    half = np.random.default_rng(0).random(n) < 0.5
    per_event = {k: v for k, v in sample.items() if np.ndim(v) and len(v) == n}
    problem = jet_problem(
        "closure",
        {k: v[half] for k, v in per_event.items()},
        {k: v[~half] for k, v in per_event.items()},
    )
    f = problem.flags()
    pg, dg = f["pass_gen"], f["data_pass_gen"]
    obs = problem.observables
    reference = problem.data_gen[dg]

    def true_weights(gen: np.ndarray) -> np.ndarray:
        z = {o: (gen[:, obs.index(o)] - reference[:, obs.index(o)].mean()) for o in obs}
        z = {o: z[o] / reference[:, obs.index(o)].std() for o in obs}
        return np.exp(args.alpha * (z["width"] - z["tau21"]))

    data_w = np.where(dg, true_weights(problem.data_gen), 1.0)
    data_w /= data_w.mean()
    problem.data_weights = data_w
    truth = {
        o: weighted_histogram(reference[:, j], problem.bins[o], data_w[dg])
        for j, o in enumerate(obs)
    }

    def discriminators(weights: np.ndarray) -> dict[str, float]:
        return {
            o: triangular_discriminator(
                weighted_histogram(problem.sim_gen[pg, j], problem.bins[o], weights[pg]), truth[o]
            )
            for j, o in enumerate(obs)
        }

    methods: dict[str, dict] = {
        "prior": {"triangular_discriminator_x1e3": discriminators(np.ones(len(pg)))},
        "oracle": {"triangular_discriminator_x1e3": discriminators(true_weights(problem.sim_gen))},
    }
    unfolded = problem.ibu(args.iterations, data_weights=data_w)
    methods["ibu"] = {
        "triangular_discriminator_x1e3": {
            o: triangular_discriminator(unfolded[o], truth[o]) for o in obs
        }
    }
    runs = {
        "multifold": ("mlp", problem.omnifold_inputs()),
        "deepsets_particles_only": (
            "deepsets",
            problem.omnifold_inputs(particles=True, event_features=False),
        ),
        "deepsets": ("deepsets", problem.omnifold_inputs(particles=True)),
        "transformer_particles_only": (
            "transformer",
            problem.omnifold_inputs(particles=True, event_features=False),
        ),
        "transformer": ("transformer", problem.omnifold_inputs(particles=True)),
    }

    def show(name: str) -> None:
        values = methods[name]["triangular_discriminator_x1e3"]
        print(f"{name:28s}", " ".join(f"{o} {values[o]:6.2f}" for o in obs), flush=True)

    for name in methods:
        show(name)
    for name in args.methods:
        classifier, inputs = runs[name]
        config = OmniFoldConfig(
            iterations=args.iterations, classifier=classifier, batch_size=512, seed=1
        )
        start = time.perf_counter()
        result = omnifold(**inputs, config=config)
        methods[name] = {
            "triangular_discriminator_x1e3": discriminators(result.weights),
            "ess_fraction": [
                {"iteration": r.iteration, "step": r.step, "ess_fraction": r.ess_fraction}
                for r in result.diagnostics
            ],
            "epochs": [r.epochs for r in result.diagnostics],
            "seconds": time.perf_counter() - start,
        }
        show(name)
    write_json(
        args.out,
        {
            "events": {
                "generated": n,
                "simulation_gen_jets": int(pg.sum()),
                "data_gen_jets": int(dg.sum()),
            },
            "alpha": args.alpha,
            "iterations": args.iterations,
            "threads": args.threads,
            "methods": methods,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
