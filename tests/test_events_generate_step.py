"""The ``events`` pipeline stage: cached default dataset, artifacts, report and summary."""

from __future__ import annotations

import hashlib

import pytest
from rich.console import Console

from l1ad.pipeline import RunContext, resolve_config
from l1ad.report import Report, add_step
from l1ad.steps import events as events_step
from offline.events import cache, read_events, write_events
from offline.events.cache import cache_path, cached_generate
from offline.events.processes import mix_counts


def _context(tmp_path, **overrides) -> RunContext:
    config = resolve_config(None)
    config["cache_dir"] = str(tmp_path / "cache")
    config["seed"] = 5
    config["events"] |= {
        "background_events": 30,
        "signal_events": 8,
        "signals": ["Ato4l"],
        "workers": 1,
    }
    config["events"] |= overrides
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return RunContext(config=config, run_dir=run_dir, console=Console(quiet=True))


def _run(ctx: RunContext) -> tuple:
    """The stage's result, its summary.json figures and its report text."""
    samples = events_step.run(ctx)
    report = Report("test", ctx.run_dir)
    return samples, add_step(report, events_step.NAME, samples)["events"], report.render()


@pytest.mark.slow
def test_events_stage_generates_once_then_reuses_the_cache(tmp_path, monkeypatch):
    ctx = _context(tmp_path)
    samples, summary, report = _run(ctx)
    assert set(samples.signals) == {"Ato4l"}
    assert len(read_events(samples.background)) == 30
    assert summary["counts"] == {"background": 30, "Ato4l": 8}
    assert summary["events_per_s"] > 0 and summary["from_cache"] is False
    assert 0 < summary["preselection_efficiency"]["qcd"] < 1
    assert "background_pt.png" in report and "Ato4l_multiplicity.png" in report
    assert (ctx.run_dir / "events" / "events.csv").exists()

    # The second run must not generate: generation fails if called, and the cached files stay as they were.
    def no_generation(*args, **kwargs):
        raise AssertionError("the cached events were generated again")

    monkeypatch.setattr(cache, "generate_many", no_generation)
    files = [samples.background, *samples.signals.values()]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    again, summary2, _ = _run(_context(tmp_path))
    assert summary2["from_cache"] is True
    assert again.files == samples.files
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] == before
    assert summary2["counts"] == summary["counts"]
    assert summary2["preselection_efficiency"] == summary["preselection_efficiency"]


def test_events_stage_uses_given_files_instead_of_generating(tmp_path, toy_event_file):
    ctx = _context(
        tmp_path, background_file=str(toy_event_file), signal_files={"Ato4l": str(toy_event_file)}
    )
    samples, summary, _ = _run(ctx)
    assert samples.background == toy_event_file and samples.signals == {"Ato4l": toy_event_file}
    assert summary["counts"] == {"Ato4l": 2000, "background": 2000}
    assert not (tmp_path / "cache").exists()


def test_events_stage_rejects_bad_config_values(tmp_path):
    with pytest.raises(ValueError, match="signal_events"):
        events_step.run(_context(tmp_path, signal_events=0))
    with pytest.raises(ValueError, match="unknown signal"):
        events_step.run(_context(tmp_path, signals=["zprime"]))
    with pytest.raises(ValueError, match="does not exist"):
        events_step.run(_context(tmp_path, background_file=str(tmp_path / "missing.h5")))
    with pytest.raises(ValueError, match=r"events\.enrich: the factor of ttbar must be"):
        events_step.run(_context(tmp_path, enrich={"ttbar": 0}))


def test_an_enriched_background_is_cached_under_its_own_name_and_found_again(tmp_path):
    enrich = {"zll": 2}
    path = cache_path(tmp_path, "background", 30, seed=1, enrich=enrich)
    assert path != cache_path(tmp_path, "background", 30, seed=1)
    first = cached_generate(tmp_path, {"background": 30}, 1, 1, False, enrich=enrich)["background"]
    assert first.path == path and not first.from_cache
    assert len(read_events(path)) == 30 + mix_counts(30)["zll"]
    assert first.metadata["enrichment"] == {"zll": 2.0}
    again = cached_generate(tmp_path, {"background": 30}, 1, 1, False, enrich=enrich)
    assert again["background"].from_cache


def test_corrupt_cache_file_is_regenerated(tmp_path, toy_events):
    path = cache_path(tmp_path, "zll", 6, seed=1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not hdf5")
    first = cached_generate(tmp_path, {"zll": 6}, seed=1, workers=1, progress=False)["zll"]
    assert first.path == path and not first.from_cache and len(read_events(path)) == 6
    assert cached_generate(tmp_path, {"zll": 6}, seed=1, workers=1, progress=False)[
        "zll"
    ].from_cache
    write_events(path, toy_events[:5])  # wrong size for this key: regenerated
    assert not cached_generate(tmp_path, {"zll": 6}, seed=1, workers=1, progress=False)[
        "zll"
    ].from_cache
    assert cache_path(tmp_path, "zll", 6, seed=2) != path
