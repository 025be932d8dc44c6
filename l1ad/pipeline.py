"""``l1ad run``: every step in order, everything under one run directory.

The run directory is built beside its final place and renamed when the run
ends (``runs/.NAME.*.partial`` while it runs), so a failed or interrupted run
never leaves a half-written ``runs/NAME``; it replaces only an earlier run (never
a folder l1ad did not write), and two runs of one name cannot overlap (the
second stops at once). ``runs/latest`` points at the newest finished run.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from l1ad import __version__
from l1ad.config import load_config
from l1ad.interrupts import raise_if_interrupted
from l1ad.report import Report, add_step
from l1ad.steps import STEPS
from offline.artifacts import atomic_directory, check_replaceable, plain_name, write_json

if TYPE_CHECKING:
    from emulation.stage import TriggerEmulation
    from firmware.stage import FirmwareStageResult
    from offline.ad.stage import ADStageResult
    from offline.events.stage import EventSamples
    from quantize.stage import QuantizeStageResult

RUN_KIND = "run"  # atomic_directory replaces only earlier runs


@dataclass
class RunContext:
    """What a step sees: the resolved config, the run directory, and the result of each step that ran
    (None until it has)."""

    config: dict[str, Any]
    run_dir: Path
    console: Console
    events: EventSamples | None = None
    ad: ADStageResult | None = None
    quantize: QuantizeStageResult | None = None
    firmware: FirmwareStageResult | None = None
    emulation: TriggerEmulation | None = None

    @property
    def cache_dir(self) -> Path:
        return Path(self.config["cache_dir"])

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def step_dir(self, name: str) -> Path:
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def needed_by(self, step: str, needs: tuple[str, ...]) -> dict[str, Any]:
        """The results ``step`` needs, by step name; one line names the first step that has not run."""
        results = {}
        for name in needs:
            result = getattr(self, name, None)
            if result is None:
                raise ValueError(f"step {step!r} needs {name!r} to have run first")
            results[name] = result
        return results


def run_step(step: ModuleType, ctx: RunContext) -> Any:
    """Run one pipeline step with the results it needs; records its result in ``ctx``."""
    result = step.run(ctx, **ctx.needed_by(step.NAME, step.NEEDS))
    setattr(ctx, step.NAME, result)
    return result


def step_defaults() -> dict[str, dict[str, Any]]:
    return {step.NAME: step.DEFAULTS for step in STEPS if step.run is not None}


def resolve_config(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    return load_config(path, step_defaults())


def pipeline_steps(names: Sequence[str] | None = None) -> list[ModuleType]:
    """The pipeline's steps in order; with ``names``, only those (each checked by name)."""
    steps = [step for step in STEPS if step.run is not None]
    if names is None:
        return steps
    known = [step.NAME for step in steps]
    for name in names:
        if name not in known:
            raise ValueError(f"unknown step {name!r} (steps: {', '.join(known)})")
    return [step for step in steps if step.NAME in names]


def run_pipeline(
    config: dict[str, Any], console: Console | None = None, steps: Sequence[str] | None = None
) -> Path:
    """Run every step, or only ``steps`` (in pipeline order; a step whose inputs did not run
    stops with one line); returns the finished run directory (``runs/NAME``)."""
    console = console or Console(stderr=True, markup=False)
    selected = pipeline_steps(steps)
    check_names(config)
    runs_dir = Path(config["runs_dir"])
    final_dir = runs_dir / config["name"]
    check_replaceable(final_dir, RUN_KIND)
    summary: dict[str, Any] = {
        "l1ad_version": __version__,
        "python": platform.python_version(),
        "config": config,
    }
    started = time.perf_counter()
    with atomic_directory(final_dir, kind=RUN_KIND) as run_dir:
        report = Report(f"l1ad run `{config['name']}`", run_dir)
        ctx = RunContext(config=config, run_dir=run_dir, console=console)
        for step in selected:
            raise_if_interrupted()
            console.rule(Text(step.NAME, style="bold"))
            t0 = time.perf_counter()
            summary.update(add_step(report, step.NAME, run_step(step, ctx)))
            console.print(f"{step.NAME}: done in {time.perf_counter() - t0:.1f} s")
        summary["seconds"] = round(time.perf_counter() - started, 3)
        summary = _relocate(summary, str(run_dir), str(final_dir))
        write_json(run_dir / "summary.json", summary)
        (run_dir / "report.md").write_text(report.render().replace(str(run_dir), str(final_dir)))
        raise_if_interrupted()  # a signal whose exception was swallowed still stops the run here
    _point_latest(runs_dir, final_dir)
    return final_dir


def check_names(config: dict[str, Any]) -> None:
    """Names that become paths are single path components (checked before any work): the run name,
    the firmware project name and the signal names of ``events.signal_files`` (scores file names)."""
    name = plain_name(config.get("name"), "run name (--name or the config's 'name')")
    if name == "latest":
        raise ValueError("run name 'latest' is reserved: runs/latest links to the newest run")
    firmware = config.get("firmware")
    if isinstance(firmware, dict) and firmware.get("name") is not None:
        plain_name(firmware["name"], "firmware.name in the run config")
    events = config.get("events")
    signal_files = events.get("signal_files") if isinstance(events, dict) else None
    for signal in signal_files if isinstance(signal_files, dict) else ():
        plain_name(signal, "a signal name in events.signal_files")


def _relocate(obj: Any, old: str, new: str) -> Any:
    """Paths that steps recorded inside the temporary run directory, as they will be after the rename."""
    if isinstance(obj, str):
        return new + obj[len(old) :] if obj.startswith(old) else obj
    if isinstance(obj, dict):
        return {k: _relocate(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_relocate(v, old, new) for v in obj]
    return obj


def _point_latest(runs_dir: Path, final_dir: Path) -> None:
    latest = runs_dir / "latest"
    tmp = runs_dir / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(final_dir.name)
    os.replace(tmp, latest)
