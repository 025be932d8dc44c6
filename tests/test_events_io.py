"""Event files: round trips, chunked reading, foreign ADC2021 files, and every validation error."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from offline.events import (
    EventFileError,
    event_count,
    iter_events,
    read_events,
    read_metadata,
    write_events,
)
from offline.events.io import Events, flatten_features
from offline.events.schema import feature_names


def test_round_trip_keeps_particles_weights_labels_and_metadata_exactly(tmp_path, toy_events):
    path = write_events(tmp_path / "e.h5", toy_events, metadata={"process": "wlnu", "seed": 3})
    back = read_events(path)
    np.testing.assert_array_equal(back.particles, toy_events.particles)
    np.testing.assert_array_equal(back.weights, toy_events.weights)
    np.testing.assert_array_equal(back.labels, toy_events.labels)
    assert read_metadata(path) == {"process": "wlnu", "seed": 3}


def test_chunked_reading_yields_every_event_once_in_order(toy_event_file, toy_events):
    blocks = list(iter_events(toy_event_file, chunk_size=333))
    assert [len(b) for b in blocks] == [333] * 6 + [2]
    np.testing.assert_array_equal(
        np.concatenate([b.particles for b in blocks]), toy_events.particles
    )


def test_features_are_pt_eta_phi_of_the_19_objects_in_row_order(toy_events):
    f = flatten_features(toy_events.particles)
    assert f.shape == (len(toy_events), 57)
    np.testing.assert_array_equal(f[:, 27:30], toy_events.particles[:, 9, :3])  # leading jet
    assert feature_names()[27:30] == ["jet0_pt", "jet0_eta", "jet0_phi"]


def write_foreign(path, particles, **extra):
    """A file written by h5py directly, as ADC2021 ships them."""
    with h5py.File(path, "w") as f:
        f.create_dataset("Particles", data=particles)
        f.create_dataset("Particles_Names", data=np.array([b"Pt", b"Eta", b"Phi", b"Class"]))
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


def test_foreign_adc2021_file_loads_unchanged_without_weights_or_labels(tmp_path, toy_events):
    path = write_foreign(tmp_path / "adc.h5", toy_events.particles)
    events = read_events(path)
    assert events.weights is None and events.labels is None
    np.testing.assert_array_equal(events.event_weights, np.ones(len(toy_events)))
    assert read_metadata(path) == {}
    assert event_count(path) == len(toy_events)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, ev: write_foreign(p, ev.particles[:, :, :3]), "shape"),
        (lambda p, ev: write_foreign(p, ev.particles.reshape(-1, 4)), "shape"),
        (lambda p, ev: write_foreign(p, ev.particles.astype(np.int32)), "dtype"),
        (lambda p, ev: write_foreign(p, np.zeros((0, 19, 4), np.float32)), "no events"),
        (lambda p, ev: write_foreign(p, ev.particles, weights=np.ones(5)), "'weights' has shape"),
        (
            lambda p, ev: write_foreign(p, ev.particles, labels=np.full(len(ev), 99)),
            "not a known process",
        ),
        (
            lambda p, ev: write_foreign(p, ev.particles, labels=np.ones(len(ev))),
            "expected integers",
        ),
    ],
    ids=[
        "missing-class-column",
        "flat",
        "integer-dtype",
        "empty",
        "weights-length",
        "unknown-label",
        "float-labels",
    ],
)
def test_malformed_file_is_rejected_with_the_problem_named(tmp_path, toy_events, make, message):
    path = make(tmp_path / "bad.h5", toy_events)
    with pytest.raises(EventFileError, match=message) as err:
        read_events(path)
    assert str(path) in str(err.value)


def test_missing_particles_dataset_names_what_was_found(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("jets", data=np.zeros((3, 4)))
    with pytest.raises(EventFileError, match=r"missing dataset 'Particles' \(found: jets\)"):
        read_events(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected_naming_the_first_bad_event(tmp_path, toy_events, bad):
    particles = toy_events.particles.copy()
    particles[1234, 10, 1] = bad
    path = write_foreign(tmp_path / "nan.h5", particles)
    with pytest.raises(EventFileError, match=r"NaN or inf \(first at event 1234"):
        read_events(path)


def test_non_finite_weights_are_rejected(tmp_path, toy_events):
    weights = toy_events.weights.copy()
    weights[5] = np.nan
    path = write_foreign(tmp_path / "w.h5", toy_events.particles, weights=weights)
    with pytest.raises(EventFileError, match="'weights' holds NaN"):
        read_events(path)


def test_truncated_file_is_reported_as_truncated_or_corrupt(tmp_path, toy_event_file):
    data = toy_event_file.read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EventFileError, match="truncated or corrupt"):
        read_events(path)


def test_not_an_hdf5_file_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(EventFileError, match="not a readable HDF5 file"):
        event_count(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(EventFileError, match="does not exist"):
        read_events(tmp_path / "nope.h5")


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, toy_events):
    path = write_events(tmp_path / "e.h5", toy_events[:10])
    bad = Events(toy_events.particles[:10].copy(), toy_events.weights[:10], toy_events.labels[:10])
    bad.particles[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_events(path, bad)
    assert len(read_events(path)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.h5"]
