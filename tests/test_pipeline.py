"""The shape of ``l1ad run``: what each step needs, and one default per option for the CLI and the pipeline."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from rich.console import Console

from l1ad.cli import app
from l1ad.config import GLOBAL_DEFAULTS
from l1ad.pipeline import RunContext, run_step
from l1ad.steps import STEPS

PIPELINE = [step for step in STEPS if step.run is not None]


def _context(tmp_path: Path) -> RunContext:
    config = {**GLOBAL_DEFAULTS, **{step.NAME: step.DEFAULTS for step in PIPELINE}}
    return RunContext(config=config, run_dir=tmp_path, console=Console(quiet=True))


def test_a_step_run_without_what_it_needs_names_the_missing_step(tmp_path):
    from l1ad.steps import firmware

    with pytest.raises(ValueError, match=r"^step 'firmware' needs 'quantize' to have run first$"):
        run_step(firmware, _context(tmp_path))
    assert list(tmp_path.iterdir()) == []  # stopped before writing anything


@pytest.mark.parametrize("step", [s for s in PIPELINE if s.NEEDS], ids=lambda s: s.NAME)
def test_every_step_that_needs_another_refuses_to_run_without_it(step, tmp_path):
    with pytest.raises(
        ValueError, match=rf"^step '{step.NAME}' needs '{step.NEEDS[0]}' to have run first$"
    ):
        run_step(step, _context(tmp_path))


def test_steps_need_only_earlier_steps_and_take_exactly_what_they_declare():
    order = [step.NAME for step in PIPELINE]
    for step in PIPELINE:
        assert all(order.index(need) < order.index(step.NAME) for need in step.NEEDS), step.NAME
        params = list(inspect.signature(step.run).parameters)
        assert params == ["ctx", *step.NEEDS], step.NAME
        assert step.NAME in {f.name for f in RunContext.__dataclass_fields__.values()}


# CLI parameter -> pipeline config key, where the names differ only by the unit
CONFIG_KEY = {"clock_period": "clock_period_ns", "latency_budget": "latency_budget_ns"}
# None in the pipeline: "take it from that other step's config"
INHERITED = {("quantize", "rate_khz"): ("ad", "rate_khz")}
# Deliberate differences, each with its reason. The yosys synthesis of the default model takes
# minutes: the firmware command runs it (it is what a user of `l1ad firmware` asks for), a default
# `l1ad run` opts in through firmware.yosys.
DIFFERENT_ON_PURPOSE = {("firmware", "yosys")}
# CLI options naming a file that holds the setting; without one the command uses the library's
# default, which is the pipeline's (checked in the test below)
FROM_FILE = {("quantize", "precision")}


def _pipeline_defaults(step) -> dict[str, object]:
    """The step's config keys with their defaults; nested mappings (quantize.qat) flattened into it."""
    flat: dict[str, object] = {"seed": GLOBAL_DEFAULTS["seed"]}
    for key, value in step.DEFAULTS.items():
        if isinstance(value, dict) and key == "qat":
            flat.update(value)
        else:
            flat[key] = value
    defaults = {step.NAME: step.DEFAULTS for step in PIPELINE}
    for (name, key), (other, other_key) in INHERITED.items():
        if name == step.NAME and flat.get(key) is None:
            flat[key] = defaults[other][other_key]
    return flat


def _commands_of(step) -> list:
    return [c.callback for c in app.registered_commands if c.callback.__module__ == step.__name__]


def _as_config_value(cli_default: object, pipeline_default: object) -> object:
    """A CLI default in the pipeline's form: comma-separated text where the pipeline has a list,
    repeated KEY=VALUE options (None: none given) where it has a mapping."""
    if isinstance(pipeline_default, list) and isinstance(cli_default, str):
        kind = type(pipeline_default[0]) if pipeline_default else float
        return [kind(float(v)) for v in cli_default.split(",") if v.strip()]
    if isinstance(pipeline_default, dict) and (
        cli_default is None or isinstance(cli_default, list)
    ):
        return {k: float(v) for k, v in (item.split("=") for item in cli_default or [])}
    return cli_default


def test_every_cli_option_default_is_the_pipeline_default_of_the_same_name():
    compared = []
    for step in PIPELINE:
        defaults = _pipeline_defaults(step)
        commands = _commands_of(step)
        assert commands, f"no command registered from {step.__name__}"
        for command in commands:
            for name, param in inspect.signature(command).parameters.items():
                key = CONFIG_KEY.get(name, name)
                if key not in defaults or (step.NAME, key) in DIFFERENT_ON_PURPOSE:
                    continue
                default = (
                    param.default
                )  # typer's Annotated style: the Python default is the option's
                if (step.NAME, key) in FROM_FILE and default is None:
                    continue
                assert _as_config_value(default, defaults[key]) == defaults[key], (
                    f"{command.__name__} --{name.replace('_', '-')} defaults to {default!r}, "
                    f"the pipeline's {step.NAME}.{key} to {defaults[key]!r}"
                )
                compared.append(f"{step.NAME}.{key}")
    # the options the two share (a guard that the comparison above is not vacuous)
    for key in (
        "ad.min_region_events",
        "ad.device",
        "ad.lam",
        "ad.epochs",
        "quantize.scan_bits",
        "quantize.rate_khz",
        "firmware.clock_period_ns",
        "firmware.csim_events",
        "firmware.strategy",
        "emulation.chunk_size",
        "events.seed",
    ):
        assert key in compared, key


def test_the_option_defaults_that_used_to_differ_are_one_value():
    from l1ad.steps import ad, quantize
    from offline.ad.defaults import DEFAULT_MIN_REGION_EVENTS
    from offline.ad.workflow import evaluate_scores
    from quantize.precision import QuantConfig

    assert (
        quantize.DEFAULTS["precision"] == QuantConfig().to_dict()
    )  # `l1ad quantize` without --precision
    assert ad.DEFAULTS["min_region_events"] == DEFAULT_MIN_REGION_EVENTS
    assert (
        inspect.signature(ad.abcd).parameters["min_region_events"].default
        == DEFAULT_MIN_REGION_EVENTS
    )
    assert (
        inspect.signature(evaluate_scores).parameters["min_region_events"].default
        == DEFAULT_MIN_REGION_EVENTS
    )
