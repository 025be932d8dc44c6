"""The generator's L1 response (MET and jets only for events passing the pre-selection) against the full one.

With the resolutions and the MET smearing switched off, the response is deterministic, so
the fast path must give exactly the full response's rows of the passing events: an exact
oracle for everything but the random numbers (whose distributions both paths share).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import pythia8mc

from offline.events.l1_response import (
    L1Config,
    l1_objects,
    passes_preselection,
    preselected_l1_objects,
)
from offline.events.processes import get_process

EXACT = L1Config(
    egamma_resolution=(0.0, 0.0),
    muon_resolution=(0.0, 0.0),
    jet_resolution=(0.0, 0.0),
    met_stochastic=0.0,
)


def pythia_batch(process: str, n: int, seed: int):
    pythia = pythia8mc.Pythia("", False)
    for line in get_process(process).pythia_settings(seed):
        assert pythia.readString(line)
    assert pythia.init()
    return pythia.nextBatch(n)


@pytest.mark.parametrize(
    ("process", "config"),
    [("qcd", EXACT), ("wlnu", EXACT), ("wlnu", dataclasses.replace(EXACT, iso_max=1.0))],
)
def test_preselected_response_equals_the_full_response_of_passing_events(process, config):
    batch = pythia_batch(process, 60, seed=17)
    full = l1_objects(batch, np.random.default_rng(0), config)
    passing = np.flatnonzero(passes_preselection(full, config))
    fast, selected = preselected_l1_objects(batch, np.random.default_rng(1), config)
    assert 0 < len(passing) < 60, "the sample holds passing and failing events"
    np.testing.assert_array_equal(selected, passing)
    np.testing.assert_array_equal(fast, full[passing])


def test_no_event_passing_gives_empty_arrays():
    batch = pythia_batch("qcd", 5, seed=3)
    fast, selected = preselected_l1_objects(
        batch, np.random.default_rng(0), L1Config(preselection_pt=1e6)
    )
    assert fast.shape == (0, 19, 4) and selected.shape == (0,)
