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


def _mean(rows: list[dict[str, Any]], key: str, signal: str | None = None) -> float:
    values = [r[key][signal] if signal else r[key] for r in rows]
    return float(np.mean([v for v in values if v is not None]))


def markdown(report: dict[str, Any]) -> str:
    rows, seeds = report["runs"], report["seeds"]
    rate = rows[0]["rate_khz"]
    lines = [
        "# Firmware margin: physics of 57-32-16-4 vs 57-16-4 autoencoders",
        "",
        f"`ad` step, default settings, float training, seeds {', '.join(map(str, seeds))}; "
        f"background {report['background_events']} events (test {rows[0]['background_test_events']}), "
        f"signals {', '.join(f'{k} {v}' for k, v in report['signal_events'].items())} events. "
        f"Mean over seeds (each seed's value in the JSON). TPR at {rate:g} kHz.",
        "",
        "| figure | " + " | ".join(ARCHITECTURES) + " |",
        "|---|" + "---|" * len(ARCHITECTURES),
    ]
    by_arch = {a: [r for r in rows if r["architecture"] == a] for a in ARCHITECTURES}
    for sig in report["signals"]:
        lines.append(
            f"| AUC {sig} | "
            + " | ".join(f"{_mean(by_arch[a], 'auc', sig):.4f}" for a in ARCHITECTURES)
            + " |"
        )
    for sig in report["signals"]:
        lines.append(f"| TPR {sig} | " + " | ".join(f"{_mean(by_arch[a], 'tpr_at_rate', sig):.4f}" for a in ARCHITECTURES) + " |")  # fmt: skip
    lines.append("| dCor(R1,R2) bkg | " + " | ".join(f"{_mean(by_arch[a], 'dcor_background'):.4f}" for a in ARCHITECTURES) + " |")  # fmt: skip
    lines.append("| max abs closure pull | " + " | ".join(f"{_mean(by_arch[a], 'max_abs_closure_pull'):.2f}" for a in ARCHITECTURES) + " |")  # fmt: skip
    lat = report["da4ml_estimate"]
    lines.append("| da4ml adder levels / ns | " + " | ".join(f"{lat[a]['adder_levels']:.0f} / {lat[a]['latency_ns']:g}" for a in ARCHITECTURES) + " |")  # fmt: skip
    lines.append("| da4ml LUTs | " + " | ".join(f"{lat[a]['luts'] / 1e3:.1f}k" for a in ARCHITECTURES) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, required=True, help="folder of cached event files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS / "firmware_margin_physics.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from offline.events.io import event_count

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
