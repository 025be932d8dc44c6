"""Atomic output directories: whole or not at all, never replacing what l1ad did not write, one writer at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offline.artifacts import (
    MARKER_FILE,
    atomic_directory,
    check_replaceable,
    deferred_interrupts,
    plain_name,
)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../escaped", "a/b", "a\\b", "nul\0byte", ".hidden", "/abs"]
)
def test_plain_name_refuses_anything_but_one_path_component(name):
    with pytest.raises(ValueError, match=r"--name must be a plain name") as err:
        plain_name(name, "--name")
    assert repr(name) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["run1", "twin", "my-model_v2.1", "ε_B"])
def test_plain_name_accepts_ordinary_names(name):
    assert plain_name(name, "--name") == name


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_failure_inside_leaves_neither_the_output_nor_a_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out", kind="abcd") as tmp:
        (tmp / "half.csv").write_text("1,2\n")
        raise RuntimeError("disk full")
    assert _files(tmp_path) == set()


def test_success_replaces_an_earlier_output_of_the_same_kind_and_marks_the_new_one(tmp_path):
    for text in ("first", "second"):
        with atomic_directory(tmp_path / "out", kind="abcd") as tmp:
            (tmp / "metrics.json").write_text(text)
    assert (tmp_path / "out" / "metrics.json").read_text() == "second"
    assert _files(tmp_path) == {
        "out",
        "out/metrics.json",
        f"out/{MARKER_FILE}",
    }  # no lock, .old or .partial left


@pytest.mark.parametrize("existing", ["foreign", "other-kind", "file"])
def test_an_existing_path_that_l1ad_did_not_write_as_this_kind_is_never_replaced(
    tmp_path, existing
):
    target = tmp_path / "out"
    if existing == "file":
        target.write_text("the user's notes")
    elif existing == "foreign":
        target.mkdir()
        (target / "thesis.tex").write_text("the user's work")
    else:
        with atomic_directory(target, kind="shower-model") as tmp:
            (tmp / "teacher.safetensors").write_text("weights")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    ran = []
    with pytest.raises(ValueError, match=r"out: exists and is .*refusing to replace it") as err:
        with atomic_directory(target, kind="abcd"):
            ran.append(True)
    assert not ran  # refused before any work
    assert "\n" not in str(err.value)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_an_empty_existing_directory_may_be_filled(tmp_path):
    (tmp_path / "out").mkdir()
    check_replaceable(tmp_path / "out", "abcd")
    with atomic_directory(tmp_path / "out", kind="abcd") as tmp:
        (tmp / "a").write_text("x")
    assert (tmp_path / "out" / "a").exists()


@pytest.mark.parametrize("target", [".", "..", "sub/.."])
def test_a_target_that_is_not_a_directory_name_is_refused(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not a directory l1ad can write"):
        with atomic_directory(target, kind="run"):
            pass
    assert (tmp_path / "keep.txt").exists()


def test_a_second_writer_of_the_same_output_fails_at_once_while_the_first_holds_it(tmp_path):
    target = tmp_path / "twin"
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time, pathlib\n"
                "from offline.artifacts import atomic_directory\n"
                f"with atomic_directory({str(target)!r}, kind='run') as tmp:\n"
                "    (tmp / 'summary.json').write_text('{}')\n"
                f"    pathlib.Path({str(ready)!r}).touch()\n"
                "    time.sleep(3)\n"
            ),
        ],
        cwd=Path(__file__).parent.parent,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline, (
                "lock holder did not start"
            )
            time.sleep(0.05)
        with pytest.raises(ValueError, match=r"twin: another l1ad process is writing it now"):
            with atomic_directory(target, kind="run"):
                pass
    finally:
        assert holder.wait(timeout=60) == 0
    assert (target / "summary.json").exists()  # the first writer finished undisturbed
    with atomic_directory(target, kind="run") as tmp:  # and the lock is free again
        (tmp / "summary.json").write_text("{}")


def test_a_signal_inside_deferred_interrupts_reaches_its_handler_only_after_the_block():
    events: list[str] = []

    def handler(signum, frame):
        events.append("handler")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the interpreter runs pending handlers between bytecodes
            events.append("second write")
        events.append("after")
        assert events == ["second write", "handler", "after"]
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
