"""Two processes under torchrun (gloo, CPU) train the same pair as one process on the same global
batches, DisCo and the jittered closure penalty included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import make_toy_events

from offline.ad import load_pair
from offline.events import write_events

SCRIPT = textwrap.dedent(
    """
    import sys
    from offline import distributed
    from offline.ad import TrainConfig, train_from_file

    # the jittered closure grid is drawn from the seed and epoch: the same cuts on every rank
    config = TrainConfig(
        lam=50.0, closure_lam=10.0, closure_jitter=0.5, epochs=3, batch_size=300, patience=100,
        progress=False, seed=3, device="cpu",
    )
    result = train_from_file(sys.argv[1], sys.argv[2], config)
    distributed.teardown()
    """
)


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process(tmp_path):
    events = tmp_path / "bkg.h5"
    write_events(events, make_toy_events(2000, seed=21))
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    single = subprocess.run(
        [sys.executable, str(script), str(events), str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert single.returncode == 0, single.stderr
    multi = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(events),
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert multi.returncode == 0, multi.stderr[-3000:]
    a, b = load_pair(tmp_path / "one").state_dict(), load_pair(tmp_path / "two").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    # and it did train: the weights moved away from the seeded initialisation
    torch.manual_seed(3)
    from offline.ad import AutoencoderPair, preset

    init = AutoencoderPair(preset("firmware")).state_dict()
    assert max(float((init[k] - a[k]).abs().max()) for k in a) > 1e-3
