"""Shared fixtures and marker handling."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from offline.events import Events, write_events
from offline.events.schema import OBJECT_ROWS, process_label


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA (no GPU here)")
    skip_hls = pytest.mark.skip(reason="needs g++ for hls4ml C simulation / ap_types")
    has_gxx = shutil.which("g++") is not None
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "hls" in item.keywords and not has_gxx:
            item.add_marker(skip_hls)


def make_toy_events(n: int, seed: int, process: str = "wlnu") -> Events:
    """Deterministic events in the ADC2021 layout: exponential pT, uniform eta/phi, random multiplicities.

    Shaped only loosely like physics; for I/O, preprocessing and plumbing tests, never physics checks.
    """
    rng = np.random.default_rng(seed)
    particles = np.zeros((n, 19, 4), dtype=np.float32)
    particles[:, 0, 0] = rng.exponential(30.0, n)
    particles[:, 0, 2] = rng.uniform(-np.pi, np.pi, n)
    particles[:, 0, 3] = 1
    for obj, (first, count, code) in OBJECT_ROWS.items():
        if obj == "met":
            continue
        k = rng.integers(0, count + 1, n)
        pt = np.sort(rng.exponential(25.0, (n, count)) + 3.0, axis=1)[:, ::-1]
        present = np.arange(count)[None, :] < k[:, None]
        rows = slice(first, first + count)
        particles[:, rows, 0] = np.where(present, pt, 0)
        particles[:, rows, 1] = np.where(present, rng.uniform(-2.5, 2.5, (n, count)), 0)
        particles[:, rows, 2] = np.where(present, rng.uniform(-np.pi, np.pi, (n, count)), 0)
        particles[:, rows, 3] = np.where(present, code, 0)
    weights = rng.uniform(0.5, 1.5, n)
    labels = np.full(n, process_label(process), dtype=np.int32)
    return Events(particles, weights, labels)


@pytest.fixture(scope="session")
def toy_events() -> Events:
    return make_toy_events(2000, seed=7)


@pytest.fixture(scope="session")
def toy_event_file(tmp_path_factory: pytest.TempPathFactory, toy_events: Events):
    path = tmp_path_factory.mktemp("events") / "toy.h5"
    write_events(path, toy_events, metadata={"process": "wlnu", "seed": 7, "generator": "toy"})
    return path


def run_one_step(step, config: dict, run_dir, console=None, **earlier):
    """One ``l1ad run`` step through ``l1ad.pipeline.run_step``, ``earlier`` standing in for the results
    of the steps before it (objects with the attributes the step reads). Returns the step's result,
    its ``summary.json`` figures and its report text."""
    from rich.console import Console

    from l1ad.pipeline import RunContext, run_step
    from l1ad.report import Report, add_step

    ctx = RunContext(
        config=config, run_dir=run_dir, console=console or Console(quiet=True), **earlier
    )
    result = run_step(step, ctx)
    report = Report("t", run_dir)
    figures = add_step(report, step.NAME, result)
    return result, figures, report.render()
