"""Level-1 objects from generator final-state particles: the L1 response, in one place.

Pythia gives stable particles; the L1 trigger sees calorimeter clusters, muon
tracks and jets, measured with finite resolution on a coarse grid. This module
turns one batch of Pythia events (the awkward array of ``Pythia.nextBatch``)
into the ADC2021 layout (N, 19, 4): MET, up to 4 e/gamma, 4 muons and 10
jets, pT-ordered and zero-padded. It is a parametrised detector, not Geant4
(Geant4 cannot run offline, see docs/toolchain.md); every number it
uses lives in :class:`L1Config` so that users can change it in one place.

The numbers and where they come from
------------------------------------
Acceptance (CMS detector geometry, CMS Collaboration, JINST 3 (2008) S08004):

- calorimeters to |eta| < 5.0 (HF), so MET and jet inputs use |eta| < 5.0;
- e/gamma (ECAL + tracker) to |eta| < 2.5; muons (muon system) to |eta| < 2.4;
- jets kept to |eta| < 4.0: the ADC2021 files zero jets beyond 4
  (Govorkova et al., Sci. Data 9 (2022) 118, arXiv 2107.02157).

Objects:

- jets: anti-kT, R = 0.4 (FastJet; the CMS and ADC2021 jet definition) on all
  visible final-state particles but muons (minimum-ionising: the calorimeter
  sees little of them) and neutrinos; kept above 15 GeV after smearing
  (our choice, the order of the L1 jet seed thresholds; ADC2021 jets start
  near 15-20 GeV). No overlap removal with e/gamma: at L1, jets and e/gamma
  are built independently from the same trigger towers.
- e/gamma: L1 EG candidates are compact electromagnetic clusters that do not
  tell electrons from photons. We cluster e+- and photons with anti-kT R = 0.1
  (about 2x2 trigger towers of 0.087, the size of a CMS L1 EG cluster) and
  keep clusters above 3 GeV after smearing.
- muons: stable muons in acceptance above 3 GeV after smearing (the lowest
  L1 muon thresholds are a few GeV).
- lepton isolation (e/gamma and muons): the relative isolation is the scalar
  pT sum of visible particles within dR < 0.3 (the CMS isolation cone), minus
  the object's own pT, over the object's pT. ``iso_max`` drops leptons above
  it. The default is None (no requirement), as at L1: CMS L1 EG and muon
  candidates are delivered isolated or not (isolation is a quality bit that
  the ADC2021 layout has no column for). Requiring isolation also makes QCD
  too rare to generate: measured here (Pythia QCD, pTHat > 25 GeV), the
  fraction of events passing the pre-selection falls from 18.5 % (none) to
  11 % (iso_max = 2), 3.7 % (1.0) and 0.3 % (0.25, an offline-like cut as in
  the ADC2021 Delphes samples). Set ``L1Config(iso_max=0.25)`` for
  ADC2021-like isolated leptons where the CPU time is there.
- MET: minus the vector sum of the transverse momenta of visible final-state
  particles in acceptance (muons within |eta| < 2.4, all other visible
  particles within |eta| < 5), then each component smeared by
  sigma = 0.7 GeV^0.5 * sqrt(sum ET) (stochastic term of the order of CMS
  calorimeter MET resolution; CMS, JINST 14 (2019) P07004 quotes ~0.5-0.6
  sqrt(sum ET) for particle-flow MET, L1 is coarser). Row 0, eta = 0.

Resolution (relative, Gaussian, sigma/pT = a/sqrt(pT/GeV) (+) b, added in
quadrature; representative of CMS L1 performance, CMS, JINST 15 (2020)
P10017, where EG reaches a few %, jets 10-20 %, L1 muons 10-20 %):

- e/gamma: a = 0.10, b = 0.03;
- muons: a = 0, b = 0.10;
- jets: a = 1.0, b = 0.08.

Granularity: after smearing, pT, eta and phi are rounded to the hardware LSBs
of :data:`offline.preprocess.HARDWARE_LSB` (0.5 GeV, 0.0435, 2 pi / 144), so
``to_hardware`` of what we write is exact. Thresholds apply to rounded pT.

Pre-selection (ADC2021, Sci. Data 9 (2022) 118): at least one e/gamma or
muon object with pT > 23 GeV.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import awkward as ak
import numpy as np

from offline.events.schema import N_COLUMNS, N_OBJECTS, OBJECT_ROWS
from offline.preprocess import HARDWARE_LSB

NEUTRINOS = (12, 14, 16)
# stable invisible particles of BSM models (neutralino, gravitino, dark matter) are treated as neutrinos
INVISIBLE_BSM = (1000022, 1000039, 51, 52, 53)


@dataclass(frozen=True)
class L1Config:
    """Every number of the L1 response (see the module docstring for sources)."""

    calo_eta_max: float = 5.0
    jet_eta_max: float = 4.0
    egamma_eta_max: float = 2.5
    muon_eta_max: float = 2.4
    jet_r: float = 0.4
    egamma_cluster_r: float = 0.1
    jet_pt_min: float = 15.0
    egamma_pt_min: float = 3.0
    muon_pt_min: float = 3.0
    iso_cone: float = 0.3
    iso_max: float | None = None
    # relative resolution sigma/pT = a / sqrt(pT) (+) b
    egamma_resolution: tuple[float, float] = (0.10, 0.03)
    muon_resolution: tuple[float, float] = (0.0, 0.10)
    jet_resolution: tuple[float, float] = (1.0, 0.08)
    met_stochastic: float = 0.7
    preselection_pt: float = 23.0
    lsb: dict[str, float] = field(default_factory=lambda: dict(HARDWARE_LSB))

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_L1 = L1Config()


@dataclass
class _Flat:
    """Flat per-particle (or per-object) arrays with the event each belongs to."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray

    def __getitem__(self, mask: np.ndarray) -> _Flat:
        return _Flat(self.event[mask], self.pt[mask], self.eta[mask], self.phi[mask])


