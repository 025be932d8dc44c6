"""Generation on Dask: same bytes on any executor, resuming killed jobs, clean interrupts.

Every job here is zll (among the cheapest processes) in tasks of 2 accepted events: a
few seconds of Pythia each. The oracle for "same bytes" is the in-process run, which
uses no Dask at all.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from l1ad.steps import events as events_step
from offline.events import generate as generate_module
from offline.events import read_events, read_metadata
from offline.events.engine import MANIFEST, PartStore, TaskResult, parts_directory_for
from offline.events.generate import generate, generate_to_file

ROOT = Path(__file__).resolve().parents[1]
PROCESS, EVENTS, SEED, TASK_SIZE = "zll", 12, 31, 2  # 6 tasks


@functools.cache
def in_process():
    return generate(PROCESS, EVENTS, SEED, workers=1, progress=False, task_size=TASK_SIZE)


def assert_same_bytes(events, reference) -> None:
    assert events.particles.tobytes() == reference.particles.tobytes()
    assert events.weights.tobytes() == reference.weights.tobytes()
    assert events.labels.tobytes() == reference.labels.tobytes()


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def test_local_cluster_output_is_byte_identical_to_one_process():
    reference = in_process()
    # Dask's default dashboard port held by someone else (another cluster, a notebook) must not matter
    with contextlib.suppress(OSError), socket.create_server(("0.0.0.0", 8787)):
        held = generate(
            PROCESS, EVENTS, SEED, workers=2, progress=False, task_size=TASK_SIZE, scheduler="local"
        )
        assert_same_bytes(held.events, reference.events)
    dask = generate(
        PROCESS, EVENTS, SEED, workers=2, progress=False, task_size=TASK_SIZE, scheduler="local"
    )
    assert dask.metadata["tasks"] == 6 and dask.metadata["scheduler"] == "local"
    assert_same_bytes(dask.events, reference.events)


def _wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"dask scheduler did not come up: {log.read_text()}")
        time.sleep(0.2)


def test_scheduler_and_two_workers_in_separate_processes_give_identical_bytes(tmp_path):
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]  # the `dask` command
    log = tmp_path / "scheduler.log"
    with open(log, "w") as stream:
        procs = [
            subprocess.Popen(
                [
                    *dask,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(scheduler_file),
                ],
                env=_env(),
                stdout=stream,
                stderr=stream,
            )
        ]
    try:
        _wait_for(scheduler_file, procs[0], log)
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        *dask,
                        "worker",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--no-nanny",
                        "--host",
                        "127.0.0.1",
                        "--scheduler-file",
                        str(scheduler_file),
                    ],
                    env=_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            pids = set(client.run(os.getpid).values())
        assert pids == {p.pid for p in procs[1:]}, "the two workers are the processes started here"
        assert json.loads(scheduler_file.read_text())["address"].startswith("tcp://127.0.0.1:")
        remote = generate(
            PROCESS,
            EVENTS,
            SEED,
            workers=2,
            progress=False,
            task_size=TASK_SIZE,
            scheduler=str(scheduler_file),
        )
        assert_same_bytes(remote.events, in_process().events)
    finally:
        # workers first, each gone before the scheduler they report to is stopped (a worker
        # whose scheduler vanished mid-shutdown can wait out its comm timeouts)
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_sigterm_stops_generate_cleanly_and_the_rerun_resumes_without_redoing_finished_tasks(
    tmp_path, monkeypatch
):
    out = tmp_path / "zll.h5"
    parts = parts_directory_for(out)
    cmd = [
        sys.executable,
        "-m",
        "l1ad",
        "generate",
        "--process",
        PROCESS,
        "--events",
        str(EVENTS),
        "--seed",
        str(SEED),
        "--task-size",
        str(TASK_SIZE),
        "--workers",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while not list(parts.glob("task-*.npz")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no task finished in 180 s"
        time.sleep(0.1)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "workers > 1 runs worker processes"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "interrupted by SIGTERM" in stderr, stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary output left"
    _, alive = psutil.wait_procs(
        children, timeout=2
    )  # the workers are stopped before generate exits
    assert not alive, f"worker processes outlived generate: {alive}"

    kept = sorted(p.name for p in parts.glob("task-*.npz"))
    assert 1 <= len(kept) < 6, kept
    calls = []
    original = generate_module.run_task

    def counting(task, progress=None):
        calls.append(task.index)
        return original(task, progress)

    monkeypatch.setattr(generate_module, "run_task", counting)
    result = generate_to_file(
        out, PROCESS, EVENTS, SEED, workers=1, progress=False, task_size=TASK_SIZE
    )
    finished = {int(name[5:11]) for name in kept}
    assert sorted(calls) == sorted(set(range(6)) - finished), "only the unfinished tasks ran again"
    assert result.metadata["tasks_resumed"] == len(kept) == read_metadata(out)["tasks_resumed"]
    assert_same_bytes(read_events(out), in_process().events)
    assert not parts.exists(), "parts are removed once the file is written"


def _fake(events: int) -> TaskResult:
    particles = np.zeros((events, 19, 4), np.float32)
    return TaskResult(particles, np.ones(events), events, 0, events, 1.0, 1.0)


def test_parts_of_another_job_are_never_reused_and_foreign_directories_never_touched(tmp_path):
    out = tmp_path / "zll.h5"
    parts = parts_directory_for(out)
    # another job's parts (seed 32): a fake, all-zero finished task that must not end up in the file
    PartStore(parts, {"seed": 32}).save(0, _fake(2))
    result = generate_to_file(out, PROCESS, 2, SEED, workers=1, progress=False, task_size=TASK_SIZE)
    assert result.metadata["tasks_resumed"] == 0
    assert (read_events(out).particles[:, 0:9, 0] > 23).any(axis=1).all()
    assert not parts.exists()

    parts.mkdir()
    (parts / "mine.txt").write_text("user data")
    with pytest.raises(ValueError, match=f"{parts}: exists and is not an l1ad parts directory"):
        generate_to_file(out, PROCESS, 2, SEED, workers=1, progress=False)
    assert (parts / "mine.txt").read_text() == "user data" and not (parts / MANIFEST).exists()


def test_a_damaged_part_is_regenerated(tmp_path):
    job = {"seed": 1}
    store = PartStore(tmp_path / "p.parts", job)
    store.save(0, _fake(3))
    store.save(1, _fake(2))
    store.path(1).write_bytes(store.path(1).read_bytes()[:50])  # truncated by a crash
    assert store.load(0).particles.shape == (3, 19, 4)
    assert store.load(1) is None and store.finished() == {0}


@pytest.mark.parametrize(
    ("value", "message"), [(5, "events.scheduler"), ("no-such-file", "events.scheduler")]
)
def test_events_stage_rejects_a_bad_scheduler(value, message):
    with pytest.raises(ValueError, match=message):
        events_step._check_config(events_step.DEFAULTS | {"scheduler": value})
