"""The run report: ``report.md`` (markdown with tables and PNG plots) and the figures of ``summary.json``,
both read from the steps' result dataclasses. Every word of the report is written here."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from emulation.stage import TriggerEmulation
    from firmware.stage import FirmwareStageResult
    from offline.ad.stage import ADStageResult
    from offline.events.stage import EventSamples
    from quantize.stage import QuantizeStageResult

# a largest closure pull with a global p-value (look-elsewhere, offline.ad.consistency) under
# this is a failed closure
CLOSURE_GLOBAL_ALPHA = 0.05


@dataclass
class Report:
    title: str
    root: Path
    blocks: list[str] = field(default_factory=list)

    def section(self, title: str, text: str = "") -> None:
        self.blocks.append(f"## {title}\n\n{text}".rstrip() + "\n")

    def text(self, text: str) -> None:
        self.blocks.append(text.rstrip() + "\n")

    def table(self, frame: pd.DataFrame, caption: str = "", float_format: str = ".4g") -> None:
        body = frame.to_markdown(floatfmt=float_format)  # pandas needs tabulate, a dependency
        self.blocks.append((f"*{caption}*\n\n" if caption else "") + body + "\n")

    def figure(self, path: str | os.PathLike[str], caption: str) -> None:
        rel = os.path.relpath(Path(path), self.root)
        self.blocks.append(f"![{caption}]({rel})\n\n*{caption}*\n")

    def render(self) -> str:
        return f"# {self.title}\n\n" + "\n".join(self.blocks)


def closure_consistency_text(consistency: dict[str, Any] | None) -> str:
    """The closure scan as a whole (offline.ad.consistency), for the report and ``l1ad abcd``."""
    if consistency is None:
        return ""
    return (
        f"The {consistency['ndof']} resolved pulls are correlated (nested regions; their correlations "
        f"from {consistency['replicas']} bootstrap replicas): χ² = {consistency['chi2']:.2f} for "
        f"{consistency['ndof']} points (p = {consistency['p_value']:.2g}); the largest pull's "
        f"global p-value is {consistency['max_pull_p_value']:.2g}."
    )


def closure_verdict(max_pull: float | None, consistency: dict[str, Any] | None) -> str:
    """Closure fails where a pull exceeds 2 and the scan as a whole does not explain it."""
    if (max_pull or 0) <= 2:
        return ""
    if consistency is not None and consistency["max_pull_p_value"] >= CLOSURE_GLOBAL_ALPHA:
        return (
            f" A pull beyond 2 is this likely among the scan's correlated points (global p ≥ "
            f"{CLOSURE_GLOBAL_ALPHA:g}): the closure is not shown to fail, but |pull| ≤ 2 is "
            "not met."
        )
    return (
        " **Closure fails (|pull| > 2): R1 and R2 are not independent enough in the tail, so the "
        "significances below include the background's own excess.**"
    )


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.4g}"


def rates_frame(rates: dict[str, dict]) -> pd.DataFrame:
    """One row per target rate: thresholds ± bootstrap σ, the tail's effective events, TPR ± σ per signal."""
    import pandas as pd

    rows = []
    for rate, p in rates.items():
        row: dict[str, Any] = {
            "rate [kHz]": rate,
            "ε_B": f"{p['eps_b']:.3g}",
            "tail ESS": f"{p['tail_ess']:.1f}",
        }
        if not p["resolved"]:
            row["x (R1)"] = p["note"]
        else:
            t, e = p["threshold"], p["threshold_sigma"]
            row["x (R1)"] = f"{t['r1']:.4g} ± {e['r1']:.2g}"
            row["y (R2)"] = f"{t['r2']:.4g} ± {e['r2']:.2g}"
            for name, v in p["tpr"].items():
                row[f"TPR {name}"] = f"{v['value']:.4f} ± {v['sigma']:.4f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("rate [kHz]").fillna("—")


# --- events -------------------------------------------------------------------------------------


def render_events(report: Report, samples: EventSamples) -> None:
    for sample, path in samples.files.items():
        report.section(f"Events: {sample}", f"{samples.counts[sample]} events from `{path}`.")
        for plot in samples.plots[sample]:
            report.figure(plot, f"{sample}: {plot.stem.removeprefix(sample + '_')}")
    report.section(
        "Events",
        "pp at 13 TeV, Pythia 8 + FastJet anti-kT R=0.4 + parametrised L1 response "
        "(offline/events/l1_response.py); pre-selection: an e/gamma or muon object above 23 GeV.",
    )
    report.table(samples.table, "samples, pre-selection efficiencies and generation rates")


