"""Signal sanity: is the h±→τν AUC below 0.5 physics or a bug? Compare its L1 objects with W→ℓν.

Reads two event files written by ``l1ad generate`` (``--process hChToTauNu`` and
``--process wlnu``) and compares, after the common pre-selection, the leading lepton
(e/γ or μ) pT, MET, the transverse mass mT = sqrt(2 pT(ℓ) MET (1 − cos Δφ)), the scalar
sum HT of the jets and the object multiplicities: quantiles, means, and a weighted
two-sample KS statistic. Writes ``signal_sanity.png`` and ``signal_sanity.json``.

    l1ad generate --process hChToTauNu --events 1500 --out hch.h5
    l1ad generate --process wlnu --events 1500 --out wlnu.h5
    python benchmarks/signal_sanity.py hch.h5 wlnu.h5 --out benchmarks/results/signal_sanity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep
import numpy as np
from scipy import stats

from offline.events.io import read_events, read_metadata
from offline.events.schema import OBJECT_ROWS


def observables(path: Path) -> dict[str, np.ndarray]:
    events = read_events(path)
    p = events.particles
    first_e, n_e, _ = OBJECT_ROWS["egamma"]
    first_m, n_m, _ = OBJECT_ROWS["muon"]
    first_j, n_j, _ = OBJECT_ROWS["jet"]
    leptons = np.concatenate([p[:, first_e : first_e + n_e], p[:, first_m : first_m + n_m]], axis=1)
    lead = leptons[np.arange(len(p)), np.argmax(leptons[:, :, 0], axis=1)]
    met, met_phi = p[:, 0, 0], p[:, 0, 2]
    mt = np.sqrt(np.maximum(2 * lead[:, 0] * met * (1 - np.cos(lead[:, 2] - met_phi)), 0))
    jets = p[:, first_j : first_j + n_j, 0]
    return {
        "lead_lepton_pt": lead[:, 0].astype(np.float64),
        "met": met.astype(np.float64),
        "mt": mt.astype(np.float64),
        "ht_jets": jets.sum(axis=1).astype(np.float64),
        "n_jets": (jets > 0).sum(axis=1).astype(np.float64),
        "n_leptons": (leptons[:, :, 0] > 0).sum(axis=1).astype(np.float64),
        "weights": events.event_weights,
    }


def summary(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.1, 0.5, 0.9])
    return {
        "mean": float(values.mean()),
        "q10": float(q[0]),
        "median": float(q[1]),
        "q90": float(q[2]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("signal", type=Path)
    parser.add_argument("w", type=Path)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "signal_sanity"
    )
    args = parser.parse_args()
    sig, w = observables(args.signal), observables(args.w)
    names = {
        "lead_lepton_pt": "leading lepton $p_T$ [GeV]",
        "met": "MET [GeV]",
        "mt": "$m_T(\\ell, MET)$ [GeV]",
        "ht_jets": "jet $H_T$ [GeV]",
    }
    result: dict[str, Any] = {
        "files": {"hChToTauNu": str(args.signal), "wlnu": str(args.w)},
        "events": {"hChToTauNu": len(sig["met"]), "wlnu": len(w["met"])},
        "generation": {
            name: {k: v for k, v in component.items() if k != "pythia_settings"}
            for path in (args.signal, args.w)
            for name, component in read_metadata(path).get("components", {}).items()
        },
        "observables": {},
    }
    for key in (*names, "n_jets", "n_leptons"):
        ks = stats.ks_2samp(sig[key], w[key])
        result["observables"][key] = {
            "hChToTauNu": summary(sig[key]),
            "wlnu": summary(w[key]),
            "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
        }
    # fraction of each sample beyond W's 90 % quantile: the tail a reconstruction error picks up
    result["fraction_above_w_q90"] = {
        key: float((sig[key] > np.quantile(w[key], 0.9)).mean()) for key in names
    }
    plt.style.use(mplhep.style.CMS)
    fig, axes = plt.subplots(2, 2, figsize=(14, 11))
    for ax, (key, label) in zip(axes.flat, names.items(), strict=True):
        hi = np.quantile(np.concatenate([sig[key], w[key]]), 0.99)
        bins = np.linspace(0, hi, 40)
        ax.hist(w[key], bins, density=True, histtype="step", lw=2, label=f"W→ℓν ({len(w[key])})")
        ax.hist(
            sig[key], bins, density=True, histtype="step", lw=2, label=f"h±→τν ({len(sig[key])})"
        )
        ax.set_xlabel(label)
        ax.set_ylabel("density")
        ax.legend(fontsize=16)
    fig.suptitle("L1 objects after the 23 GeV e/μ pre-selection", fontsize=20)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "signal_sanity.png", dpi=80)
    (args.out / "signal_sanity.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, row in result["observables"].items():
        print(
            f"{key:15s} h±: mean {row['hChToTauNu']['mean']:7.1f} median {row['hChToTauNu']['median']:7.1f}   "
            f"W: mean {row['wlnu']['mean']:7.1f} median {row['wlnu']['median']:7.1f}   KS {row['ks_statistic']:.3f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
