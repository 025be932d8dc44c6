"""Same physics: weighted two-sample tests between the v1 and the current generator's background.

Usage:
  python benchmarks/validate_generator.py produce [--events 20000] [--chunk 1000] [--dir DIR] [--reverse]
  python benchmarks/validate_generator.py compare [--dir DIR]

``produce`` generates the background mixture with both generators, in chunks of
``--chunk`` events alternating old/new (so that a stopped run leaves both samples
of similar size), with independent seeds (old: 10000 + k, new: 20000 + k); a
rerun skips finished chunks. ``compare`` reads every finished chunk, histograms
each observable with the event weights (QCD carries its p-hat-T weights) and
runs a weighted chi-square two-sample test per observable (normalised
histograms, variance from the sum of squared weights; Gagunashvili,
NIM A 614 (2010) 287), plus a weighted Kolmogorov-Smirnov distance with the
Kish effective sample sizes. Writes ``benchmarks/results/validate_generator.json``
and ``validate_generator.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from offline.events import read_events, write_events
from offline.events.generate import generate
from offline.events.io import effective_events

RESULTS = Path(__file__).resolve().parent / "results"
SEED_BASE = {"old": 10_000, "new": 20_000}


def produce(directory: Path, events: int, chunk: int, reverse: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    chunks = range(-(-events // chunk))
    for k in reversed(chunks) if reverse else chunks:
        for name in ("old", "new"):
            path = directory / f"{name}_{k:04d}.h5"
            if path.exists():
                continue
            result = generate(
                "background",
                chunk,
                SEED_BASE[name] + k,
                workers=1,
                progress=False,
                baseline=name == "old",
            )
            write_events(path, result.events, result.metadata)
            print(f"{path.name}: {len(result.events)} events", flush=True)


def observables(particles: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event observables: MET, leading object pT/eta/phi, multiplicities, leading lepton pT."""
    out = {"MET": particles[:, 0, 0], "MET phi": particles[:, 0, 2]}
    for obj, rows in (("e/gamma", slice(1, 5)), ("muon", slice(5, 9)), ("jet", slice(9, 19))):
        block = particles[:, rows]
        present = block[:, 0, 0] > 0
        out[f"{obj} multiplicity"] = (block[:, :, 0] > 0).sum(axis=1).astype(np.float64)
        for col, what in ((0, "pT"), (1, "eta"), (2, "phi")):
            values = block[:, 0, col].astype(np.float64).copy()
            values[~present] = np.nan  # only events that have the object
            out[f"leading {obj} {what}"] = values
    out["leading lepton pT"] = particles[:, 1:9, 0].max(axis=1)
    out["HT (jets)"] = particles[:, 9:19, 0].sum(axis=1)
    return out


def _bins(name: str, a: np.ndarray, b: np.ndarray, n_bins: int = 25) -> np.ndarray:
    """Integer bins for multiplicities (the tail above 20 pooled events merged), else equal-population bins,
    so that every bin holds enough events for the chi-square approximation."""
    pooled = np.concatenate([a, b])
    if name.endswith("multiplicity"):
        values, counts = np.unique(pooled, return_counts=True)
        top = values[counts >= 20].max()
        return np.append(np.arange(-0.5, top + 0.5), pooled.max() + 0.5)
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)))
    edges[-1] += 1e-6 * max(1.0, abs(edges[-1]))
    return edges


def weighted_chi2(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray, bins: np.ndarray):
    """Chi-square two-sample test of weighted histograms (Gagunashvili's test for normalised histograms)."""
    ha, _ = np.histogram(a, bins, weights=wa)
    hb, _ = np.histogram(b, bins, weights=wb)
    va, _ = np.histogram(a, bins, weights=wa**2)
    vb, _ = np.histogram(b, bins, weights=wb**2)
    na, nb = wa.sum(), wb.sum()
    var = va / na**2 + vb / nb**2
    used = var > 0
    chi2 = float((((ha / na - hb / nb) ** 2)[used] / var[used]).sum())
    ndf = int(used.sum()) - 1
    return (
        chi2,
        ndf,
        float(stats.chi2.sf(chi2, ndf)),
        (ha / na, hb / nb, np.sqrt(va) / na, np.sqrt(vb) / nb),
    )


def weighted_ks(
    a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray
) -> tuple[float, float]:
    """Weighted KS distance, p-value from the Kish effective sizes (approximate for weighted samples)."""
    grid = np.sort(np.concatenate([a, b]))
    cdf = [
        np.cumsum(w[np.argsort(x)])[np.searchsorted(np.sort(x), grid, side="right") - 1] / w.sum()
        for x, w in ((a, wa), (b, wb))
    ]
    below = [np.searchsorted(np.sort(x), grid, side="right") == 0 for x in (a, b)]
    cdf = [np.where(bl, 0.0, c) for c, bl in zip(cdf, below, strict=True)]
    d = float(np.abs(cdf[0] - cdf[1]).max())
    ne = [effective_events(w) for w in (wa, wb)]
    n = ne[0] * ne[1] / (ne[0] + ne[1])
    return d, float(stats.kstwo.sf(d, max(round(n), 1)))


