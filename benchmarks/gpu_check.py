"""Every CUDA path on small data, checked against the same computation on the CPU.

    python benchmarks/gpu_check.py            # or: make gpu-check

Paths: DisCo² at batch 10 000 (value and gradient), the autoencoder pair's bf16-autocast
forward pass, AMP training of the pair (``offline.ad.train.fit``), OmniFold on a Gaussian
toy, shower diffusion training + sampling and its progressive distillation, and the exact
emulator's float path (torch on CUDA vs numpy: bit for bit). Each check runs
once on the CPU and once on CUDA with the same seeds and data, and compares what must agree:
exact-math results within float32/bf16 rounding, trained results within a statistical
tolerance (different devices take different rounding paths, so trained weights differ).
Prints a table with timings and writes ``benchmarks/results/gpu_check.json``. Without CUDA
it says so and exits 0 (nothing is written). Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"


@dataclass(frozen=True)
class Comparison:
    """One figure of one check: the CPU value, the device value, and whether they agree."""

    check: str
    figure: str
    cpu: float
    device: float
    tolerance: float
    relative: bool
    ok: bool


def compare(
    check: str, figure: str, cpu: float, device: float, tolerance: float, relative: bool
) -> Comparison:
    """``|device − cpu| ≤ tolerance`` (× ``|cpu|`` when relative); NaN/inf never agree."""
    cpu, device = float(cpu), float(device)
    scale = abs(cpu) if relative else 1.0
    ok = math.isfinite(cpu) and math.isfinite(device) and abs(device - cpu) <= tolerance * scale
    return Comparison(check, figure, cpu, device, tolerance, relative, ok)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(
    fn: Callable[[], dict[str, float]], device: torch.device
) -> tuple[dict[str, float], float]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


# ----------------------------------------------------------------------------- the checks
# Each takes a device and returns named figures; TOLERANCES says how each is compared.


def check_disco(device: str, n: int = 10_000) -> dict[str, float]:
    """DisCo² of one batch of ``n`` events (the training loss term) and its gradient, float32."""
    from offline.ad.disco import disco_sq

    rng = np.random.default_rng(1)
    x0 = rng.exponential(1.0, n)
    y0 = 0.3 * x0 + rng.exponential(1.0, n)
    w0 = rng.uniform(0.5, 1.5, n)
    dev = torch.device(device)
    x = torch.tensor(x0, dtype=torch.float32, device=dev, requires_grad=True)
    y = torch.tensor(y0, dtype=torch.float32, device=dev)
    w = torch.tensor(w0, dtype=torch.float32, device=dev)
    value = disco_sq(x, y, w)
    value.backward()
    assert x.grad is not None  # x requires grad
    grad = x.grad.double().cpu().numpy()
    return {
        "disco_sq": float(value.detach()),
        "grad_norm": float(np.linalg.norm(grad)),
        "grad_first": float(grad[0]),
    }


def _pair_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, 57)).astype(np.float32), rng.uniform(0.5, 1.5, n).astype(np.float32)


def check_ae_forward(device: str, n: int = 4096) -> dict[str, float]:
    """R1, R2 of the firmware preset under the training loop's autocast (bf16 on CUDA)."""
    from offline.ad.model import AutoencoderPair, preset

    torch.manual_seed(5)
    dev = torch.device(device)
    model = AutoencoderPair(preset("firmware")).to(dev).eval()
    x, _ = _pair_inputs(n, 6)
    with (
        torch.no_grad(),
        torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"),
    ):
        r1, r2 = model(torch.as_tensor(x, device=dev))
    r1, r2 = r1.double().cpu().numpy(), r2.double().cpu().numpy()
    return {"mean_r1": float(r1.mean()), "mean_r2": float(r2.mean()), "r1_event0": float(r1[0])}