def events_figures(samples: EventSamples) -> dict[str, Any]:
    return {
        "events": {
            "counts": samples.counts,
            "events_per_s": samples.events_per_s,
            "from_cache": samples.from_cache,
            "preselection_efficiency": samples.preselection_efficiency,
        }
    }


# --- ad -----------------------------------------------------------------------------------------


def render_ad(report: Report, ad: ADStageResult) -> None:
    from offline.ad.metrics import rate_to_fpr

    config, training, summary, ev = ad.config, ad.training, ad.summary, ad.evaluation
    report.section(
        "Anomaly detection: DisCo-decorrelated autoencoder pair",
        f"Preset `{config.preset}`, λ = {config.lam:g}, batch {config.batch_size}, lr {config.lr:g}. "
        f"Background split {ad.fractions} (train/validation/test) with seed {config.seed}; "
        f"{training.epochs_run} epochs, best epoch {training.best_epoch}"
        f"{' (early stop)' if training.stopped_early else ''}, {training.events_per_second:,.0f} training events/s. "
        f"dCor(R1, R2) on {ad.background_test_events} held-out background events: "
        f"{_fmt(summary['ad']['dcor_background'])} ± {_fmt(summary['ad']['dcor_background_sigma'])} "
        "(Poisson bootstrap). "
        f"ROC score: min of the two background-CDF-transformed errors (the ABCD signal-region family). "
        f"TPR at FPR 1e-5 is '—' when the test sample cannot resolve it; the rate working point is "
        f"{ev.rate_khz:g} kHz at 40 MHz (FPR {rate_to_fpr(ev.rate_khz):.3g}), trigger = region A.",
    )
    limits = summary["statistically_limited"]
    report.section(
        "Statistically limited figures",
        "The sample is too small for these figures; they need more events, not a better model:\n\n"
        + "\n".join(f"- {line}" for line in limits)
        if limits
        else "None: every figure below is resolved by the sample.",
    )
    report.figure(ad.loss_plot, "Loss per epoch (top) and DisCo² (bottom)")
    if not ad.metrics.empty:
        report.table(ad.metrics, caption="Per-signal metrics on held-out background")
        report.figure(ad.plots["roc"], "ROC per signal")
    report.table(
        rates_frame({**summary["rates"], "FPR 1e-5": summary["fpr_1e-5"]}),
        caption="Trigger (region A) at target rates of 40 MHz: thresholds ± Poisson-bootstrap σ "
        f"({ev.bootstrap} replicas), TPR ± weighted binomial σ, and the effective sample size "
        "(Σw)²/Σw² of the background beyond the thresholds; rows with a tail ESS under 10 are not resolved",
    )
    scan = ad.abcd_scan
    closure = scan[scan["sample"] == "background"][
        ["eps_b", "n_a", "predicted", "predicted_sigma", "pull"]
    ]
    max_pull = summary["abcd"]["max_abs_closure_pull"]
    consistency = summary["abcd"].get("closure_consistency")
    report.section(
        "ABCD background estimate",
        f"Thresholds from background: x at √ε_B, y so that A keeps ε_B. Signals injected at "
        f"{ev.injection:.2%} of the background; significance quoted at ε_B = {ev.working_eps_b}. "
        f"Points with a region under {ev.min_region_events} effective events ((Σw)²/Σw²) have no pull. "
        f"Max |closure pull| = {_fmt(max_pull)}."
        + (f" {closure_consistency_text(consistency)}" if consistency else "")
        + closure_verdict(max_pull, consistency),
    )
    report.table(closure.set_index("eps_b"), caption="Closure on background")
    if not ad.metrics.empty:  # signals were scored
        pivot = scan[scan["sample"] != "background"].pivot(
            index="eps_b", columns="sample", values="pull"
        )
        report.table(pivot, caption="Significance (N_A − N_B N_C/N_D)/σ per injected signal")
    for key, caption in (
        ("abcd_plane", "ABCD plane"),
        ("closure", "Closure vs ε_B"),
        ("significance", "Significance vs ε_B"),
    ):
        if key in ad.plots:
            report.figure(ad.plots[key], caption)
    if ad.lambda_scan is not None:
        report.table(ad.lambda_scan.set_index("lambda"), caption="λ scan: held-out dCor and AUC")
        report.figure(ad.lambda_scan_plot, "λ scan")


