"""The scale study (issue 13): ``l1ad run`` on ``configs/scale.yaml``, or on a fraction of it.

Usage: python benchmarks/scale_study.py [--config configs/scale.yaml]
           [--background-events N] [--signal-events M] [--set ad.batch_size=1000 ...]
           [--steps events ad] [--project-workers 16 64 256]

Runs the pipeline on the config with the sample sizes given (the config's own by default),
then writes ``benchmarks/results/scale_study.json`` and copies the report's figures (closure
against ε_B, ABCD plane, significance, ROC, training curves) to
``benchmarks/results/scale_study/``. The JSON states the sample sizes actually used and projects
the wall time of the full config's event production on N Dask workers from the CPU time per
accepted event that this run's production measured, process by process.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from l1ad.pipeline import resolve_config, run_pipeline
from offline.ad.disco import distance_correlation
from offline.ad.score import read_scores
from offline.events.defaults import DEFAULT_TASK_SIZE
from offline.events.processes import mixture_cpu_seconds_per_event

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = {
    "ad/evaluation/abcd_closure.png": "closure.png",
    "ad/evaluation/abcd_plane.png": "abcd_plane.png",
    "ad/evaluation/abcd_significance.png": "significance.png",
    "ad/evaluation/roc.png": "roc.png",
    "ad/model/loss.png": "training_curves.png",
}


def apply_setting(config: dict[str, Any], setting: str) -> None:
    """``step.key=value`` (value parsed as YAML) into the resolved config, keys checked."""
    key, sep, text = setting.partition("=")
    if not sep:
        raise SystemExit(f"--set {setting!r}: expected step.key=value")
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise SystemExit(f"--set {setting!r}: no section {part!r} in the config")
        node = node[part]
    if leaf not in node:
        raise SystemExit(f"--set {setting!r}: unknown key {leaf!r}")
    node[leaf] = yaml.safe_load(text)


def cpu_seconds_per_event(events_csv: Path) -> dict[str, float]:
    """CPU seconds per accepted event of each sample, as this run's production measured them
    (the background as the ADC2021 mixture of its components)."""
    table = pd.read_csv(events_csv)
    per_event = {}
    for sample, rows in table.groupby("sample"):
        rate = dict(zip(rows["process"], rows["events/s per core"], strict=True))
        if sample == "background":
            per_event[str(sample)] = mixture_cpu_seconds_per_event(
                {p: 1.0 / float(r) for p, r in rate.items()}
            )
        else:
            per_event[str(sample)] = 1.0 / float(rate[str(sample)])
    return per_event


def projected_production(
    per_event: dict[str, float], counts: dict[str, int], workers: list[int]
) -> dict[str, Any]:
    """Wall time of producing ``counts`` on N single-threaded Dask workers: the CPU time spread
    over the workers, plus one task's time for the last, unevenly filled round."""
    cpu = {s: counts[s] * per_event[s] for s in counts}
    total = sum(cpu.values())
    longest_task = max(DEFAULT_TASK_SIZE * t for t in per_event.values())
    return {
        "events": counts,
        "cpu_hours": {s: c / 3600 for s, c in cpu.items()} | {"total": total / 3600},
        "wall_hours_on_workers": {
            str(n): (total / n + longest_task) / 3600 for n in workers if n >= 1
        },
        "assumes": f"{DEFAULT_TASK_SIZE}-event tasks, one single-threaded worker per core, "
        "the per-event CPU time measured by this run's production",
    }


def background_provenance(config: dict[str, Any]) -> dict[str, Any] | None:
    """Where a given background file came from (``l1ad merge`` inputs, enrichment); None when the
    run generated its own."""
    from offline.events.io import read_metadata

    path = config["events"]["background_file"]
    if not path:
        return None
    meta = read_metadata(path)
    return {
        "file": Path(path).name,
        "merged_from": meta.get("merged_from"),
        "enrichment": meta.get("enrichment"),
        "label_counts": meta.get("label_counts"),
    }


def training_split_closure(
    model_dir: Path, eps_b: list[float], min_events: int
) -> list[dict[str, float]]:
    """Closure pulls of the trained pair on its own training split. Near zero everywhere when the
    penalty fit that sample's fluctuations (which the test split then shows as non-closure); as
    far from zero as on the test split where the non-closure is systematic, e.g. at a cut between
    the penalty's grid points."""
    from offline.ad.abcd import abcd_scan
    from offline.ad.workflow import held_out_scores

    split = json.loads((model_dir / "split.json").read_text())
    scores = held_out_scores(
        model_dir, split["background"], split["seed"], split["fractions"], part="train"
    )
    scan = abcd_scan(
        scores.r1, scores.r2, scores.weights, None, tuple(eps_b), min_events=min_events
    )
    return scan[scan["pull"].notna()][["eps_b", "pull"]].to_dict(orient="records")


