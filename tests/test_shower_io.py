"""CaloChallenge HDF5 layout: round trip and clear errors on bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from offline.generative import ShowerFileError, Showers, read_showers, write_showers
from offline.generative.io import read_shower_metadata


def _write_raw(path, energies, showers):
    with h5py.File(path, "w") as f:
        f["incident_energies"] = energies
        f["showers"] = showers


def test_round_trip_keeps_values_and_layout(tmp_path):
    rng = np.random.default_rng(0)
    data = Showers(rng.uniform(1e3, 1e5, 7), rng.exponential(1.0, (7, 368)).astype(np.float32))
    path = write_showers(tmp_path / "s.h5", data, {"generator": "test"})
    with h5py.File(path) as f:
        assert f["incident_energies"].shape == (7, 1)
        assert f["showers"].shape == (7, 368)
    back = read_showers(path)
    np.testing.assert_allclose(back.incident_energies, data.incident_energies)
    np.testing.assert_array_equal(back.showers, data.showers)
    assert read_shower_metadata(path) == {"generator": "test"}
    assert not list(tmp_path.glob(".*partial"))


def test_wrong_voxel_count_names_file_and_counts(tmp_path):
    path = tmp_path / "bad.h5"
    _write_raw(path, np.ones((3, 1)) * 1e3, np.ones((3, 533)))
    with pytest.raises(ShowerFileError, match=r"bad\.h5: showers have 533 voxels.*368"):
        read_showers(path)


def test_negative_energies_are_rejected_with_location(tmp_path):
    showers = np.ones((4, 368))
    showers[2, 17] = -0.5
    path = tmp_path / "neg.h5"
    _write_raw(path, np.ones((4, 1)) * 1e3, showers)
    with pytest.raises(ShowerFileError, match=r"negative voxel energies.*shower 2, voxel 17"):
        read_showers(path)
    _write_raw(path, np.array([[1e3], [-1.0], [1e3], [1e3]]), np.ones((4, 368)))
    with pytest.raises(ShowerFileError, match="incident energies must be positive"):
        read_showers(path)


def test_nan_missing_dataset_and_length_mismatch_are_rejected(tmp_path):
    showers = np.ones((2, 368))
    showers[1, 3] = np.nan
    path = tmp_path / "nan.h5"
    _write_raw(path, np.ones((2, 1)), showers)
    with pytest.raises(ShowerFileError, match="NaN"):
        read_showers(path)
    with h5py.File(tmp_path / "missing.h5", "w") as f:
        f["showers"] = np.ones((2, 368))
    with pytest.raises(ShowerFileError, match="missing dataset 'incident_energies'"):
        read_showers(tmp_path / "missing.h5")
    _write_raw(path, np.ones((3, 1)), np.ones((2, 368)))
    with pytest.raises(ShowerFileError, match="3 incident energies but 2 showers"):
        read_showers(path)
    with pytest.raises(ShowerFileError, match="no such file"):
        read_showers(tmp_path / "absent.h5")
    with pytest.raises(ValueError, match="negative"):
        write_showers(tmp_path / "w.h5", Showers(np.ones(1), -np.ones((1, 368))))
    assert not (tmp_path / "w.h5").exists()