def ad_figures(ad: ADStageResult) -> dict[str, Any]:
    s = ad.summary
    return {
        "ad": {
            k: s["ad"][k]
            for k in (
                "auc",
                "auc_sigma",
                "tpr_at_fpr_1e-5",
                "dcor_background",
                "dcor_background_sigma",
                "tpr_at_rate",
                "rate_khz",
            )
        },
        "statistically_limited": s["statistically_limited"],
        "abcd": {
            k: s["abcd"][k] for k in ("max_abs_closure_pull", "closure_consistency", "significance")
        },
        "rates": s["rates"],
        "fpr_1e-5": s["fpr_1e-5"],
    }


# --- quantize -----------------------------------------------------------------------------------


def render_quantize(report: Report, q: QuantizeStageResult) -> None:
    import pandas as pd

    result, spec = q.quantized, q.quantized.spec
    t = spec.trigger
    first = spec.autoencoders[0]
    report.section(
        "Quantization-aware training",
        f"Framework `{q.framework}`; weights/biases/activations per layer as in `{q.spec_path.name}` "
        f"(default weights {first.layers[0].weight}, hidden activations "
        f"{first.layers[0].activation_result}, input {spec.input}); exact "
        f"accumulators; score {first.score.score}. QAT: {q.qat.epochs} epochs from the "
        f"float checkpoint with the same loss (λ from the float training), weight sparsity {q.weight_sparsity:.1%}. "
        f"QAT inputs and quantized scores are the bit-exact trigger emulator's. Thresholds at {q.rate_khz:g} kHz "
        f"(validation background): R1 > {t.threshold_r1:g}, R2 > {t.threshold_r2:g}, trigger = region(s) "
        f"{', '.join(t.fire_on)}. Compared on the held-out test background.",
    )
    if len(result.comparison):
        report.table(
            result.comparison,
            caption=f"Float vs quantized: AUC and trigger efficiency at {q.rate_khz:g} kHz",
        )
    layers = pd.DataFrame(
        [
            {
                "layer": d.name,
                "shape": f"{d.n_in}x{d.n_out}",
                "weight": str(d.weight),
                "bias": str(d.bias),
                "accumulator": str(d.accumulator),
                "output": str(d.activation_result),
            }
            for d in first.layers
        ]
    ).set_index("layer")
    report.table(layers, caption="Fixed-point types of ae1 (ae2 identical)")
    if q.scan is not None:
        report.table(
            q.scan.set_index("model"), caption="Bit width x sparsity scan (cost: bit operations)"
        )
        report.figure(q.scan_plot, "Performance vs BOPs, with the Pareto front")


def quantize_figures(q: QuantizeStageResult) -> dict[str, Any]:
    t = q.quantized.spec.trigger
    return {
        "quantize": {
            "framework": q.framework,
            "spec": str(q.spec_path),
            "tpr_ratio_vs_float": q.quantized.tpr_ratio,
            "rate_khz": q.rate_khz,
            "thresholds": [t.threshold_r1, t.threshold_r2],
            "weight_sparsity": q.weight_sparsity,
        }
    }


# --- firmware -----------------------------------------------------------------------------------

FIRMWARE_FIGURES = (
    "project",
    "backend",
    "strategy",
    "clock_period_ns",
    "latency_cycles",
    "latency_ns",
    "ii_cycles",
    "luts",
    "ffs",
    "dsps",
    "brams",
    "estimate_source",
    "beside",
    "latency_budget_ns",
    "within_budget",
    "csim_events",
    "csim_mismatches",
    "emulator_library",
    "emulator_mismatches",
)


