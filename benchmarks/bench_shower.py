"""Shower surrogate benchmark: time per 100 showers and classifier AUC, GFlash vs diffusion samplers.

Self-contained: simulates its own GFlash training and held-out showers, trains the
diffusion teacher, distils it to 8 and 1 steps, generates at the held-out incident
energies with every sampler and compares each with the held-out GFlash showers
(classifier AUC low/high level, W1 per feature). The baseline is the reference
simulator measured in the same run (GFlash vs an independent GFlash sample also
gives the AUC floor, ≈ 0.5). Issue target: ≤ 2 ms/shower at AUC ≤ 0.70 after
distillation; the last line says which distilled samplers meet it.

    python benchmarks/bench_shower.py --events 20000 --epochs 200 --device cuda --out bench_shower.json
    # the CPU figures in benchmarks/results/bench_shower_cpu.json (2 cores, ~20 min):
    python benchmarks/bench_shower.py --events 20000 --test-events 5000 --epochs 40 \
        --distill-iterations 1000 --device cpu --out benchmarks/results/bench_shower_cpu.json \
        --plots benchmarks/results/shower_cpu
    python benchmarks/bench_shower.py --quick   # a minute on a laptop CPU, numbers meaningless
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from offline.artifacts import write_json
from offline.generative.diffusion import DiffusionConfig, TrainingData, train_diffusion
from offline.generative.distill import progressive_distillation
from offline.generative.evaluate import ClassifierConfig
from offline.generative.gflash import GFlashSimulator, sample_energies
from offline.generative.io import Showers
from offline.generative.workflow import evaluate_generated, generate_all


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, default=20_000, help="training showers")
    p.add_argument("--test-events", type=int, default=5_000, help="held-out showers (timing + AUC)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=64, help="teacher (full) sampling steps")
    p.add_argument(
        "--distill-iterations", type=int, default=2000, help="optimiser steps per halving round"
    )
    p.add_argument("--voxel-width", type=int, default=512)
    p.add_argument("--voxel-depth", type=int, default=4)
    p.add_argument("--e-min", type=float, default=1e3, help="MeV")
    p.add_argument("--e-max", type=float, default=1e6, help="MeV")
    p.add_argument("--classifier-epochs", type=int, default=30)
    p.add_argument("--sample-batch", type=int, default=10_000, help="showers per sampler call")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    p.add_argument(
        "--plots", type=Path, default=None, help="write metrics.json and plots into this directory"
    )
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.events, args.test_events, args.epochs, args.steps = 1500, 500, 5, 16
        args.distill_iterations, args.voxel_width, args.voxel_depth, args.classifier_epochs = (
            50,
            128,
            2,
            5,
        )
        args.e_max = min(args.e_max, 1e5)

    from offline.distributed import pick_device

    device = pick_device(args.device)
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))))
    print(
        f"device {device}; {args.events} training / {args.test_events} held-out showers, "
        f"E in [{args.e_min:g}, {args.e_max:g}] MeV log-uniform"
    )

    sim = GFlashSimulator()
    t0 = time.perf_counter()
    e_train = sample_energies(args.events, args.seed, args.e_min, args.e_max)
    x_train = sim.simulate(e_train, args.seed + 1)
    e_test = sample_energies(args.test_events, args.seed + 2, args.e_min, args.e_max)
    held = Showers(e_test, sim.simulate(e_test, args.seed + 3))
    print(f"simulated reference data in {time.perf_counter() - t0:.1f} s")

    config = DiffusionConfig(
        voxel_width=args.voxel_width,
        voxel_depth=args.voxel_depth,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    every = max(1, args.epochs // 10)
    teacher, history = train_diffusion(
        e_train,
        x_train,
        config,
        device=str(device),
        progress=lambda ep, loss: (
            print(f"  epoch {ep + 1}/{args.epochs} loss {loss:.4f}")
            if (ep + 1) % every == 0
            else None
        ),
    )
    train_s = time.perf_counter() - t0
    print(f"trained teacher ({args.steps} steps) in {train_s:.1f} s")
    t0 = time.perf_counter()
    data = TrainingData.build(teacher, e_train, x_train, device)
    targets = tuple(t for t in (8, 1) if t < args.steps)
    students = progressive_distillation(
        teacher,
        data,
        targets,
        args.distill_iterations,
        args.batch_size,
        seed=args.seed,
        progress=lambda r, steps: print(f"  distillation round {r}: {steps} steps"),
    )
    distill_s = time.perf_counter() - t0
    print(f"distilled to {sorted(students)} steps in {distill_s:.1f} s")

    samplers = {
        "full": teacher,
        **{f"distilled_{k}": v for k, v in sorted(students.items(), reverse=True)},
    }
    generated = generate_all(
        e_test, samplers, sim, seed=args.seed + 4, batch_size=args.sample_batch
    )
    metrics = evaluate_generated(
        held,
        generated,
        args.plots,
        ClassifierConfig(epochs=args.classifier_epochs, device=str(device), seed=args.seed),
        log=lambda _m: None,
    )

    base = metrics["gflash"]["ms_per_shower"]
    print()
    print(
        f"{'sampler':<14}{'steps':>6}{'s/100 showers':>15}{'speed-up vs GFlash':>20}{'AUC low':>9}{'AUC high':>10}"
    )
    for name, m in metrics.items():
        steps = "-" if m["steps"] is None else str(m["steps"])
        s100 = m["ms_per_shower"] * 100 / 1e3
        print(
            f"{name:<14}{steps:>6}{s100:>15.4f}{base / m['ms_per_shower']:>20.2f}"
            f"{m['auc_low_level']:>9.3f}{m['auc_high_level']:>10.3f}"
        )
    meeting = [
        name
        for name, m in metrics.items()
        if name.startswith("distilled_")
        and m["ms_per_shower"] <= 2.0
        and max(m["auc_low_level"], m["auc_high_level"]) <= 0.70
    ]
    print(
        f"target (after distillation: <= 2 ms/shower at AUC <= 0.70): {'met by ' + ', '.join(meeting) if meeting else 'not met'}"
    )

    result = {
        "device": str(device)
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "train_seconds": train_s,
        "distill_seconds": distill_s,
        "target_met_by": meeting,
        "loss_per_epoch": history,
        "samplers": {
            name: {
                "steps": m["steps"],
                "seconds_per_100_showers": m["ms_per_shower"] * 100 / 1e3,
                "ms_per_shower": m["ms_per_shower"],
                "speedup_vs_gflash": base / m["ms_per_shower"],
                "auc_low_level": m["auc_low_level"],
                "auc_high_level": m["auc_high_level"],
                "w1": m["w1"],
            }
            for name, m in metrics.items()
        },
    }
    if args.out is not None:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
