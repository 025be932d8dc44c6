"""Float vs quantized trigger efficiency: the default dataset, float training, QAT, FirmwareSpec.

Uses the events the ``events`` stage caches (``cache/events``, generated here if missing:
minutes on 2 cores) or, with ``--toy``, the tests' toy events (harder leptons as the signal).
Trains the float pair with the ``ad`` stage's defaults, quantizes it with the ``quantize``
stage's defaults in each framework and prints, per signal, the float and quantized AUC and
trigger efficiency at each rate, and their ratio (quantized / float; target >= 0.95).
Writes ``benchmarks/results/quantize.json``.

    python benchmarks/bench_quantize.py [--frameworks brevitas,qkeras] [--rates 100,1000] [--toy]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout


def _data(
    work: Path, toy: bool, seed: int, background: Path | None, signal: list[str]
) -> tuple[Path, dict[str, Path]]:
    if background is not None:
        return background, {s.partition("=")[0]: Path(s.partition("=")[2]) for s in signal}
    if toy:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import make_toy_events

        from offline.events import write_events

        bkg = make_toy_events(20000, seed, "wlnu")
        sig = make_toy_events(3000, seed + 1, "Ato4l")
        sig.particles[:, 1:9, 0] *= 2.0
        write_events(work / "bkg.h5", bkg, {"process": "wlnu"})
        write_events(work / "sig.h5", sig, {"process": "Ato4l"})
        return work / "bkg.h5", {"Ato4l_toy": work / "sig.h5"}
    from l1ad.steps.events import DEFAULTS as EV
    from offline.events.cache import cached_generate

    requests = {"background": EV["background_events"]} | {
        s: EV["signal_events"] for s in EV["signals"]
    }
    files = cached_generate(ROOT / "cache", requests, seed, EV["workers"], progress=True)
    return files["background"].path, {k: f.path for k, f in files.items() if k != "background"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="brevitas,qkeras")
    parser.add_argument("--rates", default="100,1000", help="L1 rates in kHz")
    parser.add_argument("--toy", action="store_true")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--background", type=Path, default=None, help="use this background file")
    parser.add_argument(
        "--signal", action="append", default=[], help="NAME=FILE (with --background)"
    )
    args = parser.parse_args()

    from l1ad.steps.ad import DEFAULTS as AD
    from l1ad.steps.quantize import DEFAULTS as QD
    from offline.ad.train import TrainConfig
    from offline.ad.workflow import load_background, train_from_file
    from offline.events.io import read_events
    from quantize import QATConfig, QuantConfig, weight_sparsity
    from quantize.workflow import compare, load_float, quantize_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_quantize_"))
    background, signals = _data(work, args.toy, args.seed, args.background, args.signal)
    t0 = time.perf_counter()
    tc = TrainConfig(
        preset=AD["preset"],
        lam=AD["lam"],
        epochs=AD["epochs"],
        batch_size=AD["batch_size"],
        lr=AD["lr"],
        patience=AD["patience"],
        seed=args.seed,
        progress=False,
    )
    train_from_file(background, work / "float", tc)
    print(f"float training: {time.perf_counter() - t0:.1f} s")
    results: dict[str, Any] = {
        "data": "toy" if args.toy else "default (cache/events)",
        "background": str(background),
        "runs": [],
    }
    fm = load_float(work / "float")
    events, split = load_background(background, fm.seed, fm.fractions)
    test = events[split.test]
    sig_events = {k: read_events(p) for k, p in signals.items()}
    rates = [float(r) for r in args.rates.split(",")]
    for framework in args.frameworks.split(","):
        t0 = time.perf_counter()
        qat = QATConfig.from_dict({**QD["qat"], "seed": args.seed, "progress": False})
        r = quantize_checkpoint(
            work / "float",
            work / framework,
            framework,
            None,
            signals,
            QuantConfig.from_dict(QD["precision"]),
            qat,
            rates[0],
        )
        seconds = time.perf_counter() - t0
        print(
            f"\n{framework}: QAT + export {seconds:.1f} s, weight sparsity {weight_sparsity(r.weights):.2f}"
        )
        for rate in rates:  # one QAT; the rate only moves the working point
            cmp = (
                r.comparison
                if rate == rates[0]
                else compare(fm.pair, fm.preprocessing, r.spec, r.weights, test, sig_events, rate)
            )
            print(f"{framework} at {rate:g} kHz (tpr_spec: spec thresholds at {rates[0]:g} kHz):")
            print(cmp.to_string(float_format=lambda v: f"{v:.4g}"))
            results["runs"].append(
                {
                    "framework": framework,
                    "rate_khz": rate,
                    "seconds": seconds,
                    "per_signal": json.loads(cmp.reset_index().to_json(orient="records")),
                }
            )
    out = ROOT / "benchmarks" / "results" / "quantize.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
