"""Physics of the firmware-sized autoencoders before and after the latency-margin change.

Trains the ``ad`` step (``offline.ad.stage.train_and_evaluate`` with the pipeline's default
settings, ``l1ad.steps.ad.DEFAULTS``) once per architecture and seed on the same cached event
files, and tabulates per-signal AUC, trigger efficiency at the working rate, dCor(R1, R2) on the
held-out background and the ABCD max |closure pull|. The architectures are 57-32-16-4 (the
firmware preset until the 40 ns margin, 55 ns estimated) and 57-16-4 (40 ns estimated;
``benchmarks/results/firmware_margin.json``). Float training: the quantized model follows the
float one in the pipeline. Writes ``benchmarks/results/firmware_margin_physics.{json,md}``.

    nice python benchmarks/firmware_margin_physics.py --events /work/main/cache/events [--seeds 1234]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from firmware.cost import da4ml_latency
from firmware.example import default_model
from l1ad.steps.ad import DEFAULTS
from offline.ad.model import PRESETS, AEConfig
from offline.ad.stage import Evaluation, train_and_evaluate
from offline.ad.train import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
# the firmware preset until the 40 ns margin, then the one-hidden-layer choices that meet 40 ns
ARCHITECTURES = {
    "57-32-16-4": AEConfig(hidden=(32, 16), latent=4, bias=True),
    "57-16-4": AEConfig(hidden=(16,), latent=4, bias=True),
    "57-32-4": AEConfig(hidden=(32,), latent=4, bias=True),
    "57-16-8": AEConfig(hidden=(16,), latent=8, bias=True),
}
CLOCK_NS = 5.0
SIGNALS = ("Ato4l", "hChToTauNu", "hToTauTau", "leptoquark")


def _one_file(events: Path, prefix: str) -> Path:
    found = sorted(events.glob(f"{prefix}_n*.h5"))
    if len(found) != 1:
        raise SystemExit(f"error: {events}: expected one {prefix}_n*.h5, found {len(found)}")
    return found[0]


def train_one(
    background: Path, signals: dict[str, Path], arch: str, seed: int, work: Path
) -> dict[str, Any]:
    name = f"margin-study-{arch}"
    PRESETS[name] = ARCHITECTURES[
        arch
    ]  # a named preset in this process only: TrainConfig takes names
    config = TrainConfig(preset=name, lam=float(DEFAULTS["lam"]), epochs=int(DEFAULTS["epochs"]),
                         batch_size=int(DEFAULTS["batch_size"]), lr=float(DEFAULTS["lr"]),
                         patience=int(DEFAULTS["patience"]), seed=seed, device="cpu", progress=False)  # fmt: skip
    evaluation = Evaluation(
        eps_b=tuple(DEFAULTS["eps_b"]),
        working_eps_b=float(DEFAULTS["working_eps_b"]),
        injection=float(DEFAULTS["injection"]),
        min_region_events=int(DEFAULTS["min_region_events"]),
        rate_khz=float(DEFAULTS["rate_khz"]),
        rates_khz=tuple(float(r) for r in DEFAULTS["rates_khz"]),
        bootstrap=int(DEFAULTS["bootstrap"]),
    )
    start = time.perf_counter()
    result = train_and_evaluate(background, signals, work / f"{arch}_{seed}", config,
                                tuple(DEFAULTS["split"]), evaluation)  # fmt: skip
    s = result.summary
    return {
        "architecture": arch,
        "widths": list(ARCHITECTURES[arch].widths),
        "seed": seed,
        "epochs_run": result.training.epochs_run,
        "best_epoch": result.training.best_epoch,
        "train_seconds": round(time.perf_counter() - start, 1),
        "auc": s["ad"]["auc"],
        "tpr_at_rate": s["ad"]["tpr_at_rate"],
        "rate_khz": s["ad"]["rate_khz"],
        "dcor_background": s["ad"]["dcor_background"],
        "max_abs_closure_pull": s["abcd"]["max_abs_closure_pull"],
        "background_test_events": s["ad"]["background_test_events"],
    }


def _values(rows: list[dict[str, Any]], key: str, signal: str | None) -> np.ndarray:
    return np.array(
        [np.nan if (v := r[key][signal] if signal else r[key]) is None else v for r in rows]
    )


def _figures(report: dict[str, Any]) -> list[tuple[str, str, str | None, int]]:
    """(label, key, signal, decimals) of every row of the table."""
    sigs = report["signals"]
    return ([(f"AUC {s}", "auc", s, 3) for s in sigs]
            + [(f"TPR {s} at {report['runs'][0]['rate_khz']:g} kHz", "tpr_at_rate", s, 3) for s in sigs]
            + [("dCor(R1, R2) held-out background", "dcor_background", None, 3),
               ("max abs ABCD closure pull", "max_abs_closure_pull", None, 2)])  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    """Mean ± s.d. over seeds per architecture, and the new default minus the old one, paired by seed
    (mean ± standard error)."""
    rows, seeds = report["runs"], report["seeds"]
    old, new = "57-32-16-4", "57-16-4"
    archs = [a for a in ARCHITECTURES if any(r["architecture"] == a for r in rows)]
    by_arch = {
        a: sorted((r for r in rows if r["architecture"] == a), key=lambda r: r["seed"])
        for a in archs
    }
    lines = [
        "# Firmware margin: physics of the autoencoder choices",
        "",
        f"`ad` step (`offline.ad.stage.train_and_evaluate`), default settings (λ = {report['settings']['lam']:g}, "
        f"{report['settings']['epochs']} epochs, patience {report['settings']['patience']}), float training, "
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); background {report['background_events']} events "
        f"(held-out test {rows[0]['background_test_events']}), signals "
        f"{', '.join(f'{k} {v}' for k, v in report['signal_events'].items())} events. Mean ± s.d. over "
        f"seeds (each seed in the JSON); last column: {new} − {old} paired by seed, mean ± s.e.",
        "",
        "| figure | " + " | ".join(archs) + f" | {new} − {old} |",
        "|---|" + "---|" * (len(archs) + 1),
    ]  # fmt: skip
    for label, key, sig, d in _figures(report):
        cells = []
        for a in archs:
            v = _values(by_arch[a], key, sig)
            cells.append(
                f"{np.nanmean(v):.{d}f} ± {np.nanstd(v, ddof=1) if len(v) > 1 else 0:.{d}f}"
            )
        diff = _values(by_arch[new], key, sig) - _values(by_arch[old], key, sig)
        se = np.nanstd(diff, ddof=1) / np.sqrt(np.isfinite(diff).sum()) if len(diff) > 1 else 0.0
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {np.nanmean(diff):+.{d}f} ± {se:.{d}f} |"
        )
    lat = report["da4ml_estimate"]
    lines.append("| da4ml adder levels / latency | " + " | ".join(
        f"{lat[a]['adder_levels']:.0f} / {lat[a]['latency_ns']:g} ns" for a in archs) + " | |")  # fmt: skip
    lines.append(
        "| da4ml LUTs | " + " | ".join(f"{lat[a]['luts'] / 1e3:.1f}k" for a in archs) + " | |"
    )
    lines += [
        "",
        "dCor(R1, R2) per seed (a seed whose held-out split does not decorrelate pulls the mean):",
        "",
    ]
    for a in archs:
        dcor = _values(by_arch[a], "dcor_background", None)
        lines.append(
            f"- {a}: {', '.join(f'{v:.3f}' for v in dcor)} (median {np.nanmedian(dcor):.3f})"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, help="folder of cached event files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS / "firmware_margin_physics.json")
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the JSON"
    )
    args = parser.parse_args()
    if args.markdown_only:
        args.output.with_suffix(".md").write_text(markdown(json.loads(args.output.read_text())))
        return
    torch.set_num_threads(args.threads)

    from offline.events.io import event_count

    if args.events is None:
        parser.error("--events is required")

    background = _one_file(args.events, "background")
    signals = {s: _one_file(args.events, s) for s in SIGNALS}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for arch in ARCHITECTURES:
                row = train_one(background, signals, arch, seed, Path(tmp))
                runs.append(row)
                print(f"{arch:12s} seed {seed}: AUC " + " ".join(f"{k} {v:.4f}" for k, v in row["auc"].items())
                      + f"; dCor {row['dcor_background']:.4f}; max|pull| {row['max_abs_closure_pull']}"
                      + f" ({row['train_seconds']:.0f} s)", flush=True)  # fmt: skip
    latency = {}
    for (
        arch,
        config,
    ) in ARCHITECTURES.items():  # random on-grid weights at QuantConfig(), score over 57
        lat = da4ml_latency(*default_model(ae_config=config), CLOCK_NS)
        latency[arch] = {"adder_levels": lat.adder_levels, "cycles": lat.cycles,
                         "latency_ns": lat.latency_ns, "luts": lat.luts}  # fmt: skip
    report = {
        "background": background.name,
        "background_events": event_count(background),
        "signals": list(SIGNALS),
        "signal_events": {s: event_count(p) for s, p in signals.items()},
        "seeds": args.seeds,
        "settings": {
            k: DEFAULTS[k]
            for k in ("lam", "epochs", "batch_size", "lr", "patience", "split", "rate_khz")
        },
        "clock_period_ns": CLOCK_NS,
        "da4ml_estimate": latency,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {args.output} and {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
