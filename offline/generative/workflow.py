"""End-to-end shower workflows shared by the CLI and the benchmark: train + distil, sample, evaluate.

A model directory holds ``teacher.safetensors`` (full step count),
``distilled_<N>.safetensors`` for each distillation target, ``training.json``
(configuration, losses, wall times) and ``losses.png``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from offline.artifacts import atomic_directory, check_replaceable, write_json
from offline.generative.diffusion import (
    DiffusionConfig,
    ShowerDiffusion,
    TrainingData,
    train_diffusion,
)
from offline.generative.distill import check_targets, progressive_distillation
from offline.generative.evaluate import ClassifierConfig, evaluate_sample
from offline.generative.geometry import DATASET1_PHOTONS, Geometry
from offline.generative.gflash import GFlashSimulator
from offline.generative.io import Showers
from offline.generative.plots import plot_average_images, plot_feature_histograms, plot_losses

TEACHER_FILE = "teacher.safetensors"
MODEL_KIND = "shower-model"  # atomic_directory replaces only earlier shower models
EVALUATION_KIND = "shower-evaluation"


def train_and_distill(
    data: Showers,
    out_dir: str | os.PathLike[str],
    config: DiffusionConfig,
    targets: tuple[int, ...] = (8, 1),
    distill_iterations: int = 2000,
    device: str = "auto",
    geometry: Geometry = DATASET1_PHOTONS,
    log: Callable[[str], None] = print,
) -> Path | None:
    """Train the teacher and distil it to every target; write the model directory (rank 0 only).

    Returns the directory, or None on ranks other than 0 under ``torchrun``.
    """
    from offline.distributed import setup, teardown

    # before hours of training, not after
    check_replaceable(out_dir, MODEL_KIND)
    check_targets(config.steps, targets)
    t0 = time.perf_counter()
    model, history = train_diffusion(
        data.incident_energies,
        data.showers,
        config,
        geometry,
        device,
        progress=lambda ep, loss: log(f"epoch {ep + 1}/{config.epochs}: loss {loss:.4f}"),
    )
    train_s = time.perf_counter() - t0
    info = setup(device)
    if not info.is_main:
        teardown()
        return None
    t1 = time.perf_counter()
    students: dict[int, ShowerDiffusion] = {}
    if targets:
        tdata = TrainingData.build(model, data.incident_energies, data.showers, info.device)
        students = progressive_distillation(
            model,
            tdata,
            targets,
            distill_iterations,
            config.batch_size,
            seed=config.seed,
            progress=lambda r, steps: log(f"distillation round {r}: {steps} steps"),
        )
    distill_s = time.perf_counter() - t1
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, kind=MODEL_KIND) as tmp:
        model.save(tmp / TEACHER_FILE)
        for steps, student in students.items():
            student.save(tmp / f"distilled_{steps}.safetensors")
        write_json(
            tmp / "training.json",
            {
                "config": asdict(config),
                "events": len(data),
                "loss_per_epoch": history,
                "distillation_targets": sorted(students),
                "distill_iterations": distill_iterations,
                "train_seconds": train_s,
                "distill_seconds": distill_s,
                "device": str(info.device),
            },
        )
        plot_losses({"teacher (per epoch)": history}, tmp / "losses.png")
    teardown()
    return out_dir


def load_samplers(
    model_dir: str | os.PathLike[str], device: str = "auto"
) -> dict[str, ShowerDiffusion]:
    """{"full": teacher, "distilled_8": ..., "distilled_1": ...} from a model directory."""
    from offline.distributed import pick_device

    model_dir = Path(model_dir)
    if not (model_dir / TEACHER_FILE).is_file():
        raise ValueError(f"{model_dir}: no {TEACHER_FILE} (train a model with `l1ad shower train`)")
    dev = pick_device(device)
    out = {"full": ShowerDiffusion.load(model_dir / TEACHER_FILE, device=dev)}
    files = [
        p for p in model_dir.glob("distilled_*.safetensors") if p.stem.split("_", 1)[1].isdigit()
    ]
    files.sort(key=lambda p: -int(p.stem.split("_", 1)[1]))
    for path in files:
        out[path.stem] = ShowerDiffusion.load(path, device=dev)
    return out


def timed(
    fn: Callable[[], np.ndarray], n: int, device: torch.device | None = None
) -> tuple[np.ndarray, float]:
    """Run ``fn`` and return (result, ms per shower for n showers)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, 1e3 * (time.perf_counter() - t0) / max(n, 1)


def generate_all(
    energies: np.ndarray,
    samplers: dict[str, ShowerDiffusion],
    simulator: GFlashSimulator | None = None,
    seed: int = 1,
    batch_size: int = 10_000,
    warmup: bool = True,
) -> dict[str, tuple[np.ndarray, float | None, int | None]]:
    """Generate showers at ``energies`` with GFlash and every sampler: name -> (showers, ms/shower, steps)."""
    simulator = simulator or GFlashSimulator()
    out: dict[str, tuple[np.ndarray, float | None, int | None]] = {}
    showers, ms = timed(lambda: simulator.simulate(energies, seed), len(energies))
    out["gflash"] = (showers, ms, None)
    for name, model in samplers.items():
        device = next(model.parameters()).device
        if warmup:  # first CUDA call pays kernel compilation/allocation; not part of the rate
            model.sample(energies[: min(len(energies), 64)], seed=seed)
        sample = partial(model.sample, energies, seed=seed, batch_size=batch_size)
        showers, ms = timed(sample, len(energies), device)
        out[name] = (showers, ms, model.steps)
    return out


def evaluate_generated(
    reference: Showers,
    generated: dict[str, tuple[np.ndarray, float | None, int | None]],
    out_dir: str | os.PathLike[str] | None = None,
    classifier: ClassifierConfig | None = None,
    geometry: Geometry = DATASET1_PHOTONS,
    log: Callable[[str], None] = print,
    plots: bool = True,
) -> dict[str, dict]:
    """Metrics per sampler (and metrics.json, plus plots unless ``plots=False``, in ``out_dir``)."""
    if out_dir is not None:
        check_replaceable(out_dir, EVALUATION_KIND)  # before the classifiers train, not after
    metrics: dict[str, dict] = {}
    for name, (showers, ms, steps) in generated.items():
        entry = evaluate_sample(
            reference.incident_energies,
            reference.showers,
            reference.incident_energies,
            showers,
            ms,
            geometry,
            classifier,
        )
        entry["steps"] = steps
        metrics[name] = entry
        rate = "" if ms is None else f", {ms:.3f} ms/shower"
        log(
            f"{name}: AUC low {entry['auc_low_level']:.3f}, high {entry['auc_high_level']:.3f}{rate}"
        )
    if out_dir is None:
        return metrics
    with atomic_directory(out_dir, kind=EVALUATION_KIND) as tmp:
        write_json(tmp / "metrics.json", metrics)
        if plots:
            samples = {"reference": (reference.incident_energies, reference.showers)}
            samples.update({k: (reference.incident_energies, v[0]) for k, v in generated.items()})
            plot_average_images(samples, tmp / "average_images.png", geometry)
            plot_feature_histograms(
                (reference.incident_energies, reference.showers),
                {k: (reference.incident_energies, v[0]) for k, v in generated.items()},
                tmp / "features.png",
                geometry,
            )
    return metrics
