"""Progressive distillation (Salimans & Ho, arXiv 2202.00512), as CaloScore v2 applies it.

Each round copies the teacher into a student that samples in half as many DDIM
steps. For a training point ``z_t`` on the student's grid (t = i/N), the teacher
takes two DDIM steps t → t - 1/(2N) → t - 1/N, reaching ``z''``; the student's
target is the x for which one DDIM step from ``z_t`` lands exactly on ``z''``::

    x̃ = (z'' - (σ'' / σ_t) z_t) / (α'' - (σ'' / σ_t) α_t)

converted to a v target (``ε̃ = (z_t - α_t x̃)/σ_t``, ``v = α_t ε̃ - σ_t x̃``). The
student becomes the next round's teacher. Both networks (layers, voxels) are
distilled together; the voxel network sees the true layer vector, as in training.
Every kept student gets its own calibration of the latent marginals (``ShowerDiffusion.calibrate``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from offline.generative.diffusion import ShowerDiffusion, TrainingData, alpha_sigma, autocast_for


def distill_round(
    teacher: ShowerDiffusion,
    data: TrainingData,
    iterations: int,
    batch_size: int = 256,
    lr: float = 2e-4,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[ShowerDiffusion, list[float]]:
    """One halving: returns a student with ``teacher.steps // 2`` steps and its loss per iteration."""
    if teacher.steps < 2 or teacher.steps % 2:
        raise ValueError(
            f"distillation halves the step count; the teacher has {teacher.steps} steps"
        )
    device = data.cond.device
    teacher = teacher.to(device).eval()
    student = copy.deepcopy(teacher).train()
    student.steps = teacher.steps // 2
    for p in student.parameters():
        p.requires_grad_(True)
    n_student = student.steps
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / max(iterations, 1))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for it in range(iterations):
        idx = torch.randint(0, len(data), (min(batch_size, len(data)),), generator=gen).to(device)
        total = 0.0
        loss_sum = torch.zeros((), device=device)
        for which, x, cond in (
            ("layer", data.layer_x[idx], data.cond[idx]),
            ("voxel", data.voxel_x[idx], torch.cat([data.cond[idx], data.layer_x[idx]], dim=1)),
        ):
            i = torch.randint(1, n_student + 1, (len(x),), generator=gen).to(device)
            t = i.float() / n_student
            t_mid, t_end = t - 0.5 / n_student, t - 1.0 / n_student
            a_t, s_t = alpha_sigma(t.reshape(-1, 1))
            eps = torch.randn(x.shape, generator=gen).to(device)
            z = a_t * x + s_t * eps
            with torch.no_grad(), autocast_for(device):
                z_mid = teacher.ddim_step(which, z, t, t_mid, cond)
                z_end = teacher.ddim_step(which, z_mid, t_mid, t_end, cond)
            a_e, s_e = alpha_sigma(t_end.reshape(-1, 1))
            ratio = s_e / s_t
            x_tgt = (z_end - ratio * z) / (a_e - ratio * a_t)
            eps_tgt = (z - a_t * x_tgt) / s_t
            v_tgt = a_t * eps_tgt - s_t * x_tgt
            with autocast_for(device):
                v = student.predict_v(which, z, t, cond).float()
            loss_sum = loss_sum + ((v - v_tgt) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss_sum.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        sched.step()
        total = float(loss_sum.detach())
        losses.append(total)
        if progress is not None:
            progress(it, total)
    return student.eval(), losses


def check_targets(steps: int, targets: tuple[int, ...]) -> None:
    """Every target must be ``steps / 2**k`` for some k >= 1 (reachable by halving, below ``steps``)."""
    for target in targets:
        if not 1 <= target < steps or steps % target or (steps // target) & (steps // target - 1):
            raise ValueError(
                f"cannot reach {target} steps from the teacher's {steps} by halving "
                f"(distillation targets must be {steps} / 2^k, below {steps})"
            )


def progressive_distillation(
    teacher: ShowerDiffusion,
    data: TrainingData,
    targets: tuple[int, ...] = (8, 1),
    iterations: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-4,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, ShowerDiffusion]:
    """Halve the step count round by round; keep the students whose step count is in ``targets``.

    ``teacher.steps`` must be a power of two times every target (e.g. 64 → 8 → 1).
    ``progress(round, steps)`` is called after each round.
    """
    check_targets(teacher.steps, targets)
    kept: dict[int, ShowerDiffusion] = {}
    current = teacher
    round_ = 0
    while current.steps > min(targets):
        current, _ = distill_round(current, data, iterations, batch_size, lr, seed + round_)
        round_ += 1
        if current.steps in targets:
            current.calibrate(
                data.cond, seed=seed
            )  # each sampler distorts the marginals its own way
            kept[current.steps] = current
        if progress is not None:
            progress(round_, current.steps)
    return kept