def dcor_of_logs(scores_file: Path) -> float:
    """dCor(log R1, log R2) on held-out background: the ABCD regions depend only on the order of
    each score, and the logarithm keeps a few events with huge errors from setting dCor."""
    scores = read_scores(scores_file)
    tiny = np.finfo(np.float64).tiny
    return distance_correlation(
        np.log(np.maximum(scores.r1, tiny)), np.log(np.maximum(scores.r2, tiny)), scores.weights
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "scale.yaml"))
    parser.add_argument("--background-events", type=int)
    parser.add_argument("--signal-events", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE")
    parser.add_argument("--name", default="scale")
    parser.add_argument(
        "--tag", default="", help="results go to scale_study_TAG.json and scale_study_TAG/"
    )
    parser.add_argument(
        "--steps", nargs="+", help="only these pipeline steps (e.g. events ad); default: all"
    )
    parser.add_argument("--project-workers", type=int, nargs="+", default=[1, 16, 64, 256])
    args = parser.parse_args()

    full = resolve_config(args.config)
    config = json.loads(json.dumps(full))
    if args.background_events:
        config["events"]["background_events"] = args.background_events
    if args.signal_events:
        config["events"]["signal_events"] = args.signal_events
    for setting in args.set:
        apply_setting(config, setting)
    config["name"] = args.name

    run_dir = run_pipeline(config, steps=args.steps)
    summary = json.loads((run_dir / "summary.json").read_text())
    scan = pd.read_csv(run_dir / "ad" / "evaluation" / "abcd_scan.csv")
    closure = scan[(scan["sample"] == "background") & scan["pull"].notna()]

    full_counts = {"background": full["events"]["background_events"]} | {
        s: full["events"]["signal_events"] for s in full["events"]["signals"]
    }
    per_event = cpu_seconds_per_event(run_dir / "events" / "events.csv")
    counts = summary["events"]["counts"]
    result = {
        "config": str(Path(args.config).resolve().relative_to(ROOT)),
        "settings_changed": {
            "background_events": config["events"]["background_events"],
            "signal_events": config["events"]["signal_events"],
            "set": args.set,
        },
        "background_events": counts["background"],
        "background_provenance": background_provenance(config),
        "signal_events": {s: n for s, n in counts.items() if s != "background"},
        "test_background_events": round(counts["background"] * config["ad"]["split"][2]),
        "dcor_background": summary["ad"]["dcor_background"],
        "dcor_background_sigma": summary["ad"]["dcor_background_sigma"],
        "dcor_background_log_scores": dcor_of_logs(
            run_dir / "ad" / "scores" / "background_test.h5"
        ),
        "auc": summary["ad"]["auc"],
        "max_abs_closure_pull": summary["abcd"]["max_abs_closure_pull"],
        "min_eps_b": float(closure["eps_b"].min()) if len(closure) else None,
        "closure": closure[["eps_b", "pull"]].to_dict(orient="records"),
        # χ² of the correlated pulls and the largest pull's global p-value (look-elsewhere)
        "closure_consistency": summary["abcd"].get("closure_consistency"),
        "closure_training_split": training_split_closure(
            run_dir / "ad" / "model", config["ad"]["eps_b"], config["ad"]["min_region_events"]
        ),
        "rates": summary["rates"],
        "significance": summary["abcd"]["significance"],
        "injection": config["ad"]["injection"],
        "statistically_limited": summary["statistically_limited"],
        "steps": args.steps or "all",
        "firmware": {
            k: summary["firmware"].get(k) for k in ("latency_ns", "luts", "csim_mismatches")
        }
        if "firmware" in summary
        else None,
        "emulation": summary.get("emulation"),
        "run_seconds": summary["seconds"],
        "projected_full_production": projected_production(
            per_event, full_counts, args.project_workers
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"scale_study_{args.tag}" if args.tag else "scale_study"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    figures = RESULTS / stem
    figures.mkdir(exist_ok=True)
    for source, target in FIGURES.items():
        if (run_dir / source).exists():
            shutil.copyfile(run_dir / source, figures / target)
    hours = result["projected_full_production"]["wall_hours_on_workers"]
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "background_events",
                    "dcor_background",
                    "max_abs_closure_pull",
                    "min_eps_b",
                )
            }
        )
    )
    print(
        "full production: " + ", ".join(f"{h:.1f} h on {n}" for n, h in hours.items()) + " workers"
    )


if __name__ == "__main__":
    main()