def check_ae_training(device: str, n: int = 12_000, epochs: int = 4) -> dict[str, float]:
    """A few epochs of ``fit`` (AMP on CUDA), then the trained pair evaluated in float32 on the CPU."""
    import tempfile

    from offline.ad.data import ArraySource
    from offline.ad.train import TrainConfig, evaluate, train_pair

    x, w = _pair_inputs(n, 7)
    vx, vw = _pair_inputs(n // 4, 8)
    config = TrainConfig(
        lam=50.0,
        epochs=epochs,
        batch_size=min(1000, n // 4),
        lr=1e-3,
        patience=100,
        seed=9,
        device=device,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as out:
        result = train_pair(x, w, vx, vw, config, out)
        from offline.ad import load_pair

        model = load_pair(out).cpu().eval()  # the best epoch's weights
    val = evaluate(model, ArraySource(vx, vw), config.lam, config.batch_size, amp=False)
    return {
        "val_loss_cpu_fp32": float(val["loss"]),
        "val_disco": float(val["disco"]),
        "events_per_s": float(result.events_per_second),
    }


def _gaussian_toy(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    gen = rng.normal(0.0, 1.0, n)
    truth = rng.normal(0.4, 1.0, n)
    return {
        "sim_gen": gen,
        "sim_reco": gen + rng.normal(0, 0.5, n),
        "data_reco": truth + rng.normal(0, 0.5, n),
    }


def check_omnifold(device: str, n: int = 40_000, epochs: int = 30) -> dict[str, float]:
    """OmniFold on a Gaussian toy (truth mean 0.4, prior 0): the unfolded mean and width."""
    from offline.unfold.omnifold import OmniFoldConfig, omnifold

    toy = _gaussian_toy(n, 2)
    config = OmniFoldConfig(
        iterations=3,
        epochs=epochs,
        batch_size=min(4096, n // 8),
        seed=3,
        device=device,
        classifier_options={"hidden": (32, 32)},
    )
    result = omnifold(toy["sim_reco"], toy["sim_gen"], toy["data_reco"], config=config)
    w = result.weights
    mean = float(np.average(toy["sim_gen"], weights=w))
    width = float(np.sqrt(np.average((toy["sim_gen"] - mean) ** 2, weights=w)))
    return {"unfolded_mean": mean, "unfolded_width": width}


def _showers(n: int, seed: int):
    from offline.generative.gflash import GFlashSimulator, sample_energies

    energies = sample_energies(n, seed, 1e3, 1e5)
    return energies, GFlashSimulator().simulate(energies, seed + 1)


def check_diffusion(
    device: str, n: int = 2000, epochs: int = 8, iterations: int = 200
) -> dict[str, float]:
    """A small shower diffusion model trained (bf16 autocast on CUDA) and sampled; its 4-step
    teacher distilled to 2 and 1 steps. Figures: sampled deposit fractions, final losses."""
    from offline.generative.diffusion import DiffusionConfig, TrainingData, train_diffusion
    from offline.generative.distill import progressive_distillation

    energies, showers = _showers(n, 11)
    config = DiffusionConfig(
        layer_width=64,
        layer_depth=2,
        voxel_width=128,
        voxel_depth=2,
        steps=4,
        epochs=epochs,
        batch_size=128,
        lr=2e-3,
        ema=0.9,
        seed=4,
    )
    teacher, losses = train_diffusion(energies, showers, config, device=device)
    data = TrainingData.build(teacher, energies, showers, torch.device(device))
    students = progressive_distillation(
        teacher, data, targets=(1,), iterations=iterations, batch_size=128, seed=4
    )
    probe = np.geomspace(2e3, 5e4, min(n, 1000))
    figures = {"teacher_final_loss": float(losses[-1])}
    for name, model in (("teacher", teacher), ("distilled_1", students[1])):
        sampled = model.sample(probe, seed=12, device=device)
        figures[f"{name}_deposit_fraction"] = float(np.mean(sampled.sum(axis=1) / probe))
    reference = showers.sum(axis=1) / energies
    figures["reference_deposit_fraction"] = float(np.mean(reference))
    return figures


def check_emulation(device: str, n: int = 200_000) -> dict[str, float]:
    """The exact emulator's float path (``emulation.float_path``) on the device: the default trigger
    (float32 layers) and its first autoencoder forced to float64. Integer mantissas: the device
    must give the very same bits (tolerance 0), and both must equal the integer loops."""
    from emulation.events import edge_words
    from emulation.float_path import FloatGraph, namespace
    from emulation.graph import run_graph
    from emulation.trigger import TriggerEmulator
    from firmware.example import default_model, toy_words

    spec, weights = default_model(seed=0)
    words = np.concatenate(
        [edge_words(spec, np.random.default_rng(1), n // 50), toy_words(n - n // 50, 2)]
    )
    on_device = TriggerEmulator(spec, weights, device=device)
    out = on_device(words)
    reference = TriggerEmulator(spec, weights, float_path=False)(words[:20_000])
    xp = namespace(device)
    x = on_device.inputs(words[:20_000])
    f64 = FloatGraph(on_device.graphs[0], ("float64",))
    reco = np.asarray(xp.to_numpy(f64.run([x], None, xp)[0])).astype(np.int64)
    return {
        "mismatches_vs_integer_loops": float(
            np.count_nonzero(
                (out.r1[:20_000] != reference.r1)
                | (out.r2[:20_000] != reference.r2)
                | (out.trigger[:20_000] != reference.trigger)
            )
        ),
        "r1_checksum": float(out.r1.astype(np.float64).sum()),
        "r2_checksum": float(out.r2.astype(np.float64).sum()),
        "fired": float(out.trigger.sum()),
        "float64_reconstruction_checksum": float(reco.astype(np.float64).sum()),
        "float64_mismatches_vs_integer_loops": float(
            np.count_nonzero(reco != run_graph(on_device.graphs[0], [x])[0])
        ),
    }


# (check, figure) -> (tolerance, relative). Exact math: float32 / bf16 rounding. Trained
# results: statistical (CPU and CUDA runs round differently, so their weights differ).
TOLERANCES: dict[str, dict[str, tuple[float, bool]]] = {
    "disco_batch_10000": {
        "disco_sq": (1e-4, True),
        "grad_norm": (1e-3, True),
        "grad_first": (1e-2, True),
    },
    "ae_forward_autocast": {
        "mean_r1": (2e-2, True),
        "mean_r2": (2e-2, True),
        "r1_event0": (5e-2, True),
    },
    "ae_training_amp": {"val_loss_cpu_fp32": (0.05, True), "val_disco": (0.05, False)},
    "omnifold": {"unfolded_mean": (0.04, False), "unfolded_width": (0.04, False)},
    "emulation_float_path": {  # integer mantissas: bit for bit
        "mismatches_vs_integer_loops": (0.0, False),
        "r1_checksum": (0.0, False),
        "r2_checksum": (0.0, False),
        "fired": (0.0, False),
        "float64_reconstruction_checksum": (0.0, False),
        "float64_mismatches_vs_integer_loops": (0.0, False),
    },
    "diffusion_and_distillation": {
        "teacher_final_loss": (0.15, True),
        "teacher_deposit_fraction": (0.05, False),
        "distilled_1_deposit_fraction": (0.05, False),
    },
}

CHECKS: dict[str, Callable[[str], dict[str, float]]] = {
    "disco_batch_10000": check_disco,
    "ae_forward_autocast": check_ae_forward,
    "ae_training_amp": check_ae_training,
    "omnifold": check_omnifold,
    "diffusion_and_distillation": check_diffusion,
    "emulation_float_path": check_emulation,
}


def run_check(
    name: str, device: str, reference_device: str = "cpu"
) -> tuple[list[Comparison], dict[str, float]]:
    """Run one check on ``reference_device`` and ``device``; compare every toleranced figure."""
    fn = CHECKS[name]
    ref, ref_s = _timed(lambda: fn(reference_device), torch.device(reference_device))
    got, got_s = _timed(lambda: fn(device), torch.device(device))
    rows = [
        compare(name, figure, ref[figure], got[figure], tol, rel)
        for figure, (tol, rel) in TOLERANCES[name].items()
    ]
    info = {
        "cpu_seconds": ref_s,
        "device_seconds": got_s,
        **{f"cpu_{k}": v for k, v in ref.items()},
        **{f"device_{k}": v for k, v in got.items()},
    }
    return rows, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--device", default="cuda", help="device to check against the CPU (default: cuda)"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run only these checks")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device here (torch.cuda.is_available() is False): nothing to check."
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    names = args.only or list(CHECKS)
    table = Table(title=f"CUDA paths vs CPU ({args.device})")
    for col in ("check", "figure", "CPU", "device", "tolerance", "ok"):
        table.add_column(col)
    rows, timings = [], {}
    for name in names:
        console.print(f"running {name} ...")
        result, info = run_check(name, args.device)
        rows += result
        timings[name] = info
        console.print(
            f"  CPU {info['cpu_seconds']:.2f} s, {args.device} {info['device_seconds']:.2f} s"
        )
    for r in rows:
        tol = f"{r.tolerance:g}{' rel' if r.relative else ' abs'}"
        table.add_row(
            r.check, r.figure, f"{r.cpu:.6g}", f"{r.device:.6g}", tol, "yes" if r.ok else "[red]NO"
        )
    console.print(table)
    record = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith("cuda")
        else args.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "all_ok": all(r.ok for r in rows),
        "comparisons": [asdict(r) for r in rows],
        "checks": timings,
    }
    from offline.artifacts import write_json

    write_json(args.out, record)
    console.print(f"wrote {args.out}")
    return 0 if record["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
