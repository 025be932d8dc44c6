"""Training throughput of the autoencoder pair (events/s), CPU or GPU.

Compares, in the same run, λ = 0 (no DisCo term) against λ > 0 (the O(B²) DisCo
term) at several global batch sizes, with the ``firmware`` preset by default.
Baseline: λ = 0 at the smallest batch. Results are printed and written as JSON
(``--out``, default ``benchmarks/results/bench_train_<device>.json``).

    OMP_NUM_THREADS=2 python benchmarks/bench_train.py --events 20000
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from offline.ad import TrainConfig, train_pair
from offline.distributed import pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", default="256,1024,4096")
    parser.add_argument("--lam", type=float, default=100.0)
    parser.add_argument("--preset", default="firmware")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.events, 57)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, args.events)
    xv, wv = x[:2000], w[:2000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (int(b) for b in args.batches.split(",")):
            for lam in (0.0, args.lam):
                config = TrainConfig(preset=args.preset, lam=lam, epochs=args.epochs, batch_size=batch,
                                     patience=100, progress=False, device=str(device))
                t0 = time.perf_counter()
                result = train_pair(x, w, xv, wv, config, Path(tmp) / f"{batch}_{lam}")
                rows.append({"batch_size": batch, "lambda": lam, "events_per_second": result.events_per_second,
                             "wall_seconds": time.perf_counter() - t0})
                print(f"batch {batch:6d}  λ {lam:6g}: {result.events_per_second:12,.0f} events/s", flush=True)
    base = rows[0]["events_per_second"]
    print(f"\nbaseline: λ = 0, batch {rows[0]['batch_size']} = {base:,.0f} events/s on {device}")
    for r in rows:
        r["ratio_to_baseline"] = r["events_per_second"] / base
        print(f"batch {r['batch_size']:6d}  λ {r['lambda']:6g}: ×{r['ratio_to_baseline']:.2f}")
    for batch in sorted({r["batch_size"] for r in rows}):
        pair = [r for r in rows if r["batch_size"] == batch]
        print(f"batch {batch:6d}: DisCo costs ×{pair[0]['events_per_second'] / pair[1]['events_per_second']:.2f}")
    name = "cuda" if device.type == "cuda" else "cpu"
    out = args.out or Path(__file__).parent / "results" / f"bench_train_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "preset": args.preset,
        "events": args.events, "epochs": args.epochs, "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