def compare(directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    samples = {}
    for name in ("old", "new"):
        blocks = [read_events(p) for p in sorted(directory.glob(f"{name}_*.h5"))]
        particles = np.concatenate([b.particles for b in blocks])
        weights = np.concatenate([b.event_weights for b in blocks])
        samples[name] = (observables(particles), weights, len(blocks))
    (obs_old, w_old, chunks_old), (obs_new, w_new, chunks_new) = samples["old"], samples["new"]
    tests = {}
    plt.style.use(mplhep.style.CMS)
    names = list(obs_old)
    cols = 4
    fig, axes = plt.subplots(
        -(-len(names) // cols), cols, figsize=(6 * cols, 4.5 * -(-len(names) // cols))
    )
    for ax, name in zip(axes.flat, names, strict=False):
        a, b = obs_old[name], obs_new[name]
        ma, mb = ~np.isnan(a), ~np.isnan(b)
        bins = _bins(name, a[ma], b[mb])
        chi2, ndf, p, (ha, hb, _, eb) = weighted_chi2(a[ma], w_old[ma], b[mb], w_new[mb], bins)
        d, p_ks = weighted_ks(a[ma], w_old[ma], b[mb], w_new[mb])
        tests[name] = {
            "chi2": chi2,
            "ndf": ndf,
            "p_chi2": p,
            "ks_distance": d,
            "p_ks": p_ks,
            "events_old": int(ma.sum()),
            "events_new": int(mb.sum()),
        }
        centres, widths = 0.5 * (bins[1:] + bins[:-1]), np.diff(bins)
        ax.stairs(ha / widths, bins, label="v1 (old)", color="k")
        ax.errorbar(
            centres, hb / widths, eb / widths, fmt="o", ms=3, color="C3", label="current (new)"
        )
        ax.set_xlabel(name, fontsize=14)
        ax.set_ylabel("fraction / unit", fontsize=12)
        if name.split()[-1] in ("pT", "MET", "(jets)"):
            ax.set_yscale("log")
        ax.text(
            0.03,
            0.95,
            f"$\\chi^2$/ndf = {chi2:.1f}/{ndf}, p = {p:.2f}\nKS p = {p_ks:.2f}",
            transform=ax.transAxes,
            va="top",
            fontsize=11,
        )
        ax.legend(fontsize=10, loc="upper right")
    # power: the same test on the new sample with a 3 % pT scale shift (a typical miscalibration) must fail
    power = {}
    for name in ("MET", "leading jet pT", "leading e/gamma pT"):
        a, b = obs_old[name], obs_new[name] * 1.03
        ma, mb = ~np.isnan(a), ~np.isnan(b)
        power[name] = weighted_chi2(a[ma], w_old[ma], b[mb], w_new[mb], _bins(name, a[ma], b[mb]))[
            2
        ]
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    n_old, n_new = len(w_old), len(w_new)
    fig.suptitle(
        f"background mixture, weighted: v1 {n_old} events vs current {n_new} events", fontsize=18
    )
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / "validate_generator.png", dpi=80)
    p_values = [t["p_chi2"] for t in tests.values()]
    summary = {
        "events_old": n_old,
        "events_new": n_new,
        "chunks_old": chunks_old,
        "chunks_new": chunks_new,
        "effective_events_old": effective_events(w_old),
        "effective_events_new": effective_events(w_new),
        "observables": tests,
        "power_check_p_chi2_new_pt_scaled_by_1.03": power,
        "min_p_chi2": min(p_values),
        # the smallest of k p-values under the null is below 0.01 with probability 1 - 0.99^k
        "observables_tested": len(p_values),
        "fisher_combined_p_chi2_if_independent": float(stats.combine_pvalues(p_values)[1]),
        "test": "weighted chi-square on normalised histograms (equal-population bins; multiplicity tails merged); "
        "weighted KS with Kish effective sizes",
    }
    (RESULTS / "validate_generator.json").write_text(json.dumps(summary, indent=1) + "\n")
    for name, t in tests.items():
        print(
            f"{name:24s} chi2/ndf {t['chi2']:6.1f}/{t['ndf']:2d}  p {t['p_chi2']:.3f}  KS p {t['p_ks']:.3f}"
        )
    print(
        f"{n_old} old vs {n_new} new events; wrote {RESULTS / 'validate_generator.json'} and the PNG"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("produce", "compare"))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("validation_events"))
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="produce the last chunks first (a second producer on the same --dir)",
    )
    args = parser.parse_args()
    if args.what == "produce":
        produce(args.dir, args.events, args.chunk, args.reverse)
    else:
        compare(args.dir)


if __name__ == "__main__":
    main()
