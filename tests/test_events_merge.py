"""``l1ad merge``: independent files of one sample become one file; anything else is refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from l1ad.cli import app
from offline.events import read_events, read_metadata, write_events
from offline.events.io import Events, concatenate
from tests.conftest import make_toy_events

runner = CliRunner(env={"COLUMNS": "200"})


def generated_like(n_w: int, n_q: int, seed: int, shard=(0, 1), **changes) -> tuple[Events, dict]:
    """A W + QCD mixture with the metadata layout of ``l1ad generate`` (figures made up)."""
    events = concatenate(
        [make_toy_events(n_w, seed, "wlnu"), make_toy_events(n_q, seed + 1, "qcd")]
    )
    meta = {
        "process": "background",
        "generator": "pythia8mc + fastjet + l1ad L1 response",
        "generator_version": "2",
        "seed": seed,
        "shard": list(shard),
        "l1_config": {"preselection_pt": 23.0},
        "events": len(events),
        "components": {
            "wlnu": {
                "events": n_w,
                "generated": 3 * n_w,
                "prefilter_vetoed": n_w,
                "cpu_seconds": n_w / 60,
            },
            "qcd": {
                "events": n_q,
                "generated": 10 * n_q,
                "prefilter_vetoed": 0,
                "cpu_seconds": n_q / 15,
            },
        },
    } | changes
    return events, meta


def write(tmp_path, name, pair):
    return write_events(tmp_path / name, pair[0], pair[1])


def test_merge_keeps_every_event_once_and_sums_the_production(tmp_path):
    first, second = generated_like(300, 100, seed=1), generated_like(200, 150, seed=2)
    a, b = write(tmp_path, "a.h5", first), write(tmp_path, "b.h5", second)
    out = tmp_path / "merged.h5"
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f, h5py.File(a) as fa, h5py.File(b) as fb:  # h5py as the oracle
        np.testing.assert_array_equal(
            f["Particles"][:], np.concatenate([fa["Particles"][:], fb["Particles"][:]])
        )
        labels, weights = f["labels"][:], f["weights"][:]
    for label in np.unique(labels):
        assert weights[labels == label].mean() == pytest.approx(1.0, rel=1e-12)
    meta = read_metadata(out)
    qcd = meta["components"]["qcd"]
    assert (qcd["events"], qcd["generated"]) == (250, 2500)
    assert qcd["preselection_efficiency"] == pytest.approx(0.1)
    assert qcd["events_per_cpu_s"] == pytest.approx(15.0)
    w = weights[labels == labels[-1]]
    assert qcd["effective_events"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert [m["seed"] for m in meta["merged_from"]] == [1, 2]
    assert meta["label_counts"] == {"wlnu": 500, "qcd": 250}


def test_foreign_files_are_concatenated_as_they_are(tmp_path):
    parts = [make_toy_events(50, s) for s in (3, 4)]
    paths = [write_events(tmp_path / f"{i}.h5", Events(p.particles)) for i, p in enumerate(parts)]
    out = tmp_path / "m.h5"
    assert runner.invoke(app, ["merge", *map(str, paths), "--out", str(out)]).exit_code == 0
    np.testing.assert_array_equal(
        read_events(out).particles, np.concatenate([p.particles for p in parts])
    )


@pytest.mark.parametrize(
    ("second", "named"),
    [
        (generated_like(10, 10, seed=1), "same seed 1 and shard 0/1"),
        (generated_like(10, 10, seed=2, l1_config={"preselection_pt": 30.0}), "l1_config"),
        (generated_like(10, 10, seed=2, process="wlnu"), "process is 'wlnu'"),
        ((make_toy_events(10, 5), {}), "foreign"),
    ],
    ids=["same-events", "other-l1-response", "other-process", "foreign-with-generated"],
)
def test_files_that_are_not_one_sample_are_refused_in_one_line_and_nothing_is_written(
    tmp_path, second, named
):
    a = write(tmp_path, "a.h5", generated_like(10, 10, seed=1))
    b = write(tmp_path, "b.h5", second)
    out = tmp_path / "merged.h5"
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 1
    assert named in result.output and str(b) in result.output
    assert result.output.strip().count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]


def test_merging_into_an_input_is_refused(tmp_path):
    a = write(tmp_path, "a.h5", generated_like(10, 10, seed=1))
    b = write(tmp_path, "b.h5", generated_like(10, 10, seed=2))
    before = a.read_bytes()
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(a)])
    assert result.exit_code == 1 and "also an input" in result.output
    assert a.read_bytes() == before