def _kinematics(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    return pt, eta, np.arctan2(py, px)


def _delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def _cluster(parts: ak.Array, radius: float, min_pt: float) -> _Flat:
    """Anti-kT jets of each event (FastJet, awkward API), as flat arrays."""
    import fastjet

    n = len(parts)
    if n == 0 or ak.sum(ak.num(parts)) == 0:
        empty = np.zeros(0)
        return _Flat(empty.astype(np.int64), empty, empty, empty)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    jets = fastjet.ClusterSequence(parts, jetdef).inclusive_jets(min_pt=min_pt)
    counts = ak.to_numpy(ak.num(jets))
    px, py, pz = (ak.to_numpy(ak.flatten(jets[c])).astype(np.float64) for c in ("px", "py", "pz"))
    pt, eta, phi = _kinematics(px, py, pz)
    return _Flat(np.repeat(np.arange(n), counts), pt, eta, phi)


def _momenta(p4: tuple[np.ndarray, ...], event: np.ndarray, mask: np.ndarray, n: int) -> ak.Array:
    """Jagged (per-event) four-momenta of the masked flat particles, for FastJet."""
    fields = {name: c[mask] for name, c in zip(("px", "py", "pz", "E"), p4, strict=True)}
    return ak.unflatten(
        ak.zip(fields, with_name="Momentum4D"), np.bincount(event[mask], minlength=n)
    )


def _isolation(objects: _Flat, cands: _Flat, offsets: np.ndarray, cone: float) -> np.ndarray:
    """Sum pT of ``cands`` particles within ``cone`` of each object (cands sorted by event)."""
    if len(objects.pt) == 0:
        return np.zeros(0)
    start, stop = offsets[objects.event], offsets[objects.event + 1]
    sizes = stop - start
    obj_index = np.repeat(np.arange(len(objects.pt)), sizes)
    part_index = (
        np.arange(sizes.sum())
        - np.repeat(np.cumsum(sizes) - sizes, sizes)
        + np.repeat(start, sizes)
    )
    deta = objects.eta[obj_index] - cands.eta[part_index]
    dphi = _delta_phi(objects.phi[obj_index], cands.phi[part_index])
    inside = deta * deta + dphi * dphi < cone * cone
    return np.bincount(
        obj_index[inside], weights=cands.pt[part_index][inside], minlength=len(objects.pt)
    )


def relative_isolation(
    objects: _Flat, cands: _Flat, offsets: np.ndarray, cone: float
) -> np.ndarray:
    """(sum pT within the cone - own pT) / own pT."""
    return (_isolation(objects, cands, offsets, cone) - objects.pt) / np.maximum(objects.pt, 1e-9)


def _isolated(
    objects: _Flat, cands: _Flat | None, offsets: np.ndarray | None, config: L1Config
) -> _Flat:
    if config.iso_max is None or cands is None or offsets is None:
        return objects
    return objects[relative_isolation(objects, cands, offsets, config.iso_cone) < config.iso_max]


def _smear(pt: np.ndarray, resolution: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    a, b = resolution
    sigma = np.sqrt(a * a / np.maximum(pt, 1e-9) + b * b)
    return pt * np.maximum(1.0 + sigma * rng.standard_normal(len(pt)), 0.0)


def quantize(values: np.ndarray, lsb: float) -> np.ndarray:
    """Round to the nearest multiple of ``lsb`` (the hardware word times the LSB)."""
    return np.rint(values / lsb) * lsb


def quantize_phi(phi: np.ndarray, lsb: float) -> np.ndarray:
    """Round phi to its LSB and wrap into [-pi, pi): +pi and -pi are one hardware word."""
    steps = round(2 * math.pi / lsb)
    words = np.rint(phi / lsb).astype(np.int64)
    words = (words + steps // 2) % steps - steps // 2
    return words * lsb


def _fill_rows(out: np.ndarray, obj: str, objects: _Flat) -> None:
    """Put the highest-pT objects of each event into their rows, pT-ordered, zero-padded."""
    first, count, code = OBJECT_ROWS[obj]
    if len(objects.pt) == 0:
        return
    order = np.lexsort((-objects.pt, objects.event))
    event = objects.event[order]
    starts = np.searchsorted(event, event, side="left")
    rank = np.arange(len(event)) - starts
    keep = rank < count
    e, r, o = event[keep], rank[keep] + first, order[keep]
    out[e, r, 0] = objects.pt[o]
    out[e, r, 1] = objects.eta[o]
    out[e, r, 2] = objects.phi[o]
    out[e, r, 3] = code


def _respond(
    objects: _Flat,
    resolution: tuple[float, float],
    pt_min: float,
    eta_max: float,
    config: L1Config,
    rng: np.random.Generator,
) -> _Flat:
    """Smear, quantise, then apply threshold and acceptance."""
    pt = quantize(_smear(objects.pt, resolution, rng), config.lsb["pt"])
    eta = quantize(objects.eta, config.lsb["eta"])
    phi = quantize_phi(objects.phi, config.lsb["phi"])
    out = _Flat(objects.event, pt, eta, phi)
    return out[(pt > pt_min) & (np.abs(eta) < eta_max)]


@dataclass
class _FinalState:
    """Stable particles of a batch of events, flat, with the event each belongs to."""

    n: int
    event: np.ndarray
    absid: np.ndarray
    p4: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray

    @classmethod
    def of(cls, batch: ak.Array) -> _FinalState:
        prt = batch.prt
        final = prt[prt.status > 0]
        counts = ak.to_numpy(ak.num(final))
        absid = np.abs(ak.to_numpy(ak.flatten(final.id)))
        px, py, pz, e = (ak.to_numpy(ak.flatten(final.p[c])) for c in ("px", "py", "pz", "e"))
        pt, eta, phi = _kinematics(px, py, pz)
        return cls(
            len(batch),
            np.repeat(np.arange(len(batch)), counts),
            absid,
            (px, py, pz, e),
            pt,
            eta,
            phi,
        )

    def select(self, events: np.ndarray) -> _FinalState:
        """The particles of the given events (sorted indices), renumbered 0..len(events)-1."""
        new_index = np.full(self.n, -1)
        new_index[events] = np.arange(len(events))
        keep = new_index[self.event] >= 0
        return _FinalState(
            len(events),
            new_index[self.event[keep]],
            self.absid[keep],
            tuple(c[keep] for c in self.p4),
            self.pt[keep],
            self.eta[keep],
            self.phi[keep],
        )

    @property
    def visible(self) -> np.ndarray:
        return ~np.isin(self.absid, NEUTRINOS + INVISIBLE_BSM)

    def flat(self, mask: np.ndarray) -> _Flat:
        return _Flat(self.event, self.pt, self.eta, self.phi)[mask]


def _fill_met(out: np.ndarray, fs: _FinalState, config: L1Config, rng: np.random.Generator) -> None:
    """MET from visible particles in acceptance, smeared by the stochastic term, into row 0."""
    n, event, px, py = fs.n, fs.event, fs.p4[0], fs.p4[1]
    in_calo = np.abs(fs.eta) < config.calo_eta_max
    met_in = fs.visible & np.where(fs.absid == 13, np.abs(fs.eta) < config.muon_eta_max, in_calo)
    mex: np.ndarray = -np.bincount(event[met_in], weights=px[met_in], minlength=n)
    mey: np.ndarray = -np.bincount(event[met_in], weights=py[met_in], minlength=n)
    sum_et = np.bincount(event[met_in], weights=fs.pt[met_in], minlength=n)
    sigma = config.met_stochastic * np.sqrt(sum_et)
    mex = mex + sigma * rng.standard_normal(n)
    mey = mey + sigma * rng.standard_normal(n)
    met = quantize(np.hypot(mex, mey), config.lsb["pt"])
    out[:, 0, 0] = met
    out[:, 0, 2] = np.where(met > 0, quantize_phi(np.arctan2(mey, mex), config.lsb["phi"]), 0.0)
    out[:, 0, 3] = np.where(met > 0, OBJECT_ROWS["met"][2], 0)


def _leptons(fs: _FinalState, config: L1Config, rng: np.random.Generator) -> tuple[_Flat, _Flat]:
    """L1 muons and e/gamma clusters (smeared, quantised, in acceptance), as flat objects."""
    # isolation cone contents: visible particles near the central region, grouped by event
    iso_parts = iso_offsets = None
    if config.iso_max is not None:
        iso_mask = fs.visible & (
            np.abs(fs.eta) < max(config.egamma_eta_max, config.muon_eta_max) + config.iso_cone
        )
        iso_parts = fs.flat(iso_mask)
        iso_offsets = np.concatenate([[0], np.cumsum(np.bincount(iso_parts.event, minlength=fs.n))])
    is_muon = fs.absid == 13
    mu_mask = (
        is_muon & (np.abs(fs.eta) < config.muon_eta_max + 0.1) & (fs.pt > 0.5 * config.muon_pt_min)
    )
    muons = _isolated(fs.flat(mu_mask), iso_parts, iso_offsets, config)
    muons = _respond(
        muons, config.muon_resolution, config.muon_pt_min, config.muon_eta_max, config, rng
    )
    is_em = (fs.absid == 11) | (fs.absid == 22)
    em_mask = is_em & (np.abs(fs.eta) < config.egamma_eta_max + config.egamma_cluster_r)
    clusters = _cluster(
        _momenta(fs.p4, fs.event, em_mask, fs.n),
        config.egamma_cluster_r,
        0.5 * config.egamma_pt_min,
    )
    clusters = _isolated(clusters, iso_parts, iso_offsets, config)
    clusters = _respond(
        clusters, config.egamma_resolution, config.egamma_pt_min, config.egamma_eta_max, config, rng
    )
    return muons, clusters


def _jets(fs: _FinalState, config: L1Config, rng: np.random.Generator) -> _Flat:
    """L1 jets: anti-kT R = 0.4 on visible particles but muons, smeared, quantised, in acceptance."""
    jet_mask = fs.visible & (fs.absid != 13) & (np.abs(fs.eta) < config.calo_eta_max)
    jets = _cluster(
        _momenta(fs.p4, fs.event, jet_mask, fs.n), config.jet_r, 0.5 * config.jet_pt_min
    )
    return _respond(jets, config.jet_resolution, config.jet_pt_min, config.jet_eta_max, config, rng)


def l1_objects(
    batch: ak.Array, rng: np.random.Generator, config: L1Config = DEFAULT_L1
) -> np.ndarray:
    """Pythia events (``nextBatch`` output) -> L1 objects, (N, 19, 4) float32 in the ADC2021 layout.

    Every event gets its full response. The generator uses :func:`preselected_l1_objects`,
    which gives the events passing the pre-selection the same response (same distributions,
    other random numbers) without computing MET and jets of the others.
    """
    fs = _FinalState.of(batch)
    out = np.zeros((fs.n, N_OBJECTS, N_COLUMNS), dtype=np.float32)
    if fs.n == 0:
        return out
    _fill_met(out, fs, config, rng)
    muons, clusters = _leptons(fs, config, rng)
    _fill_rows(out, "muon", muons)
    _fill_rows(out, "egamma", clusters)
    _fill_rows(out, "jet", _jets(fs, config, rng))
    return out


def preselected_l1_objects(
    batch: ak.Array, rng: np.random.Generator, config: L1Config = DEFAULT_L1
) -> tuple[np.ndarray, np.ndarray]:
    """L1 objects of the events passing the pre-selection, and those events' indices in the batch.

    The pre-selection needs only the e/gamma and muon objects, so they are made first, for
    every event; MET and jets (the large anti-kT R = 0.4 clustering) only for the events
    that pass. Each event's response is independent of the others', so the passing events'
    objects are distributed exactly as in :func:`l1_objects` followed by
    :func:`passes_preselection`.
    """
    fs = _FinalState.of(batch)
    if fs.n == 0:
        return np.zeros((0, N_OBJECTS, N_COLUMNS), dtype=np.float32), np.zeros(0, dtype=np.int64)
    muons, clusters = _leptons(fs, config, rng)
    hard = np.concatenate(
        [
            muons.event[muons.pt > config.preselection_pt],
            clusters.event[clusters.pt > config.preselection_pt],
        ]
    )
    passed = np.unique(hard)
    old_to_new = np.full(fs.n, -1)
    old_to_new[passed] = np.arange(len(passed))
    out = np.zeros((len(passed), N_OBJECTS, N_COLUMNS), dtype=np.float32)
    for name, objects in (("muon", muons), ("egamma", clusters)):
        mine = old_to_new[objects.event] >= 0
        kept = objects[mine]
        _fill_rows(out, name, _Flat(old_to_new[kept.event], kept.pt, kept.eta, kept.phi))
    if len(passed):
        sub = fs.select(passed)
        _fill_met(out, sub, config, rng)
        _fill_rows(out, "jet", _jets(sub, config, rng))
    return out, passed


def passes_preselection(particles: np.ndarray, config: L1Config = DEFAULT_L1) -> np.ndarray:
    """ADC2021 pre-selection: at least one e/gamma or muon object with pT above threshold."""
    first, count = OBJECT_ROWS["egamma"][0], OBJECT_ROWS["egamma"][1] + OBJECT_ROWS["muon"][1]
    return np.asarray((particles[:, first : first + count, 0] > config.preselection_pt).any(axis=1))
