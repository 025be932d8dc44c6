"""OmniFold here (torch) against the reference ``omnifold`` package (TensorFlow), same inputs.

    python benchmarks/bench_unfold.py [--example gaussian|jets|both] [--events N] [--iterations K]

Prints, per example, the triangular discriminator ×10³ against the truth (per observable)
and the wall time of each implementation, and the time ratio ours / package (goal ≤ 0.5 at
an equal or better discriminator). IBU and the prior are listed for scale. The package is
not a dependency: install it with ``pip install --no-deps omnifold==0.1.36``; without it the
comparison is skipped with a message. Both run on the same number of CPU threads
(``--threads``), since the machines here are shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

# torch.optim imports torch._dynamo lazily (seconds); import it up front, as TF is
import torch._dynamo

from offline.artifacts import write_json
from offline.unfold import (
    EXAMPLES,
    OmniFoldConfig,
    metric_table,
    omnifold,
)
from offline.unfold.omnifold import default_device


def run_package(
    problem, iterations: int, threads: int, batch_size: int = 128
) -> tuple[np.ndarray | None, float, str]:
    """The reference package's MultiFold on the problem's arrays; (weights, seconds, note)."""
    try:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import omnifold as of
    except ImportError as err:
        return (
            None,
            float("nan"),
            f"omnifold package not installed ({err}); pip install --no-deps omnifold==0.1.36",
        )
    inputs = problem.omnifold_inputs()
    nfeat = inputs["sim_reco"].shape[1]
    mc = of.DataLoader(
        reco=inputs["sim_reco"],
        gen=inputs["sim_gen"],
        pass_reco=inputs["pass_reco"],
        pass_gen=inputs["pass_gen"],
        normalize=True,
    )
    data = of.DataLoader(
        reco=inputs["data_reco"], pass_reco=inputs["data_pass_reco"], normalize=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with keras.saving.custom_object_scope(
            {"weighted_binary_crossentropy": of.net.weighted_binary_crossentropy}
        ):
            unfold = of.MultiFold(
                "bench",
                of.MLP(nfeat),
                of.MLP(nfeat),
                data,
                mc,
                weights_folder=f"{tmp}/weights",
                log_folder=tmp,
                niter=iterations,
                batch_size=batch_size,
            )
            unfold.Unfold()
        seconds = time.perf_counter() - start
    note = f"package MLP 64-128-64 GELU, batch {batch_size}, lr 1e-4, early stop 10"
    return mc.weight * unfold.weights_push, seconds, note


def bench(
    name: str,
    events: int,
    iterations: int,
    threads: int,
    config: OmniFoldConfig,
    package_batch: int,
    seeds: int = 1,
) -> dict:
    kwargs = {"cache_dir": "cache", "progress": True} if name.startswith("jets") else {}
    problem = EXAMPLES[name](events, seed=3, **kwargs)
    print(
        f"\n=== {name}: {len(problem.sim_reco)} simulated, {len(problem.data_reco)} data events, "
        f"{iterations} iterations, {threads} thread(s) ==="
    )
    start = time.perf_counter()
    ours = omnifold(**problem.omnifold_inputs(), config=config)
    ours_s = time.perf_counter() - start
    weights = {"omnifold (l1ad, torch)": ours.weights}
    # the training seed alone moves the discriminator: more seeds give its spread
    for seed in range(1, seeds):
        again = omnifold(**problem.omnifold_inputs(), config=replace(config, seed=seed))
        weights[f"omnifold (l1ad, torch), seed {seed}"] = again.weights
    pkg, pkg_s, note = run_package(problem, iterations, threads, package_batch)
    if pkg is not None:
        weights["omnifold package (TF)"] = pkg
    table = metric_table(problem, weights, iterations)
    print("triangular discriminator ×10³ against the truth:")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    record = {
        "example": name,
        "classifier_seeds": seeds,
        "simulated_events": len(problem.sim_reco),
        "data_events": len(problem.data_reco),
        "iterations": iterations,
        "threads": threads,
        "triangular_discriminator_x1e3": {col: table[col].to_dict() for col in table.columns},
        "seconds": {"ours": ours_s, "package": None if pkg is None else pkg_s},
        "package": note,
    }
    if seeds > 1:
        ours_cols = [c for c in table.columns if c.startswith("omnifold (l1ad")]
        spread = table[ours_cols].mean(axis=0)
        record["seed_spread_of_mean_discriminator"] = {
            "mean": float(spread.mean()),
            "std": float(spread.std(ddof=1)),
        }
        print(f"over {seeds} classifier seeds: {spread.mean():.2f} ± {spread.std(ddof=1):.2f}")
    print(f"wall time: ours {ours_s:.1f} s (seed 0)", end="")
    if pkg is None:
        print(f"\nomnifold package skipped: {note}")
        return record
    ours_mean = table["omnifold (l1ad, torch)"].mean()
    pkg_mean = table["omnifold package (TF)"].mean()
    record["time_ratio"] = ours_s / pkg_s
    record["mean_discriminator"] = {"ours": ours_mean, "package": pkg_mean}
    print(f", package {pkg_s:.1f} s ({note})")
    print(
        f"time ratio ours/package: {ours_s / pkg_s:.3f} (goal <= 0.5); "
        f"mean discriminator ours {ours_mean:.2f} vs package {pkg_mean:.2f} "
        f"({'equal or better' if ours_mean <= pkg_mean * 1.1 else 'worse'}, 10 % tolerance)"
    )
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", choices=["gaussian", "jets", "both"], default="gaussian")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--package-batch-size", type=int, default=128, help="the package's default is 128"
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="classifier seeds for ours (their spread)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = []
    names = ["gaussian", "jets"] if args.example == "both" else [args.example]
    for name in names:
        # same classifier as the package (MLP 64-128-64, GELU); large batches, early stopping
        config = OmniFoldConfig(iterations=args.iterations, batch_size=2048)
        records.append(
            bench(
                name,
                args.events,
                args.iterations,
                args.threads,
                config,
                args.package_batch_size,
                args.seeds,
            )
        )
    out = args.out or Path(__file__).parent / "results" / f"bench_unfold_{args.example}.json"
    write_json(out, {"torch": torch.__version__, "device": str(default_device()), "runs": records})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
