"""How often a perfectly closed ABCD gives a scan like the scale study's: factorised toys.

Usage: python benchmarks/closure_null_toys.py [--study benchmarks/results/scale_study.json]
           [--toys 1000]

The closure pulls of one scan are correlated (nested regions), so "the largest of eight pulls
is 2.06" has no N(0, 1) reading. Runs keep that reading in ``closure_consistency`` (a bootstrap
of their own scores); a study whose scores are gone keeps only its pulls. For those, this
script draws toys with R1 and R2 independent, of the study's test size, and scans them at the
study's ε_B points: the regions are set by quantiles, so with unit weights the pulls' law is the
same for any pair of continuous independent scores. (The study's weighted sample would give
slightly different correlations; the figures are for unit weights.) Points a unit-weight toy
cannot resolve (a region under 20 events) are left out. Writes
``benchmarks/results/closure_null_toys.json`` and ``closure_null_toys.png``: the chance that
the largest |pull| reaches the study's, that it exceeds 2, and the χ² of the study's pulls with
the toys' correlations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep
import numpy as np
from scipy import stats
from tqdm import tqdm

from offline.ad import abcd_scan
from offline.ad.defaults import DEFAULT_MIN_REGION_EVENTS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def null_pulls(events: int, eps_b: tuple[float, ...], toys: int, seed: int = 0) -> np.ndarray:
    """(toys, points) closure pulls of independent uniform scores (NaN where unresolved)."""
    rng = np.random.default_rng(seed)
    return np.array(
        [
            abcd_scan(
                rng.random(events),
                rng.random(events),
                None,
                eps_b=eps_b,
                min_events=DEFAULT_MIN_REGION_EVENTS,
            )["pull"].to_numpy()
            for _ in tqdm(range(toys), desc="toys")
        ]
    )


def study_figures(
    study: dict[str, Any], toys: np.ndarray, eps_b: tuple[float, ...]
) -> tuple[dict[str, Any], np.ndarray]:
    """The study's pulls against the toys at the points both resolve, and the toys' largest
    |pull| there."""
    observed = dict(zip(eps_b, [np.nan] * len(eps_b), strict=True)) | {
        float(p["eps_b"]): float(p["pull"]) for p in study["closure"]
    }
    pulls = np.array([observed[e] for e in eps_b])
    kept = np.isfinite(toys).all(axis=0) & np.isfinite(pulls)
    toys, pulls = toys[:, kept], pulls[kept]
    largest = float(np.abs(pulls).max())
    toy_largest = np.abs(toys).max(axis=1)
    correlation = np.corrcoef(toys, rowvar=False)
    chi2 = float(pulls @ np.linalg.solve(correlation, pulls))
    figures = {
        "test_background_events": int(study["test_background_events"]),
        "eps_b": [e for e, k in zip(eps_b, kept, strict=True) if k],
        "observed_pulls": pulls.tolist(),
        "max_abs_pull": largest,
        "p_max_abs_pull_at_least_observed": float((toy_largest >= largest).mean()),
        "p_max_abs_pull_above_2": float((toy_largest > 2).mean()),
        "toy_pull_std": toys.std(axis=0).tolist(),
        "correlation": correlation.tolist(),
        "chi2": chi2,
        "ndof": len(pulls),
        "chi2_p_value": float(stats.chi2.sf(chi2, len(pulls))),
    }
    return figures, toy_largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="+", default=[str(RESULTS / "scale_study.json")])
    parser.add_argument("--toys", type=int, default=1000)
    args = parser.parse_args()

    studies = {Path(p).stem: json.loads(Path(p).read_text()) for p in args.studies}
    # one set of toys per test size, scanned at every ε_B any study of that size resolved
    points: dict[int, set[float]] = {}
    for study in studies.values():
        points.setdefault(int(study["test_background_events"]), set()).update(
            float(p["eps_b"]) for p in study["closure"]
        )
    toys = {
        n: (tuple(sorted(eps)), null_pulls(n, tuple(sorted(eps)), args.toys))
        for n, eps in points.items()
    }
    results: dict[str, Any] = {}
    nulls: dict[tuple[int, tuple[float, ...]], np.ndarray] = {}  # per design actually compared
    for name, study in studies.items():
        events = int(study["test_background_events"])
        eps_b, pulls = toys[events]
        results[name], toy_largest = study_figures(study, pulls, eps_b)
        nulls[(events, tuple(results[name]["eps_b"]))] = toy_largest
    out = {"toys": args.toys, "min_region_events": DEFAULT_MIN_REGION_EVENTS, "studies": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "closure_null_toys.json").write_text(json.dumps(out, indent=1) + "\n")

    plt.style.use(mplhep.style.ROOT)
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, ((events, compared), toy_largest) in enumerate(nulls.items()):
        ax.hist(
            toy_largest,
            bins=40,
            histtype="step",
            color=f"C{i}",
            label=f"{args.toys} factorised toys: {events} events, {len(compared)} ε_B points "
            f"{min(compared):g}–{max(compared):g}",
        )
    for j, (name, r) in enumerate(results.items()):
        ax.axvline(
            r["max_abs_pull"],
            color=f"C{j + len(nulls)}",
            label=f"{name}: {r['max_abs_pull']:.2f} "
            f"(global p = {r['p_max_abs_pull_at_least_observed']:.2f})",
        )
    ax.axvline(2, color="k", linestyle="--", label="|pull| = 2")
    ax.set_xlabel("largest |closure pull| over the scan's ε_B points")
    ax.set_ylabel("toys")
    ax.legend(fontsize=10, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.savefig(RESULTS / "closure_null_toys.png", dpi=120, bbox_inches="tight")
    for name, r in results.items():
        print(
            name,
            json.dumps(
                {
                    k: r[k]
                    for k in (
                        "max_abs_pull",
                        "p_max_abs_pull_at_least_observed",
                        "p_max_abs_pull_above_2",
                        "chi2",
                        "ndof",
                        "chi2_p_value",
                    )
                }
            ),
        )


if __name__ == "__main__":
    main()