def render_firmware(report: Report, fw: FirmwareStageResult) -> None:
    result = fw.build
    settings = result.settings
    report.section(
        "Firmware: hls4ml project of the whole trigger",
        f"`{result.project.path}` ({settings.backend}, part {settings.part}, clock {settings.clock_period_ns:g} ns, "
        f"dense layers in hls4ml's {settings.strategy} strategy, "
        f"{fw.frontend} frontend from {fw.origin}). Top `trigger_top`: 19 L1 objects as hardware words → "
        f"preprocessing → both autoencoders (one hls4ml function) → reconstruction errors → ABCD and trigger bits. "
        f"C simulation (g++) vs the integer emulator: {result.csim_mismatches} mismatching events of "
        f"{result.csim_events} (incl. all-empty, saturating-pT and extreme-word events). "
        + (
            f"RTL (Verilator) vs emulator: {result.cost.rtl_mismatches} of {result.cost.rtl_events}. "
            if result.cost.rtl_mismatches is not None
            else ""
        )
        + (
            f"Emulator library `{result.emulator_library}` (the hls4mlEmulator::Model the experiment's software "
            f"loads) vs the integer emulator: {result.emulator_mismatches} of {result.csim_events}. "
            if result.emulator_library is not None
            else ""
        )
        + "Figures are estimates from the sources named in each column (no vendor tool was run unless a "
        "Vivado/Vitis column shows).",
    )
    report.table(result.cost.table(), caption="Hardware cost by source")
    report.text("```\n" + result.verdict.summary() + "\n```")
    if not result.verdict.within_budget:
        report.text("```\n" + result.verdict.error_message() + "\n```")
    for note in result.cost.notes:
        report.text(f"- {note}")


def firmware_figures(fw: FirmwareStageResult) -> dict[str, Any]:
    summary = fw.build.summary()
    return {
        "firmware": {
            **{k: summary[k] for k in FIRMWARE_FIGURES},
            "estimate_error": fw.estimate_error,
        }
    }


# --- emulation ----------------------------------------------------------------------------------


def render_emulation(report: Report, emu: TriggerEmulation) -> None:
    csim = (
        f"C simulation of `{emu.csim_project}` on {emu.csim_events_compared} events "
        f"(background plus empty, saturating and extreme words): {emu.csim_mismatches} mismatches."
        if emu.csim_events_compared
        else "No firmware project in this run: no C-simulation comparison."
    )
    report.section(
        "Trigger emulation",
        f"Bit-exact emulation of the FirmwareSpec on {emu.events_emulated} events "
        f"({emu.events_per_s:.3g} events/s"
        + (f", {emu.events_per_cpu_s:.3g} per CPU second" if emu.events_per_cpu_s else "")
        + f", measured on {emu.speed_events} events). "
        + (
            f"Rate {emu.rate_khz:.4g} ± {emu.rate_sigma_khz:.2g} kHz at 40 MHz. "
            if emu.rate_khz is not None
            else ""
        )
        + csim,
    )
    if len(emu.table):
        report.table(
            emu.table,
            caption="Per process: fired fraction (± binomial) and ABCD region counts (N raw, W weighted)",
        )
    if len(emu.overflows):
        report.table(
            emu.overflows,
            caption="Overflows per cast (values outside the target type: saturated or wrapped)",
        )
    else:
        report.text("No value overflowed any fixed-point type.")


def emulation_figures(emu: TriggerEmulation) -> dict[str, Any]:
    return {
        "emulation": {
            "events_emulated": emu.events_emulated,
            "events_per_s": emu.events_per_s,
            "events_per_cpu_s": emu.events_per_cpu_s,
            "speed_events": emu.speed_events,
            "csim_events_compared": emu.csim_events_compared,
            "csim_mismatches": emu.csim_mismatches,
            "csim_events_per_s": emu.csim_events_per_s,
            "rate_khz": emu.rate_khz,
            "efficiency": emu.efficiency,
        }
    }


# step name -> (report section writer, summary.json figures)
STEP_OUTPUTS: dict[str, tuple[Callable[[Report, Any], None], Callable[[Any], dict[str, Any]]]] = {
    "events": (render_events, events_figures),
    "ad": (render_ad, ad_figures),
    "quantize": (render_quantize, quantize_figures),
    "firmware": (render_firmware, firmware_figures),
    "emulation": (render_emulation, emulation_figures),
}


def add_step(report: Report, step: str, result: Any) -> dict[str, Any]:
    """Write ``step``'s part of the report from its result; returns its ``summary.json`` figures."""
    render, figures = STEP_OUTPUTS[step]
    render(report, result)
    return figures(result)
