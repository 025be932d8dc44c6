"""Byte-level corruption of the files l1ad reads (hypothesis): a clear error or the right values, nothing else.

Corruptions: truncation, bit flips and overwritten byte runs of a valid file. For each, the
reader must either raise one of the CLI's user errors (ValueError, OSError: ``error: ...`` and
exit 1), within seconds, or return values that are right:

- event files (``offline.events``): every read value equals what was written. The writer
  checksums data chunks (Fletcher-32) and metadata (HDF5 1.8 format), so damage to anything
  read is detected; damage elsewhere (free space, unread datasets) is harmless.
- FirmwareSpec (``spec.json`` + ``weights.safetensors``): JSON has no checksum, so a flipped
  digit can give another *valid* spec. The loader's promise is validity: what loads
  round-trips through ``to_dict`` unchanged, its weights are on their grids, and the emulator
  and the firmware's preprocessing type accept it.
"""

from __future__ import annotations

import contextlib
import signal

import numpy as np
import pytest
from conftest import make_toy_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulation import TriggerEmulator
from offline.ad.model import preset
from offline.events import event_count, read_events, read_metadata, write_events
from offline.preprocess import Preprocessing
from quantize import QuantConfig, build_spec, random_quantized_weights
from quantize.spec import FirmwareSpec, load_spec, load_weights, preprocess_type

USER_ERRORS = (ValueError, OSError)  # what l1ad/errors.py turns into one line and exit 1
FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SECONDS = 20  # a read that takes longer than this counts as a hang


@contextlib.contextmanager
def no_hang(seconds: int = SECONDS):
    def fail(signum, frame):
        raise AssertionError(f"reader still running after {seconds} s (hang)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# A corruption of a file: truncation, 1-4 bit flips, or an overwritten run of up to 64 bytes.
# Positions are drawn in a wide range and taken modulo the file's size.
POSITION = st.integers(0, 2**24)
CORRUPTION = st.one_of(
    st.tuples(st.just("truncate"), POSITION),
    st.tuples(
        st.just("flip"), st.lists(st.tuples(POSITION, st.integers(0, 7)), min_size=1, max_size=4)
    ),
    st.tuples(st.just("overwrite"), st.tuples(POSITION, st.binary(min_size=1, max_size=64))),
)


class Original(bytes):
    """A valid file's bytes, with a short repr for hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


def corrupt(data: bytes, change) -> bytes:
    kind, edit = change
    out = bytearray(data)
    if kind == "truncate":
        return bytes(out[: edit % len(out)])
    if kind == "flip":
        for pos, bit in edit:
            out[pos % len(out)] ^= 1 << bit
        return bytes(out)
    start, new = edit
    start %= len(out)
    out[start : start + len(new)] = new[: len(out) - start]
    return bytes(out)


# ---- HDF5 event files ----------------------------------------------------------------------------

EVENTS = make_toy_events(200, seed=5)
METADATA = {"process": "wlnu", "seed": 5, "generator": "toy"}


@pytest.fixture(scope="module")
def event_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "events.h5"
    write_events(path, EVENTS, METADATA)
    return Original(path.read_bytes())


def test_event_file_corruption_fixture_is_read_back_exactly(tmp_path, event_bytes):
    path = tmp_path / "ok.h5"
    path.write_bytes(event_bytes)
    _assert_same(read_events(path))
    assert read_metadata(path) == METADATA


def _assert_same(events) -> None:
    assert np.array_equal(events.particles, EVENTS.particles)
    assert np.array_equal(events.weights, EVENTS.weights)
    assert np.array_equal(events.labels, EVENTS.labels)


@FUZZ
@given(change=CORRUPTION)
def test_corrupt_event_file_is_a_clear_error_or_read_exactly(tmp_path, event_bytes, change):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(corrupt(event_bytes, change))
    with no_hang():
        try:
            n = event_count(path)
            events = read_events(path)
        except USER_ERRORS as err:
            assert str(path) in str(err)
        else:
            assert n == len(EVENTS)
            _assert_same(events)
        try:
            meta = read_metadata(path)
        except USER_ERRORS as err:
            assert str(path) in str(err)
        else:
            assert meta == METADATA


# ---- FirmwareSpec ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec_files(tmp_path_factory):
    spec = build_spec(
        preset("firmware"),
        QuantConfig(),
        Preprocessing(tuple(range(57)), tuple([6] * 57)),
        thresholds=(12.5, 7.25),
    )
    weights = random_quantized_weights(spec, seed=3, sparsity=0.5)
    root = tmp_path_factory.mktemp("spec")
    spec.save(root, weights)
    return Original((root / "spec.json").read_bytes()), Original(
        (root / "weights.safetensors").read_bytes()
    )


WORDS = np.random.default_rng(0).integers(-300, 300, size=(16, 57))


def _assert_usable(spec: FirmwareSpec, directory) -> None:
    """What loaded is a spec the emulator and the firmware both take."""
    assert FirmwareSpec.from_dict(spec.to_dict()) == spec
    preprocess_type(spec)
    try:
        weights = load_weights(spec, directory)
    except USER_ERRORS as err:
        assert str(directory) in str(err)
        return
    out = TriggerEmulator(spec, weights)(WORDS)
    assert len(out.r1) == len(WORDS)


@FUZZ
@given(change=CORRUPTION)
def test_corrupt_spec_json_is_a_clear_error_or_a_valid_spec(tmp_path, spec_files, change):
    spec_bytes, weight_bytes = spec_files
    (tmp_path / "spec.json").write_bytes(corrupt(spec_bytes, change))
    (tmp_path / "weights.safetensors").write_bytes(weight_bytes)
    with no_hang():
        try:
            spec = load_spec(tmp_path)
        except USER_ERRORS as err:
            assert str(tmp_path / "spec.json") in str(err)
        else:
            _assert_usable(spec, tmp_path)


@FUZZ
@given(change=CORRUPTION)
def test_corrupt_spec_weights_are_a_clear_error_or_on_their_grids(tmp_path, spec_files, change):
    spec_bytes, weight_bytes = spec_files
    (tmp_path / "spec.json").write_bytes(spec_bytes)
    (tmp_path / "weights.safetensors").write_bytes(corrupt(weight_bytes, change))
    with no_hang():
        _assert_usable(load_spec(tmp_path), tmp_path)
