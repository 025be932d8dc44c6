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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout


def _data(work: Path, toy: bool, seed: int) -> tuple[Path, dict[str, Path]]:
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

    requests = {"background": EV["background_events"]} | {s: EV["signal_events"] for s in EV["signals"]}
    files = cached_generate(ROOT / "cache", requests, seed, EV["workers"], progress=True)
    return files["background"].path, {k: f.path for k, f in files.items() if k != "background"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="brevitas,qkeras")
    parser.add_argument("--rates", default="100,1000", help="L1 rates in kHz")
    parser.add_argument("--toy", action="store_true")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    from l1ad.steps.ad import DEFAULTS as AD
    from l1ad.steps.quantize import DEFAULTS as QD
    from offline.ad.train import TrainConfig
    from offline.ad.workflow import train_from_file
    from quantize import QATConfig, QuantConfig
    from quantize.workflow import quantize_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_quantize_"))
    background, signals = _data(work, args.toy, args.seed)
    t0 = time.perf_counter()
    tc = TrainConfig(preset=AD["preset"], lam=AD["lam"], epochs=AD["epochs"], batch_size=AD["batch_size"],
                     lr=AD["lr"], patience=AD["patience"], seed=args.seed, progress=False)
    train_from_file(background, work / "float", tc)
    print(f"float training: {time.perf_counter() - t0:.1f} s")
    results = {"data": "toy" if args.toy else "default (cache/events)", "background": str(background), "runs": []}
    for framework in args.frameworks.split(","):
        for rate in (float(r) for r in args.rates.split(",")):
            t0 = time.perf_counter()
            qat = QATConfig.from_dict({**QD["qat"], "seed": args.seed, "progress": False})
            r = quantize_checkpoint(work / "float", work / f"{framework}_{rate:g}", framework, None, signals,
                                    QuantConfig.from_dict(QD["precision"]), qat, rate)
            seconds = time.perf_counter() - t0
            print(f"\n{framework}, {rate:g} kHz (QAT + export {seconds:.1f} s); quantized/float TPR ratio per signal:")
            print(r.comparison.to_string(float_format=lambda v: f"{v:.4g}"))
            results["runs"].append({"framework": framework, "rate_khz": rate, "seconds": seconds,
                                    "per_signal": json.loads(r.comparison.reset_index().to_json(orient="records"))})
    out = ROOT / "benchmarks" / "results" / "quantize.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
