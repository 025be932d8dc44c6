"""Jet samples through the event generator's engine: task seeds, the parts cache, resume and
extension, the Dask path, and the Vincia shower's shape difference from Pythia's default."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from offline.unfold.jets import generate_jets
from offline.unfold.production import parts_directory, produce_jets, task_seed

TASK = 20  # events per task: small, the point is the bookkeeping


def test_a_larger_job_extends_a_smaller_one_and_resumes_its_tasks(tmp_path):
    small = produce_jets(2 * TASK, "simulation", 3, tmp_path, task_events=TASK)
    large = produce_jets(3 * TASK, "simulation", 3, tmp_path, task_events=TASK)
    assert int(small["resumed_tasks"]) == 0 and int(large["resumed_tasks"]) == 2
    assert len(large["gen"]) == 3 * TASK and len(large["cpu_seconds"]) == 3
    for key in ("gen", "reco", "pass_gen", "gen_particles", "reco_mask"):
        np.testing.assert_array_equal(large[key][: 2 * TASK], small[key])
    # a task's events depend on its own seed only: generated alone, they are the same
    alone = generate_jets(TASK, "simulation", task_seed(3, 2))
    np.testing.assert_array_equal(alone["gen"], large["gen"][2 * TASK :])


def test_a_damaged_part_is_regenerated_and_other_settings_start_over(tmp_path):
    first = produce_jets(2 * TASK, "simulation", 4, tmp_path, task_events=TASK)
    parts = parts_directory(tmp_path, "simulation", 4)
    (parts / "task-000001.npz").write_bytes(b"not a zip file")
    again = produce_jets(2 * TASK, "simulation", 4, tmp_path, task_events=TASK)
    assert int(again["resumed_tasks"]) == 1
    np.testing.assert_array_equal(again["gen"], first["gen"])
    # another task size is another job: its manifest replaces the parts, nothing is reused
    other = produce_jets(TASK, "simulation", 4, tmp_path, task_events=TASK // 2)
    assert int(other["resumed_tasks"]) == 0
    assert json.loads((parts / "manifest.json").read_text())["task_events"] == TASK // 2


def test_dask_workers_give_the_same_events_as_this_process(tmp_path):
    here = produce_jets(2 * TASK, "simulation", 5, None, task_events=TASK)
    dask = produce_jets(2 * TASK, "simulation", 5, tmp_path, task_events=TASK, workers=2)
    for key in ("gen", "reco", "pass_reco", "reco_particles"):
        np.testing.assert_array_equal(dask[key], here[key])


def test_bad_production_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown jet configuration 'herwig'"):
        produce_jets(10, "herwig", 1, tmp_path)
    with pytest.raises(ValueError, match="events must be >= 1"):
        produce_jets(0, "simulation", 1, tmp_path)
    with pytest.raises(ValueError, match="task_events must be >= 1"):
        produce_jets(10, "simulation", 1, tmp_path, task_events=0)


@pytest.mark.slow
def test_vincia_shower_differs_from_pythia_default_at_five_sigma(request):
    """6000 events each: Vincia's leading jets lose more p⊥ out of the R = 0.4 cone, so at
    the same hard-process cut (p̂⊥ > 140 GeV) fewer reach the 150 GeV jet selection: the
    jet p⊥ spectrum's shape near the threshold (0.47 against 0.54 of events; ~7.8σ
    expected). The oracle is scipy's χ² test of the 2×2 table, independent of the
    generator; it must give p < 5.7e-7 (5σ, two-sided), and must not separate two
    independent Pythia-default samples (p > 1e-3). The substructure observables differ
    less: τ₂₁ reaches 5σ only at ~8000 jets (KS, measured on the study's samples). The
    samples are kept in pytest's cache, so a second run takes seconds."""
    cache = request.config.cache.mkdir("unfold_jet_parts")
    events = 6000
    default = produce_jets(events, "simulation", 11, cache)
    vincia = produce_jets(events, "vincia", 12, cache)
    again = produce_jets(events, "simulation", 13, cache)

    def p_value(a, b) -> float:
        table = [[a.sum(), len(a) - a.sum()], [b.sum(), len(b) - b.sum()]]
        return stats.chi2_contingency(table).pvalue

    assert p_value(default["pass_gen"], vincia["pass_gen"]) < 2 * stats.norm.sf(5)
    assert p_value(default["pass_gen"], again["pass_gen"]) > 1e-3
