"""OmniFold and shower-diffusion training under torchrun (two processes, gloo on the CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[1]

OMNIFOLD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from offline.distributed import teardown
    from offline.unfold.omnifold import OmniFoldConfig, omnifold

    if len(sys.argv) > 2:
        dist.init_process_group("gloo")
    rng = np.random.default_rng(2)
    gen = rng.normal(0.0, 1.0, 4000)
    truth = rng.normal(0.4, 1.0, 4000)
    config = OmniFoldConfig(iterations=2, ensembles=2, epochs=5, batch_size=512, seed=3, device="cpu",
                            classifier_options={"hidden": (16, 16)})
    result = omnifold(gen + rng.normal(0, 0.5, 4000), gen, truth + rng.normal(0, 0.5, 4000), config=config)
    rank = dist.get_rank() if dist.is_initialized() else 0
    np.save(f"{sys.argv[1]}_rank{rank}.npy", result.member_push)
    teardown()
    """
)

SHOWERS = textwrap.dedent(
    """
    import json, sys
    import torch.distributed as dist
    from offline.distributed import setup, teardown
    from offline.generative.diffusion import DiffusionConfig, train_diffusion
    from offline.generative.gflash import GFlashSimulator, sample_energies

    energies = sample_energies(256, 1, 1e3, 1e4)
    showers = GFlashSimulator().simulate(energies, 2)
    batch = int(sys.argv[2])
    config = DiffusionConfig(layer_width=16, layer_depth=1, voxel_width=32, voxel_depth=1, steps=2, epochs=4,
                             batch_size=batch, lr=2e-3, ema=0.9, seed=4, augment=False)
    model, history = train_diffusion(energies, showers, config, device="cpu")
    rank = setup("cpu").rank
    model.save(f"{sys.argv[1]}_rank{rank}.safetensors")
    with open(f"{sys.argv[1]}_rank{rank}.json", "w") as f:
        json.dump(history, f)
    teardown()
    """
)


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def _run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _torchrun(script: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        *args,
    ]


@pytest.mark.slow
def test_omnifold_ensemble_members_split_over_two_processes_equal_one_process(tmp_path):
    script = tmp_path / "omnifold.py"
    script.write_text(OMNIFOLD)
    _run([sys.executable, str(script), str(tmp_path / "one")], tmp_path)
    _run(_torchrun(script, str(tmp_path / "two"), "ddp"), tmp_path)
    one = np.load(tmp_path / "one_rank0.npy")
    two = [np.load(tmp_path / f"two_rank{r}.npy") for r in (0, 1)]
    assert one.shape == (2, 2, 4000) and np.all(one > 0)
    # each rank trained one member; the gathered weights are those of one process training both
    np.testing.assert_allclose(two[0], one, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(two[0], two[1])
    assert not np.allclose(one[0], one[1])  # the members differ: both ranks really contributed


@pytest.mark.slow
def test_shower_diffusion_under_torchrun_trains_one_model_on_every_rank(tmp_path):
    script = tmp_path / "showers.py"
    script.write_text(SHOWERS)
    _run(_torchrun(script, str(tmp_path / "two"), "32"), tmp_path)
    _run(
        [sys.executable, str(script), str(tmp_path / "one"), "64"], tmp_path
    )  # the same global batch
    ranks = [load_file(tmp_path / f"two_rank{r}.safetensors") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:  # DDP keeps the ranks' EMA models identical
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    two = json.loads((tmp_path / "two_rank0.json").read_text())
    one = json.loads((tmp_path / "one_rank0.json").read_text())
    assert len(two) == len(one) == 4 and all(np.isfinite(two))
    assert two[-1] < two[0]  # it trains
    # noise draws differ between the two setups, so the losses agree statistically, not exactly
    assert abs(two[-1] - one[-1]) < 0.25 * one[-1]
