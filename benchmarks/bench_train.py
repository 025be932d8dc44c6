"""Training throughput and peak memory of the autoencoder pair, λ = 0 against λ > 0, blocked against dense DisCo.

Every configuration runs in its own subprocess, so its peak memory is its own:
``resource.getrusage`` max RSS on CPU (torch allocations are invisible to tracemalloc),
``torch.cuda.max_memory_allocated`` on CUDA. Two kinds of rows:

- ``train``: one epoch of :func:`offline.ad.train_pair` (``firmware`` preset, Adam, the
  global batch B) on ``--events`` random events: events/s and peak memory, with DisCo
  blocked (the library's :func:`~offline.ad.disco_sq`) or dense (:func:`~offline.ad.dense_disco_sq`,
  the textbook N×N form, patched in);
- ``disco``: DisCo² alone, forward + backward on one batch of B: seconds and peak memory;
- ``stream`` (with ``--stream-events N``): ``train_from_file`` on a random N-event file, read
  into memory or streamed in chunks (``--stream``): peak memory against file size.

``rss_before_mb`` is the process's RSS after imports and data, so ``peak - before`` is what
the configuration itself needed. On CUDA training runs under bf16 autocast (DisCo stays float32).

    OMP_NUM_THREADS=2 python benchmarks/bench_train.py            # CPU, writes results/bench_train_cpu.json
    python benchmarks/bench_train.py --device cuda                # writes results/bench_train_cuda.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_one(spec: dict) -> dict:
    """One configuration, in this (fresh) process."""
    import numpy as np
    import torch

    import offline.ad.train as train_module
    from offline.ad import TrainConfig, dense_disco_sq, disco_sq, train_pair
    from offline.distributed import pick_device

    if spec["kind"] == "make_file":
        from offline.events import Events, write_events

        rng = np.random.default_rng(1)
        particles = np.abs(rng.normal(20, 10, (spec["events"], 19, 4))).astype(np.float32)
        particles[:, :, 1] = rng.uniform(-2.5, 2.5, particles.shape[:2])
        particles[:, :, 2] = rng.uniform(-3.1, 3.1, particles.shape[:2])
        write_events(spec["file"], Events(particles, rng.uniform(0.5, 1.5, spec["events"])))
        return {}
    device = pick_device(spec["device"])
    if spec["kind"] == "stream":
        from offline.ad.workflow import train_from_file

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        config = TrainConfig(
            lam=spec["lam"],
            epochs=1,
            batch_size=spec["batch"],
            patience=100,
            progress=False,
            device=str(device),
            shuffle_chunk=4096,
        )
        with tempfile.TemporaryDirectory() as tmp:
            result = train_from_file(spec["file"], tmp, config, stream=spec["disco"] == "streamed")
        return {
            "events_per_second": result.events_per_second,
            "train_seconds": result.seconds,
            "peak_mb": _peak_mb(device),
            "rss_before_mb": before,
        }
    fn = dense_disco_sq if spec["disco"] == "dense" else disco_sq
    batch = spec["batch"]
    if spec["kind"] == "disco":
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch, generator=gen).to(device).requires_grad_(True)
        y = (x.detach() ** 2 + torch.randn(batch, generator=gen).to(device)).requires_grad_(True)
        w = (torch.rand(batch, generator=gen) + 0.5).to(device)
        fn(x[:100], y[:100], w[:100]).backward()  # warm-up (kernels, allocator)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        fn(x, y, w).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return {
            "seconds": time.perf_counter() - t0,
            "peak_mb": _peak_mb(device),
            "rss_before_mb": before,
        }
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(spec["events"], 57)).astype(np.float32)
    weights = rng.uniform(0.5, 1.5, spec["events"])
    xv, wv = inputs[: min(2 * batch, len(inputs))], weights[: min(2 * batch, len(inputs))]
    train_module.disco_sq = fn  # type: ignore[attr-defined]  # pair_loss and the validation use it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainConfig(
        lam=spec["lam"],
        epochs=1,
        batch_size=batch,
        patience=100,
        progress=False,
        device=str(device),
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train_pair(inputs, weights, xv, wv, config, tmp)
    return {
        "events_per_second": result.events_per_second,
        "train_seconds": result.seconds,
        "peak_mb": _peak_mb(device),
        "rss_before_mb": before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=40_000, help="training events per configuration"
    )
    parser.add_argument("--batches", default="1000,10000")
    parser.add_argument("--lam", type=float, default=1000.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--dense-train",
        action="store_true",
        help="also train with dense DisCo at every batch (needs ~B² × 40 bytes)",
    )
    parser.add_argument(
        "--stream-events",
        type=int,
        default=0,
        help="also train on a random event file of this many events, streamed and in memory",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--one", help=argparse.SUPPRESS
    )  # internal: run one configuration (JSON) and print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_run_one(json.loads(args.one))))
        return

    import torch

    from offline.distributed import pick_device

    device = pick_device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    specs = []
    for batch in batches:
        specs.append({"kind": "train", "batch": batch, "lam": 0.0, "disco": "none"})
        specs.append({"kind": "train", "batch": batch, "lam": args.lam, "disco": "blocked"})
        if args.dense_train or batch <= 1000:
            specs.append({"kind": "train", "batch": batch, "lam": args.lam, "disco": "dense"})
        specs.append({"kind": "disco", "batch": batch, "lam": None, "disco": "blocked"})
        specs.append({"kind": "disco", "batch": batch, "lam": None, "disco": "dense"})
    work = tempfile.TemporaryDirectory()
    if (
        args.stream_events
    ):  # written by a child: the parent's peak RSS would be inherited by every child
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                json.dumps(
                    {
                        "kind": "make_file",
                        "events": args.stream_events,
                        "file": str(Path(work.name) / "events.h5"),
                    }
                ),
            ],
            check=True,
            capture_output=True,
        )
        for mode in ("in_memory", "streamed"):
            specs.append(
                {
                    "kind": "stream",
                    "batch": 1000,
                    "lam": 0.0,
                    "disco": mode,
                    "file": str(Path(work.name) / "events.h5"),
                }
            )
    rows = []
    for spec in specs:
        spec = {
            **spec,
            "events": args.stream_events if spec["kind"] == "stream" else args.events,
            "device": str(device),
        }
        proc = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True
        )
        row = {k: spec[k] for k in ("kind", "batch", "lam", "disco", "events")}
        if proc.returncode != 0:
            row["error"] = (proc.stderr.strip().splitlines() or ["killed"])[-1][:200]
        else:
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        rows.append(row)
        figure = (
            f"{row['events_per_second']:10,.0f} events/s"
            if "events_per_second" in row
            else f"{row['seconds']:8.3f} s fwd+bwd"
            if "seconds" in row
            else row["error"]
        )
        peak = f"peak {row['peak_mb']:8.0f} MB" if "peak_mb" in row else ""
        print(
            f"{row['kind']:5s} B {row['batch']:6d} λ {row['lam']!s:6s} {row['disco']:7s}: {figure}  {peak}",
            flush=True,
        )
    name = "cuda" if device.type == "cuda" else "cpu"
    out = args.out or Path(__file__).parent / "results" / f"bench_train_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else platform.processor() or "cpu",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "preset": "firmware",
                "events": args.events,
                "epochs": 1,
                "lambda": args.lam,
                "memory": "max RSS of the configuration's own process (CPU) / torch.cuda.max_memory_allocated (CUDA)",
                "events_per_second": "training events / seconds of the epoch loop, which includes the validation pass "
                "(2·B events) and the checkpoint writes",
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    work.cleanup()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
