"""The physics processes: Pythia 8 settings of the SM backgrounds and the ADC2021 signals.

pp collisions at 13 TeV, Pythia 8.3 defaults otherwise (Monash tune, MPI,
ISR/FSR, hadronisation and decays on). Masses and decays follow the ADC2021
samples (Govorkova et al., Sci. Data 9 (2022) 118, arXiv 2107.02157):

- ``wlnu``: W -> l nu (l = e, mu, tau), s-channel ``WeakSingleBoson:ffbar2W``.
- ``qcd``: QCD 2 -> 2 (``HardQCD:all``). The pre-selection (an e/gamma or muon
  object above 23 GeV) keeps only a tiny fraction of inclusive QCD, so QCD is
  *enriched* by biased p-hat-T sampling: ``PhaseSpace:bias2Selection`` draws
  events with a density raised by (pTHat / 30 GeV)^2 above pTHatMin = 30 GeV,
  and Pythia gives each event the compensating weight (30 GeV / pTHat)^2.
  Those weights are carried into the event files, so weighted QCD
  distributions and mixtures are unbiased (above the pTHatMin cut; a jet
  below 30 GeV rarely makes a 23 GeV object). Measured trade-off (fraction
  passing the pre-selection / effective sample size over events): power 2
  from 30 GeV 11.5 % / 40 %; power 3 from 25 GeV 18.5 % / 13 %; power 4 from
  20 GeV 44 % / 6 %. Power 2 gives the most effective events per CPU second.
- ``zll``: Z -> l l (l = e, mu, tau), pure Z (``WeakZ0:gmZmode = 2``), m > 40 GeV.
- ``ttbar``: gg, qq -> t tbar, all decays.
- ``Ato4l``: a neutral scalar A (Pythia's H2, id 35) with m = 50 GeV from
  gluon fusion, A -> Z Z* with both Z (off shell) -> e e or mu mu.
- ``leptoquark``: pair-produced scalar leptoquark (id 42), m = 80 GeV,
  LQ -> b tau. Its charge is set to 2/3 (``42:chargeType = 2``) so that
  b tau+ conserves charge.
- ``hToTauTau``: h0 (id 25) with m = 60 GeV from gluon fusion, h -> tau tau,
  taus decay inclusively.
- ``hChToTauNu``: charged scalar H+- (id 37), m = 60 GeV, from f fbar' ->
  H+-, H+- -> tau nu.

Generator-level pre-filter (speed, documented bias): for every process with
prompt leptons (all but ``qcd``) events are vetoed right after the hard
process (a Pythia ``UserHooks`` process-level veto, before showers and
hadronisation, so a vetoed event costs almost nothing) unless the hard
process holds an e, mu or tau with pT > 0.7 x 23 GeV and |eta| < 2.8. A
lepton below that cannot make a 23 GeV L1 object (its resolution is a few
percent), so the only events lost are those passing the pre-selection with a
fake (a pi0 cluster of a jet) while every prompt lepton is soft: a
per-mille-level effect for W and Z. Measured pre-selection efficiencies,
counted against every event Pythia generated (vetoed ones included), are
written to each file's metadata.

Background mixture (ADC2021, after pre-selection): W 59.2 %, QCD 33.8 %,
Z 6.7 %, tt 0.3 %. Fractions are fixed by these numbers, not by Pythia's
cross sections (which are recorded in the metadata for reference).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from offline.events.schema import BACKGROUND_PROCESSES, PROCESSES, SIGNAL_PROCESSES

BEAM_SETTINGS: tuple[str, ...] = (
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Random:setSeed = on",
)

# ADC2021 background composition after pre-selection (Sci. Data 9 (2022) 118)
MIX_FRACTIONS: dict[str, float] = {"wlnu": 0.592, "qcd": 0.338, "zll": 0.067, "ttbar": 0.003}

# fraction of the pre-selection threshold a hard-process e / mu / tau must reach to pass the
# pre-filter: 4-5 standard deviations of the L1 resolution below it (muons: 10 %, e/gamma: ~4 %;
# a tau's visible products carry less than the tau)
PREFILTER_FRACTION: dict[int, float] = {11: 0.85, 13: 0.7, 15: 0.85}
PREFILTER_ETA = 2.8


@dataclass(frozen=True)
class Process:
    """One generator process: its Pythia settings and whether the lepton pre-filter applies."""

    name: str
    settings: tuple[str, ...]
    description: str
    prefilter: bool = True

    def pythia_settings(self, seed: int) -> list[str]:
        return [*BEAM_SETTINGS, f"Random:seed = {seed}", *self.settings]


_PROCESSES = (
    Process(
        "wlnu",
        ("WeakSingleBoson:ffbar2W = on", "24:onMode = off", "24:onIfAny = 11 13 15"),
        "W -> l nu (e, mu, tau)",
    ),
    Process(
        "qcd",
        (
            "HardQCD:all = on",
            "PhaseSpace:pTHatMin = 30.",
            "PhaseSpace:bias2Selection = on",
            "PhaseSpace:bias2SelectionPow = 2.",
            "PhaseSpace:bias2SelectionRef = 30.",
        ),
        "QCD 2->2, pTHat > 30 GeV, biased pTHat sampling with compensating weights",
        prefilter=False,
    ),
    Process(
        "zll",
        (
            "WeakSingleBoson:ffbar2gmZ = on",
            "WeakZ0:gmZmode = 2",
            "PhaseSpace:mHatMin = 40.",
            "23:onMode = off",
            "23:onIfAny = 11 13 15",
        ),
        "Z -> l l (e, mu, tau)",
    ),
    Process("ttbar", ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"), "t tbar, inclusive decays"),
    Process(
        "Ato4l",
        (
            "Higgs:useBSM = on",
            "HiggsBSM:gg2H2 = on",
            "35:m0 = 50.",
            "35:onMode = off",
            "35:onIfMatch = 23 23",
            "23:onMode = off",
            "23:onIfAny = 11 13",
        ),
        "neutral scalar A (50 GeV) -> Z Z* -> 4 l",
    ),
    Process(
        "leptoquark",
        (
            "LeptoQuark:gg2LQLQbar = on",
            "LeptoQuark:qqbar2LQLQbar = on",
            "42:m0 = 80.",
            "42:chargeType = 2",
            "42:0:products = 5 -15",
        ),
        "leptoquark pair (80 GeV), LQ -> b tau",
    ),
    Process(
        "hToTauTau",
        ("HiggsSM:gg2H = on", "25:m0 = 60.", "25:onMode = off", "25:onIfMatch = 15 -15"),
        "h0 (60 GeV) -> tau tau",
    ),
    Process(
        "hChToTauNu",
        (
            "Higgs:useBSM = on",
            "HiggsBSM:ffbar2H+- = on",
            "37:m0 = 60.",
            "37:onMode = off",
            "37:onIfMatch = 15 16",
        ),
        "charged scalar H+- (60 GeV) -> tau nu",
    ),
)

PROCESS_SETTINGS: dict[str, Process] = {p.name: p for p in _PROCESSES}
assert tuple(PROCESS_SETTINGS) == PROCESSES

GENERATABLE = ("background", *BACKGROUND_PROCESSES, *SIGNAL_PROCESSES)


def get_process(name: str) -> Process:
    """The settings of one process (not ``background``, which is a mixture of them)."""
    try:
        return PROCESS_SETTINGS[name]
    except KeyError:
        raise ValueError(f"unknown process {name!r}; known: {', '.join(GENERATABLE)}") from None


def mix_counts(n: int, fractions: dict[str, float] = MIX_FRACTIONS) -> dict[str, int]:
    """Split n events over the mixture, largest remainder first, so the counts sum to n."""
    if n <= 0:
        raise ValueError(f"number of events must be positive, got {n}")
    exact = {k: n * f / sum(fractions.values()) for k, f in fractions.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[:left]:
        counts[k] += 1
    return counts


def check_enrichment(enrich: Mapping[str, float]) -> None:
    """Raise ValueError naming a factor that is not a background process's or not a number >= 1."""
    if not isinstance(enrich, Mapping):
        raise ValueError(f"enrich must map processes to factors, got {enrich!r}")
    for name, factor in enrich.items():
        if name not in MIX_FRACTIONS:
            raise ValueError(
                f"enrich: {name!r} is not a process of the background mixture; "
                f"known: {', '.join(MIX_FRACTIONS)}"
            )
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or factor < 1
        ):
            raise ValueError(f"enrich: the factor of {name} must be a number >= 1, got {factor!r}")


def enriched_mix_counts(n: int, enrich: Mapping[str, float] | None = None) -> dict[str, int]:
    """:func:`mix_counts` with each process of ``enrich`` generated ``factor`` times more.

    Enriching a rare process (tt̄ is 0.3 % of the mixture but much of the autoencoders' tail)
    leaves the physics as it is: the generator scales that process's weights so that their sum
    stays its plain count (mean weight 1/factor), and every other process keeps its events.
    """
    enrich = enrich or {}
    check_enrichment(enrich)
    return {p: round(c * enrich.get(p, 1)) for p, c in mix_counts(n).items()}


def mixture_cpu_seconds_per_event(
    cpu_seconds_per_event: dict[str, float], fractions: dict[str, float] = MIX_FRACTIONS
) -> float:
    """CPU seconds per accepted event of the background mixture, from each component's own:
    the fraction-weighted mean of the per-event costs (not of the rates)."""
    total = sum(fractions.values())
    return sum(f / total * cpu_seconds_per_event[p] for p, f in fractions.items())
