"""DisCo alone against DisCo + the ABCD non-closure penalty (ABCDisCoTEC), side by side.

Each setting trains one autoencoder pair on the training split of a background file
(:func:`offline.ad.workflow.train_from_file`, split ``--split``, 0.6/0.2/0.2 by default, seeded
by ``--seed``), scores
the held-out test background and every signal file, and records:

- ``dcor_background``: dCor(R1, R2) on the held-out background, with its Poisson-bootstrap σ,
  the same for log R, and each with R2 shuffled against R1 (the floor of independent scores
  with these marginals and weights on this many events);
- the ABCD closure scan over ε_B from 10⁻⁴ to 5·10⁻² (:func:`offline.ad.abcd.abcd_scan`,
  pulls only where every region holds ``--min-region-events``), its max |pull| and the
  smallest ε_B it resolves;
- the AUC per signal (combined score, as the ``ad`` stage reports it);
- training time and epochs.

Results are merged into ``--out`` keyed by background file and setting, so samples and settings
can be run one at a time; ``--plot`` redraws the pull-vs-ε_B figure and the Markdown table from
the JSON. One CPU thread (the machine is shared)::

    nice python benchmarks/abcd_closure_comparison.py --background BKG.h5 --signals-dir DIR \\
        --setting disco_l1000_b1000 --setting closure_l1000_b1000_c1000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
OUT_JSON = RESULTS / "abcd_closure_comparison.json"
NOTES = "<!-- findings: kept when the tables are rewritten -->"
EPS_B = tuple(float(v) for v in np.geomspace(1e-4, 5e-2, 16))
DEFAULT_SPLIT = (0.6, 0.2, 0.2)
DCOR_REPLICAS = 5  # Poisson-bootstrap replicas of each O(N²) dCor (8 s each on 2·10⁴ events)
DCOR_TARGET, PULL_TARGET = 0.05, 2.0  # issue 13, item 4
SHUFFLES = 2  # R2 permutations of the independence floor
SETTING = re.compile(r"^(disco|closure)_l(?P<lam>[\d.e+]+)_b(?P<batch>\d+)(_c(?P<clam>[\d.e+]+))?$")


def parse_setting(name: str) -> dict[str, Any]:
    """``disco_l1000_b1000`` (λ, batch) or ``closure_l1000_b1000_c300`` (λ, batch, closure_lam)."""
    m = SETTING.match(name)
    if m is None or (name.startswith("closure") != (m["clam"] is not None)):
        raise ValueError(
            f"--setting {name!r}: expected disco_l<λ>_b<batch> or closure_l<λ>_b<batch>_c<closure_lam>"
        )
    return {
        "lam": float(m["lam"]),
        "batch_size": int(m["batch"]),
        "closure_lam": float(m["clam"] or 0.0),
    }


def _efficiency_suffix(efficiencies: tuple[float, ...]) -> str:
    """``_e0.002`` for a closure grid reaching per-axis efficiency 0.002 ("" for the default grid)."""
    return f"_e{min(efficiencies):g}" if efficiencies else ""


def run_setting(
    background: Path,
    signals: dict[str, Path],
    name: str,
    epochs: int,
    patience: int,
    seed: int,
    min_region_events: int,
    work: Path,
    reuse: bool = False,
    fractions: tuple[float, float, float] = DEFAULT_SPLIT,
    eps_b: tuple[float, ...] = EPS_B,
    train_background: Path | None = None,
    closure_efficiencies: tuple[float, ...] = (),
) -> dict[str, Any]:
    from offline.ad.abcd import abcd_scan, max_abs_closure_pull, region_masks, thresholds
    from offline.ad.disco import distance_correlation
    from offline.ad.metrics import auc, combined_score
    from offline.ad.rates import bootstrap_sigma
    from offline.ad.score import score_events
    from offline.ad.train import TrainConfig, load_pair
    from offline.ad.workflow import (
        PREPROCESSING_FILE,
        held_out_scores,
        load_background,
        train_from_file,
    )
    from offline.events.io import read_events
    from offline.events.schema import PROCESSES
    from offline.preprocess import Preprocessing

    settings = parse_setting(name)
    if closure_efficiencies:
        settings["closure_efficiencies"] = closure_efficiencies
    config = TrainConfig(
        epochs=epochs, patience=patience, seed=seed, device="cpu", progress=False, **settings
    )
    out = work / (name if seed == 1234 else f"{name}_s{seed}")
    if train_background is not None:
        out = out.with_name(out.name + "_uw")
    out = out.with_name(out.name + _efficiency_suffix(closure_efficiencies))
    if reuse and (out / "metrics.json").exists():  # a finished training of this setting
        done = json.loads((out / "metrics.json").read_text())
        epochs_run, best_epoch, seconds = done["epochs_run"], done["best_epoch"], done["seconds"]
    else:
        t0 = time.perf_counter()
        training = train_from_file(train_background or background, out, config, fractions)
        seconds = time.perf_counter() - t0
        epochs_run, best_epoch = training.epochs_run, training.best_epoch
    bkg = held_out_scores(out, background, seed, fractions)
    model, pre = load_pair(out), Preprocessing.load(out / PREPROCESSING_FILE)
    sb = combined_score(bkg.r1, bkg.r2, bkg.r1, bkg.r2, bkg.weights)
    aucs = {}
    for sig_name, path in signals.items():
        s = score_events(model, pre, read_events(path))
        ss = combined_score(s.r1, s.r2, bkg.r1, bkg.r2, bkg.weights)
        aucs[sig_name] = auc(sb, ss, bkg.weights, s.weights)
    scan = abcd_scan(bkg.r1, bkg.r2, bkg.weights, None, eps_b, min_events=min_region_events)
    log1, log2 = np.log(bkg.r1), np.log(bkg.r2)
    # which background processes fill each region: a mixture of processes that each score high
    # on a different autoencoder correlates R1 and R2 even where each process alone would close
    events, split = load_background(background, seed, fractions)
    labels = events[split.test].labels
    if labels is None:
        raise ValueError(f"{background}: no truth labels, needed to split the regions by process")
    by_process = {}
    for eps in eps_b:
        masks = region_masks(bkg.r1, bkg.r2, *thresholds(bkg.r1, bkg.r2, bkg.weights, eps))
        by_process[f"{eps:g}"] = {
            region: {
                PROCESSES[k]: round(float(bkg.weights[m & (labels == k)].sum()), 2)
                for k in np.unique(labels)
            }
            for region, m in masks.items()
        }
    usable = scan[scan["pull"].notna()]
    return {
        **settings,
        "epochs": epochs,
        "patience": patience,
        "seed": seed,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "train_seconds": seconds,
        "background_test_events": len(bkg),
        "dcor_background": distance_correlation(bkg.r1, bkg.r2, bkg.weights),
        "dcor_background_sigma": bootstrap_sigma(
            lambda w: distance_correlation(bkg.r1, bkg.r2, w), [bkg.weights], DCOR_REPLICAS
        ),
        # ABCD regions depend only on the ranks; dCor of raw R is dominated by a handful of
        # events with R ~ 10⁴ × the median (both autoencoders fail on them), dCor of log R is not
        "dcor_log_background": distance_correlation(log1, log2, bkg.weights),
        "dcor_log_background_sigma": bootstrap_sigma(
            lambda w: distance_correlation(log1, log2, w), [bkg.weights], DCOR_REPLICAS
        ),
        "dcor_log_shuffled": float(
            np.mean(
                [
                    distance_correlation(
                        np.log(bkg.r1),
                        np.log(np.random.default_rng(k).permutation(bkg.r2)),
                        bkg.weights,
                    )
                    for k in range(SHUFFLES)
                ]
            )
        ),
        # the same scores with R2 shuffled against R1: the dCor of independent scores with these
        # marginals on this many events (the floor the measured dCor cannot go below)
        "dcor_shuffled": float(
            np.mean(
                [
                    distance_correlation(
                        bkg.r1, np.random.default_rng(k).permutation(bkg.r2), bkg.weights
                    )
                    for k in range(SHUFFLES)
                ]
            )
        ),
        "max_abs_closure_pull": max_abs_closure_pull(scan),
        "min_eps_b_resolved": float(usable["eps_b"].min()) if len(usable) else None,
        "closure_scan": [
            {
                "eps_b": float(r.eps_b),
                "n_a": float(r.n_a),
                "predicted": float(r.predicted),
                "predicted_sigma": float(r.predicted_sigma),
                "pull": None if np.isnan(r.pull) else float(r.pull),
                "min_region_events": float(r.min_region_events),
            }
            for r in scan.itertuples()
        ],
        "auc": aucs,
        "weighted_regions_by_process": by_process,
    }


def plot(results: dict[str, Any], path: Path) -> None:
    """Closure pull vs ε_B per setting (seed 1234 only), one panel per background sample."""
    from matplotlib import colormaps

    from offline.plotting import new_figure, save_figure

    samples = list(results["samples"])
    fig, axes = new_figure(1, len(samples), figsize=(11 * len(samples), 10), squeeze=False)
    for ax, sample in zip(axes[0], samples, strict=True):
        entry = results["samples"][sample]
        shown = {name: r for name, r in entry["settings"].items() if r.get("seed", 1234) == 1234}
        cmap = colormaps["tab10" if len(shown) <= 10 else "tab20"]
        colors = [cmap(i) for i in range(len(shown))]
        for (name, r), color in zip(shown.items(), colors, strict=False):
            pts = [(p["eps_b"], p["pull"]) for p in r["closure_scan"] if p["pull"] is not None]
            if not pts:
                continue
            e, p = zip(*pts, strict=True)
            style = "o--" if r["closure_lam"] > 0 else "s-"
            ax.plot(e, p, style, color=color, label=f"{name}: dCor {r['dcor_background']:.3f}")
        ax.axhspan(-2, 2, color="grey", alpha=0.2)
        ax.axhline(0, color="black", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(8e-5, 6e-2)
        ax.set_ylim(-6, 6)
        ax.set_xlabel("background efficiency $\\varepsilon_B$")
        ax.set_ylabel("closure pull on held-out background")
        ax.set_title(
            f"{entry['background_events']} bkg events ({entry['test_events']} test)", fontsize=18
        )
        ax.legend(fontsize=13, loc="lower left", ncol=2)
    save_figure(fig, path)


def markdown(results: dict[str, Any], source: str = OUT_JSON.name) -> str:
    lines = [
        "# DisCo alone vs DisCo + ABCD non-closure penalty (ABCDisCoTEC)",
        "",
        f"Written by `benchmarks/abcd_closure_comparison.py` from `{source}`.",
        "Pulls only where every ABCD region holds ≥ "
        f"{results['min_region_events']} effective held-out events; ε_B grid {min(results['eps_b']):g} … "
        f"{max(results['eps_b']):g} ({len(results['eps_b'])} points). dCor ± its Poisson-bootstrap σ "
        "(a fixed subsample of 20 000 test events); 'shuffled': R2 permuted against R1, the value "
        "independent scores give on this sample.",
        "",
    ]
    for sample, entry in results["samples"].items():
        sigs = sorted({s for r in entry["settings"].values() for s in r["auc"]})
        lines += [
            f"## {sample}: {entry['background_events']} background events "
            f"(train {entry['train_events']}, test {entry['test_events']})",
            "",
            "| setting | λ | batch | closure_lam | epochs run | dCor | dCor shuffled | dCor(log R) | shuffled | max pull | "
            "min ε_B resolved | " + " | ".join(f"AUC {s}" for s in sigs) + " | train s | "
            "misses the targets (dCor ≤ 0.05, max pull ≤ 2) by |",
            "|" + "---|" * (13 + len(sigs)),
        ]
        for name, r in entry["settings"].items():
            pull = r["max_abs_closure_pull"]
            eps = r["min_eps_b_resolved"]
            lines.append(
                f"| {name} | {r['lam']:g} | {r['batch_size']} | {r['closure_lam']:g} | "
                f"{r['epochs_run']} | {_pm(r, 'dcor_background')} | {r.get('dcor_shuffled', float('nan')):.3f} | "
                f"{_pm(r, 'dcor_log_background')} | "
                f"{r.get('dcor_log_shuffled', float('nan')):.3f} | "
                f"{'—' if pull is None else f'{pull:.2f}'} | {'—' if eps is None else f'{eps:.2g}'} | "
                + " | ".join(f"{r['auc'].get(s, float('nan')):.3f}" for s in sigs)
                + f" | {r['train_seconds']:.0f} | {_miss(r)} |"
            )
        lines += ["", *_across_seeds(entry["settings"], sigs), ""]
    return "\n".join(lines)


def _miss(r: dict[str, Any]) -> str:
    """How far a setting is from dCor(R1, R2) ≤ 0.05 and max |closure pull| ≤ 2 ('meets' if not)."""
    misses = []
    if r["dcor_background"] > DCOR_TARGET:
        misses.append(f"dCor +{r['dcor_background'] - DCOR_TARGET:.3f}")
    pull = r["max_abs_closure_pull"]
    if pull is None:
        misses.append("no pull resolved")
    elif pull > PULL_TARGET:
        misses.append(f"pull +{pull - PULL_TARGET:.1f}")
    return ", ".join(misses) or "meets"


def _pm(r: dict[str, Any], key: str) -> str:
    sigma = r.get(f"{key}_sigma")
    return f"{r[key]:.3f}" + ("" if sigma is None else f" ± {sigma:.3f}")


def _seed_groups(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, r in settings.items():
        base = name if r.get("seed", 1234) == 1234 else name.rsplit("_s", 1)[0]
        groups.setdefault(base, []).append(r)
    return groups


def _across_seeds(settings: dict[str, Any], sigs: list[str]) -> list[str]:
    """Mean (± standard error) over the seeds (splits) of every setting run with more than one."""
    if all(len(runs) < 2 for runs in _seed_groups(settings).values()):
        return []
    lines = [
        "Across seeds (each seed its own split, so its own 1/5 of the file as test sample):",
        "",
        "| setting | seeds | dCor median | dCor range | dCor(log R) mean ± se | max pull mean | "
        "seeds with max pull ≤ 2 | " + " | ".join(f"AUC {s}" for s in sigs) + " |",
        "|" + "---|" * (7 + len(sigs)),
    ]
    for base, runs in _seed_groups(settings).items():
        if len(runs) < 2:
            continue
        dcor = np.array([r["dcor_background"] for r in runs])
        log = np.array([r["dcor_log_background"] for r in runs])
        pulls = np.array([r["max_abs_closure_pull"] for r in runs], dtype=float)
        lines.append(
            f"| {base} | {len(runs)} | {np.median(dcor):.3f} | {dcor.min():.3f}–{dcor.max():.3f} | "
            f"{log.mean():.3f} ± {log.std(ddof=1) / np.sqrt(len(runs)):.3f} | "
            f"{np.nanmean(pulls):.2f} | {int((pulls <= 2).sum())}/{len(runs)} | "
            + " | ".join(f"{np.mean([r['auc'][s] for r in runs]):.3f}" for s in sigs)
            + " |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--background", type=Path)
    parser.add_argument(
        "--signals-dir", type=Path, help="signal files NAME_n*.h5 are taken from here"
    )
    parser.add_argument("--signal", action="append", default=[], help="signal names (default: all)")
    parser.add_argument("--setting", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--min-region-events", type=int, default=20)
    parser.add_argument(
        "--split", type=float, nargs=3, default=list(DEFAULT_SPLIT), help="train/validation/test"
    )
    parser.add_argument(
        "--eps-b", type=float, nargs="+", default=list(EPS_B), help="the closure scan's ε_B"
    )
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    parser.add_argument("--work", type=Path, help="checkpoint directory (default: temporary)")
    parser.add_argument("--plot", action="store_true", help="only redraw the figure and table")
    parser.add_argument(
        "--merge", type=Path, action="append", default=[], help="add the runs of another --out file"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="evaluate finished trainings found in --work again"
    )
    parser.add_argument(
        "--unit-training-weights",
        action="store_true",
        help="train on the events with unit weights (the p̂T-biased QCD tail at full weight; "
        "settings get the suffix _uw); evaluate with the file's weights",
    )
    parser.add_argument(
        "--closure-efficiencies",
        type=float,
        nargs="+",
        default=[],
        help="per-axis efficiencies of the closure penalty's cuts (default: the library's; "
        "settings get the suffix _e<smallest>)",
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    results: dict[str, Any] = (
        json.loads(args.out.read_text())
        if args.out.exists()
        else {"min_region_events": args.min_region_events, "eps_b": args.eps_b, "samples": {}}
    )
    for other in args.merge:  # runs made in parallel into separate files
        for sample, entry in json.loads(other.read_text())["samples"].items():
            mine = results["samples"].setdefault(sample, {**entry, "settings": {}})
            mine["settings"].update(entry["settings"])
            mine["test_events"] = entry["test_events"]
    if args.merge:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    if not args.plot:
        from offline.events.io import event_count

        if args.background is None or args.signals_dir is None:
            parser.error("--background and --signals-dir are needed to train")
        signals = {
            p.name.split("_n")[0]: p
            for p in sorted(args.signals_dir.glob("*_n*_seed*.h5"))
            if not p.name.startswith("background")
            and (not args.signal or p.name.split("_n")[0] in args.signal)
        }
        n = event_count(args.background)
        fractions = tuple(args.split)
        sample = args.background.name
        if fractions != DEFAULT_SPLIT:
            sample += " split " + "/".join(f"{f:g}" for f in fractions)
        entry = results["samples"].setdefault(
            sample,
            {
                "background_events": n,
                "split": list(fractions),
                "train_events": round(fractions[0] * n),
                "test_events": None,
                "signal_events": {},
                "settings": {},
            },
        )
        entry["signal_events"] = {k: event_count(p) for k, p in signals.items()}
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            unit = None
            if args.unit_training_weights:  # same events, same split, weights 1
                from offline.events.io import read_events, read_metadata, write_events

                events = read_events(args.background)
                unit = write_events(
                    Path(tmp) / "unit_weights.h5",
                    dataclasses.replace(events, weights=np.ones(len(events))),
                    read_metadata(args.background),
                )
            for name in args.setting:
                print(f"{sample}: {name}", flush=True)
                r = run_setting(
                    args.background,
                    signals,
                    name,
                    args.epochs,
                    args.patience,
                    args.seed,
                    args.min_region_events,
                    work,
                    args.reuse,
                    fractions,
                    tuple(args.eps_b),
                    unit,
                    tuple(args.closure_efficiencies),
                )
                entry["test_events"] = r["background_test_events"]
                key = name if args.seed == 1234 else f"{name}_s{args.seed}"
                key += ("_uw" if unit else "") + _efficiency_suffix(
                    tuple(args.closure_efficiencies)
                )
                entry["settings"][key] = {**r, "seed": args.seed}
                print(
                    f"  dCor {r['dcor_background']:.4f}, max |pull| {r['max_abs_closure_pull']}, "
                    f"AUC {', '.join(f'{k} {v:.3f}' for k, v in r['auc'].items())}, "
                    f"{r['epochs_run']} epochs in {r['train_seconds']:.0f} s",
                    flush=True,
                )
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out.with_name(args.out.stem + "_pull.png"))
    md = args.out.with_suffix(".md")
    notes = md.read_text().partition(NOTES)[2] if md.exists() else ""  # hand-written findings
    md.write_text(markdown(results, args.out.name) + (NOTES + notes if notes else ""))


if __name__ == "__main__":
    main()
