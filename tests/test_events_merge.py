"""``l1ad merge``: independent files of one sample become one file; anything else is refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from l1ad.cli import app
from offline.events import read_events, read_metadata, write_events
from offline.events.io import Events, concatenate
from offline.events.schema import process_label
from tests.conftest import make_toy_events

runner = CliRunner(env={"COLUMNS": "200"})


# a mixture of W and QCD 2:1 with a rare tt̄ (fractions need not sum to 1)
FRACTIONS = {"wlnu": 2.0, "qcd": 1.0, "ttbar": 0.03}
COST = {
    "wlnu": (3, 60),
    "qcd": (10, 15),
    "ttbar": (2, 68),
    "Ato4l": (16, 40),
}  # generated per event, events per CPU s


def generated_like(
    counts: dict[str, int], seed: int, shard=(0, 1), **changes
) -> tuple[Events, dict]:
    """Events with the metadata layout of ``l1ad generate`` (production figures made up)."""
    events = concatenate(
        [make_toy_events(n, seed + i, p) for i, (p, n) in enumerate(counts.items())]
    )
    meta = {
        "process": "background" if len(counts) > 1 else next(iter(counts)),
        "generator": "pythia8mc + fastjet + l1ad L1 response",
        "generator_version": "2",
        "seed": seed,
        "shard": list(shard),
        "l1_config": {"preselection_pt": 23.0},
        "mix_fractions": FRACTIONS if len(counts) > 1 else None,
        "events": len(events),
        "components": {
            p: {"events": n, "generated": COST[p][0] * n, "cpu_seconds": n / COST[p][1]}
            for p, n in counts.items()
        },
    } | changes
    return events, meta


def mixture(seed: int, **changes) -> tuple[Events, dict]:
    return generated_like({"wlnu": 200, "qcd": 100, "ttbar": 3}, seed, **changes)


def write(tmp_path, name, pair):
    return write_events(tmp_path / name, pair[0], pair[1])


def weights_by_process(path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path) as f:  # h5py, not our reader, as the oracle
        return f["labels"][:], f["weights"][:]


def test_merge_keeps_every_event_once_and_sums_the_production(tmp_path):
    a, b = write(tmp_path, "a.h5", mixture(1)), write(tmp_path, "b.h5", mixture(2))
    out = tmp_path / "merged.h5"
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f, h5py.File(a) as fa, h5py.File(b) as fb:
        np.testing.assert_array_equal(
            f["Particles"][:], np.concatenate([fa["Particles"][:], fb["Particles"][:]])
        )
    labels, weights = weights_by_process(out)
    for label in np.unique(labels):  # the mixture's own shares: every process keeps mean weight 1
        assert weights[labels == label].mean() == pytest.approx(1.0, rel=1e-12)
    meta = read_metadata(out)
    qcd = meta["components"]["qcd"]
    assert (qcd["events"], qcd["generated"]) == (200, 2000)
    assert qcd["preselection_efficiency"] == pytest.approx(0.1)
    assert qcd["events_per_cpu_s"] == pytest.approx(15.0)
    w = weights[labels == process_label("qcd")]
    assert qcd["effective_events"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert [m["seed"] for m in meta["merged_from"]] == [1, 2]
    assert meta["label_counts"] == {"wlnu": 400, "qcd": 200, "ttbar": 6}


def test_a_component_file_enriches_its_process_at_unchanged_mixture_fractions(tmp_path):
    a = write(tmp_path, "a.h5", mixture(1))
    tt = write(tmp_path, "tt.h5", generated_like({"ttbar": 297}, seed=9))
    out = tmp_path / "enriched.h5"
    assert runner.invoke(app, ["merge", str(a), str(tt), "--out", str(out)]).exit_code == 0
    labels, weights = weights_by_process(out)
    assert len(labels) == 303 + 297
    for process in ("wlnu", "qcd"):  # not enriched: mean weight 1, as in the plain mixture
        assert weights[labels == process_label(process)].mean() == pytest.approx(1, rel=1e-12)
    ttbar = weights[labels == process_label("ttbar")]
    assert ttbar.sum() == pytest.approx(3, rel=1e-12)  # its plain count: 303 · 0.03 / 3.03
    _, before = weights_by_process(a)
    _, supplement = weights_by_process(tt)
    inputs = np.concatenate([before[-3:], supplement])  # tt̄ is the last block of the mixture
    np.testing.assert_allclose(ttbar / inputs, ttbar[0] / inputs[0], rtol=1e-12)  # shapes kept
    assert read_metadata(out)["enrichment"] == pytest.approx({"ttbar": 100.0})  # 300 for 3


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
        (mixture(1), "same seed 1 and shard 0/1"),
        (mixture(2, l1_config={"preselection_pt": 30.0}), "l1_config"),
        (mixture(2, mix_fractions={"wlnu": 1.0}), "mix_fractions"),
        (generated_like({"Ato4l": 10}, seed=2), "process is 'Ato4l'"),
        ((make_toy_events(10, 5), {}), "foreign"),
    ],
    ids=[
        "same-events",
        "other-l1-response",
        "other-mixture",
        "other-process",
        "foreign-with-generated",
    ],
)
def test_files_that_are_not_one_sample_are_refused_in_one_line_and_nothing_is_written(
    tmp_path, second, named
):
    a = write(tmp_path, "a.h5", mixture(1))
    b = write(tmp_path, "b.h5", second)
    out = tmp_path / "merged.h5"
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 1
    assert named in result.output and str(b) in result.output
    assert result.output.strip().count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]


def test_merging_into_an_input_is_refused(tmp_path):
    a, b = write(tmp_path, "a.h5", mixture(1)), write(tmp_path, "b.h5", mixture(2))
    before = a.read_bytes()
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(a)])
    assert result.exit_code == 1 and "also an input" in result.output
    assert a.read_bytes() == before
