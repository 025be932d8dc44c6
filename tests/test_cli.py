"""The command line: inspect on foreign files, clear errors, the run directory layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
import typer
from typer.testing import CliRunner

from l1ad.cli import app

runner = CliRunner(env={"COLUMNS": "200"})  # no line wrapping in captured output


def _command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the click group typer builds, as its argv prefix (``shower train`` ...)."""
    paths = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer may bundle its own click)
            paths += _command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_command_list_is_introspected_not_written_down():
    assert {("run",), ("inspect",), ("train",), ("firmware",), ("emulate",)} <= set(COMMANDS)
    assert any(len(path) == 2 for path in COMMANDS)  # subcommands (shower ...) are included


def test_top_level_help_lists_every_command_with_an_explanation():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        explanation = (command.get_short_help_str(limit=200) or "").strip()
        assert explanation, f"command {name!r} has no help text"
        assert name in result.output and explanation[:30] in result.output


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_its_explanation_and_options(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert f"{' '.join(path)} [OPTIONS]" in " ".join(
        result.output.split()
    )  # the usage line of this command
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    assert command.help and command.help.split("\n")[0].strip()[:30] in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output


def test_inspect_summarises_a_file_written_by_h5py_directly(tmp_path, toy_events):
    path = tmp_path / "adc2021.h5"
    with h5py.File(path, "w") as f:  # the ADC2021 layout, not our writer
        f.create_dataset("Particles", data=toy_events.particles)
    plots = tmp_path / "plots"
    result = runner.invoke(app, ["inspect", str(path), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    assert "2000 events" in result.output
    assert "weights: none" in result.output
    assert sorted(p.name for p in plots.glob("*.png")) == [
        "adc2021_eta.png",
        "adc2021_multiplicity.png",
        "adc2021_phi.png",
        "adc2021_pt.png",
    ]


def test_inspect_reports_labels_and_weights_of_our_files(toy_event_file):
    result = runner.invoke(app, ["inspect", str(toy_event_file)])
    assert result.exit_code == 0, result.output
    assert "labels: wlnu 2000" in result.output
    assert "generator: wlnu, seed 7" in result.output


def test_inspect_of_a_corrupt_file_fails_with_one_clear_line(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1
    assert "broken.h5" in result.output and "truncated or corrupt" in result.output
    assert "Traceback" not in result.output


def test_run_rejects_an_unknown_config_key_naming_it(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("nmae: typo\n")
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 1
    assert "unknown key 'nmae'" in result.output


def test_config_file_overrides_defaults_and_is_resolved(tmp_path):
    from l1ad.pipeline import resolve_config

    config = tmp_path / "c.yaml"
    config.write_text(f"name: mine\nseed: 5\nruns_dir: {tmp_path / 'runs'}\n")
    resolved = resolve_config(config)
    assert resolved["name"] == "mine" and resolved["seed"] == 5


def test_scale_config_asks_for_the_scale_the_trigger_needs():
    """configs/scale.yaml resolves (no unknown key) and asks for >= 1e6 background and >= 1e5
    events per signal, an ABCD scan down to eps_B = 1e-4 and the 1/5/10 kHz operating points."""
    from l1ad.pipeline import resolve_config

    config = resolve_config(Path(__file__).resolve().parent.parent / "configs" / "scale.yaml")
    events, ad = config["events"], config["ad"]
    assert events["background_events"] >= 1_000_000 and events["signal_events"] >= 100_000
    assert min(ad["eps_b"]) <= 1e-4 and max(ad["eps_b"]) >= 5e-2
    assert ad["rates_khz"] == [1.0, 5.0, 10.0]
    # >= 1 000 injected signal events in the test split
    test_events = events["background_events"] * ad["split"][2]
    assert test_events * ad["injection"] >= 1000


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("events,bogus", "unknown step 'bogus' (steps: events, ad, quantize, firmware, emulation)"),
        ("ad", "step 'ad' needs 'events' to have run first"),
    ],
)
def test_run_of_chosen_steps_checks_them_and_leaves_no_run_behind(tmp_path, steps, message):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: part\nruns_dir: {tmp_path / 'runs'}\ncache_dir: {tmp_path / 'cache'}\n"
    )
    result = runner.invoke(app, ["run", "--config", str(config), "--steps", steps])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "runs" / "part").exists()
