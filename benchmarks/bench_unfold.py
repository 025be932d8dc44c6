"""OmniFold here (torch) against the reference ``omnifold`` package (TensorFlow), same inputs.

    python benchmarks/bench_unfold.py [--example gaussian|jets|both] [--events N] [--iterations K]

Runs both on the same events in one process and prints, per observable, the triangular
discriminator ×10³ against the truth, the CPU seconds of each implementation (and the wall
time), and the ratio ours / package. Targets: CPU time ≤ 0.5× the package's at a
discriminator at most the package's on every observable. IBU and the prior are listed for
scale. The package is a benchmark-only dependency: ``pip install -e '.[bench]'`` (or
``pip install omnifold==0.1.36``); without it the comparison is skipped with that message.
Both run on ``--threads`` CPU threads (default 1), since the machines here are shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib import metadata
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

PACKAGE_HINT = "pip install -e '.[bench]' (or pip install omnifold==0.1.36)"
OURS = "omnifold (l1ad, torch)"
PACKAGE = "omnifold package (TF)"
TIME_RATIO_TARGET = 0.5  # ours / the package's CPU time (issue 17, item 5)


def targets_met(time_ratio: float, at_most: dict[str, bool]) -> dict[str, bool]:
    """Item 5's targets: the time ratio, and ours at most the package's on every observable."""
    return {"time": time_ratio <= TIME_RATIO_TARGET, "discriminator": all(at_most.values())}


@dataclass
class Timing:
    """Wall and process CPU seconds (all threads of this process) of one run."""

    wall: float
    cpu: float


class _Stopwatch:
    def __enter__(self) -> _Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timing = Timing(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def run_package(
    problem, iterations: int, threads: int, batch_size: int = 128, seed: int | None = None
) -> tuple[np.ndarray | None, Timing | None, str]:
    """The reference package's MultiFold on the problem's arrays; (weights, timing, note).

    ``seed`` seeds Keras (Python, NumPy and TF generators) first; None leaves them as they are.
    """
    try:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import omnifold as of
        import tensorflow as tf
    except ImportError as err:
        return None, None, f"omnifold package not installed ({err}); {PACKAGE_HINT}"
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TF already ran something in this process (a test session): its pools stay
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = problem.omnifold_inputs()
    nfeat = inputs["sim_reco"].shape[1]
    with tempfile.TemporaryDirectory() as tmp, _Stopwatch() as clock:
        # the data loaders' normalisation is part of the package's run
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
            try:
                unfold.Unfold()
            finally:
                unfold.log_file.close()  # the package leaves its log open
    note = (
        f"omnifold {metadata.version('omnifold')}: MLP 64-128-64 "
        f"GELU, batch {batch_size}, lr 1e-4, up to 50 epochs, early stop 10, 1 ensemble"
    )
    return mc.weight * unfold.weights_push, clock.timing, note


def bench(
    name: str,
    events: int,
    threads: int,
    config: OmniFoldConfig,
    package_batch: int,
    seeds: int = 1,
    package: bool = True,
    toy: int = 3,
) -> dict:
    kwargs = {"cache_dir": "cache", "progress": True} if name.startswith("jets") else {}
    problem = EXAMPLES[name](events, seed=toy, **kwargs)
    iterations = config.iterations
    print(
        f"\n=== {name}: {len(problem.sim_reco)} simulated, {len(problem.data_reco)} data events, "
        f"{iterations} iterations, {threads} thread(s) ==="
    )
    with _Stopwatch() as clock:
        ours = omnifold(**problem.omnifold_inputs(), config=config)
    ours_t = clock.timing
    weights = {OURS: ours.weights}
    # the training seed alone moves the discriminator: more seeds give its spread
    for seed in range(1, seeds):
        again = omnifold(**problem.omnifold_inputs(), config=replace(config, seed=seed))
        weights[f"{OURS}, seed {seed}"] = again.weights
    pkg, pkg_t, note = (
        run_package(problem, iterations, threads, package_batch)
        if package
        else (None, None, "not run (--skip-package)")
    )
    if pkg is not None:
        weights[PACKAGE] = pkg
    table = metric_table(problem, weights, iterations)
    print("triangular discriminator ×10³ against the truth:")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    record = {
        "example": name,
        "toy_seed": toy,
        "classifier_seeds": seeds,
        "simulated_events": len(problem.sim_reco),
        "data_events": len(problem.data_reco),
        "iterations": iterations,
        "threads": {"ours": threads, "package": threads},
        "ours": {
            k: v for k, v in asdict(config).items() if k not in ("classifier_options", "device")
        },
        "triangular_discriminator_x1e3": {col: table[col].to_dict() for col in table.columns},
        "seconds": {"ours": ours_t.wall, "package": None if pkg_t is None else pkg_t.wall},
        "cpu_seconds": {"ours": ours_t.cpu, "package": None if pkg_t is None else pkg_t.cpu},
        "package": note,
    }
    if seeds > 1:
        ours_cols = [c for c in table.columns if c.startswith(OURS)]
        spread = table[ours_cols].mean(axis=0)
        record["seed_spread_of_mean_discriminator"] = {
            "mean": float(spread.mean()),
            "std": float(spread.std(ddof=1)),
        }
        print(f"over {seeds} classifier seeds: {spread.mean():.2f} ± {spread.std(ddof=1):.2f}")
    print(f"ours: {ours_t.cpu:.1f} CPU s, {ours_t.wall:.1f} s wall (seed 0)")
    if pkg_t is None:
        print(f"omnifold package skipped: {note}")
        return record
    print(f"package: {pkg_t.cpu:.1f} CPU s, {pkg_t.wall:.1f} s wall ({note})")
    cpu_ratio, wall_ratio = ours_t.cpu / pkg_t.cpu, ours_t.wall / pkg_t.wall
    at_most = {obs: bool(table.loc[obs, OURS] <= table.loc[obs, PACKAGE]) for obs in table.index}
    record["time_ratio"] = cpu_ratio  # CPU seconds, same thread count on both sides
    record["wall_time_ratio"] = wall_ratio
    record["ours_at_most_package"] = at_most
    record["mean_discriminator"] = {
        "ours": float(table[OURS].mean()),
        "package": float(table[PACKAGE].mean()),
    }
    record["targets_met"] = targets_met(cpu_ratio, at_most)
    worse = [
        f"{obs} {table.loc[obs, OURS]:.2f} vs {table.loc[obs, PACKAGE]:.2f}"
        for obs, ok in at_most.items()
        if not ok
    ]
    print(
        f"time ratio ours/package: {cpu_ratio:.3f} CPU ({wall_ratio:.3f} wall; goal <= {TIME_RATIO_TARGET}); "
        f"discriminator at most the package's on every observable: "
        f"{'yes' if not worse else 'no (' + ', '.join(worse) + ')'}"
    )
    return record


def over_toys(records: list[dict]) -> dict:
    """One record from runs on independent samples (``--toys``): per observable the mean
    discriminator and its standard error over the samples, the paired difference ours −
    package with its standard error, summed CPU times; targets on the means.

    At 5·10⁴ events the discriminator moves by ~0.3 from sample to sample, more than the
    methods differ, so one sample cannot say which is closer to the truth.
    """
    columns = [OURS, PACKAGE, "ibu", "prior"]
    observables = list(records[0]["triangular_discriminator_x1e3"][OURS])

    def mean_sem(values: list[float]) -> tuple[float, float]:
        a = np.asarray(values)
        return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))

    table = {
        col: {
            obs: mean_sem([r["triangular_discriminator_x1e3"][col][obs] for r in records])
            for obs in observables
        }
        for col in columns
    }
    difference = {
        obs: mean_sem(
            [
                r["triangular_discriminator_x1e3"][OURS][obs]
                - r["triangular_discriminator_x1e3"][PACKAGE][obs]
                for r in records
            ]
        )
        for obs in observables
    }
    cpu = {k: sum(r["cpu_seconds"][k] for r in records) for k in ("ours", "package")}
    at_most = {obs: table[OURS][obs][0] <= table[PACKAGE][obs][0] for obs in observables}
    ratio = cpu["ours"] / cpu["package"]
    for obs in observables:
        print(
            f"{obs} over {len(records)} samples: ours {table[OURS][obs][0]:.3f} ± {table[OURS][obs][1]:.3f}, "
            f"package {table[PACKAGE][obs][0]:.3f} ± {table[PACKAGE][obs][1]:.3f}, "
            f"IBU {table['ibu'][obs][0]:.3f}; ours − package {difference[obs][0]:+.3f} ± {difference[obs][1]:.3f}"
        )
    print(f"time ratio ours/package: {ratio:.3f} CPU over {len(records)} samples")
    return {
        "example": records[0]["example"],
        "toy_seeds": [r["toy_seed"] for r in records],
        "simulated_events": [r["simulated_events"] for r in records],
        "data_events": [r["data_events"] for r in records],
        "iterations": records[0]["iterations"],
        "threads": records[0]["threads"],
        "ours": records[0]["ours"],
        "package": records[0]["package"],
        "triangular_discriminator_x1e3": {
            col: {obs: v[0] for obs, v in by_obs.items()} for col, by_obs in table.items()
        },
        "triangular_discriminator_sem": {
            col: {obs: v[1] for obs, v in by_obs.items()} for col, by_obs in table.items()
        },
        "ours_minus_package": {obs: {"mean": m, "sem": e} for obs, (m, e) in difference.items()},
        "cpu_seconds": cpu,
        "time_ratio": ratio,
        "ours_at_most_package": at_most,
        "targets_met": targets_met(ratio, at_most),
        "per_sample": records,
    }


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
    parser.add_argument(
        "--toys",
        type=int,
        default=1,
        help="independent samples (seeds --toy-seed, --toy-seed + 1, ...), both methods on "
        "each; the targets then compare the means over samples",
    )
    parser.add_argument("--toy-seed", type=int, default=3, help="the (first) sample's seed")
    parser.add_argument("--ensembles", type=int, default=1, help="ours: independent runs averaged")
    parser.add_argument("--patience", type=int, default=OmniFoldConfig.patience)
    parser.add_argument("--lr-drops", type=int, default=OmniFoldConfig.lr_drops)
    parser.add_argument("--learning-rate", type=float, default=OmniFoldConfig.learning_rate)
    parser.add_argument("--epochs", type=int, default=OmniFoldConfig.epochs)
    parser.add_argument(
        "--skip-package", action="store_true", help="ours only (to try settings quickly)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args()
    if args.toys < 1:
        parser.error(f"--toys must be >= 1, got {args.toys}")
    if args.toys > 1 and args.skip_package:
        parser.error("--toys > 1 compares with the package; drop --skip-package")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    records = []
    names = ["gaussian", "jets"] if args.example == "both" else [args.example]
    for name in names:
        # same classifier as the package (MLP 64-128-64, GELU); large batches, early stopping
        config = OmniFoldConfig(
            iterations=args.iterations,
            batch_size=2048,
            ensembles=args.ensembles,
            patience=args.patience,
            epochs=args.epochs,
            lr_drops=args.lr_drops,
            learning_rate=args.learning_rate,
        )
        runs = [
            bench(
                name,
                args.events,
                args.threads,
                config,
                args.package_batch_size,
                args.seeds,
                package=not args.skip_package,
                toy=args.toy_seed + toy,
            )
            for toy in range(args.toys)
        ]
        records.append(runs[0] if args.toys == 1 else over_toys(runs))
    out = args.out or Path(__file__).parent / "results" / f"bench_unfold_{args.example}.json"
    write_json(
        out,
        {
            "torch": torch.__version__,
            "device": str(default_device()),
            "flags": " ".join(sys.argv[1:]),
            "runs": records,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
