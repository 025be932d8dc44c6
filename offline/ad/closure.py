"""Differentiable ABCD non-closure: the closure penalty of ABCDisCoTEC (arXiv 2506.08826).

ABCDisCoTEC adds to the DisCo loss a term that measures the ABCD non-closure of the batch
directly. Region populations are counted with sigmoids instead of step functions, so the
count is differentiable (``TTU-HEP/ABCDisCoTEC``, ``closure(..., symmetrize=True)``):

    N_A = Σ w s₁ s₂,  N_B = Σ w s₁ (1 − s₂),  N_C = Σ w (1 − s₁) s₂,  N_D = Σ w (1 − s₁)(1 − s₂),
    s_i = sigmoid(log(R_i / t_i) / temperature),
    non-closure = (N_A N_D − N_B N_C) / (N_A N_D + N_B N_C)  ∈ [−1, 1].

It is 0 exactly when N_A = N_B N_C / N_D (the ABCD prediction closes) and, to first order,
half the relative error of that prediction. ABCDisCoTEC takes its absolute value at one
random cut per batch; here the penalty is its square averaged over a fixed grid of cuts (the
mean of a square is bias² + variance, so it pulls the systematic non-closure to zero; a fixed
grid keeps the loss reproducible and identical on every DDP rank). Closure at every pair of
cuts is the same as independence of R1 and R2, so several cuts per axis ask for more than one
working point. Cuts are set on the batch itself: for each per-axis background efficiency ``e``
the threshold keeps the fraction ``e`` of the batch's weight above it (midway between two
events). A pair of cuts is used only when each of the four regions would hold at least
``min_events`` (effective) events of the batch if R1 and R2 were independent (ABCDisCoTEC
checks the observed regions instead, which skips the most correlated cuts, whose B and C are
empty), so the ABCD working points in the tail (ε_B ≪ 1/batch) are reached through the cuts a
batch can resolve. Thresholds and widths are constants for the
gradient. A fixed grid is closed at its points, and a model can still bend between them (the
scale study saw −3.6σ on the training split at a cut between 0.1 and 0.2 per axis): training
with ``closure_jitter`` moves each axis's grid by its own seeded factor every step
(:func:`jittered_efficiencies`), as ABCDisCoTEC's random cut does.

The sigmoids act on log R (the scores are reconstruction errors, > 0): their width
``temperature`` is a relative change of R, the same in the bulk and in the tail of a
distribution that spans decades (the batch's standard deviation, dominated by the tail, would
blur the bulk), and the penalty does not depend on the scale of the scores. As
``temperature`` → 0 it becomes the counted non-closure of the hard regions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from offline.ad.defaults import DEFAULT_CLOSURE_EFFICIENCIES

# sigmoid width in log R (0.05: a 5 % change of the score)
DEFAULT_CLOSURE_TEMPERATURE = 0.05
# smallest hard region (events of the batch) of a cut pair that enters the penalty
DEFAULT_CLOSURE_MIN_EVENTS = 10


def soft_region_counts(
    r1: torch.Tensor,
    r2: torch.Tensor,
    weights: torch.Tensor,
    x: torch.Tensor | float,
    y: torch.Tensor | float,
    temperature: float,
) -> torch.Tensor:
    """Weighted soft populations (N_A, N_B, N_C, N_D) of the regions cut at R1 = x, R2 = y.

    Memberships are sigmoid(log(R / cut) / temperature) (scores and cuts > 0). ``x`` and ``y``
    may be 1-d tensors of equal length (one cut pair each): the result then has shape
    (4, pairs). A = (R1 > x, R2 > y), B = (>, <), C = (<, >), D = (<, <).
    """
    tiny = torch.finfo(r1.dtype).tiny
    log_x = torch.log(torch.as_tensor(x, dtype=r1.dtype, device=r1.device).clamp_min(tiny))
    log_y = torch.log(torch.as_tensor(y, dtype=r2.dtype, device=r2.device).clamp_min(tiny))
    s1 = torch.sigmoid((torch.log(r1.clamp_min(tiny))[:, None] - log_x) / temperature)
    s2 = torch.sigmoid((torch.log(r2.clamp_min(tiny))[:, None] - log_y) / temperature)
    w = weights[:, None]
    a = (w * s1 * s2).sum(0)
    b = (w * s1 * (1 - s2)).sum(0)
    c = (w * (1 - s1) * s2).sum(0)
    d = (w * (1 - s1) * (1 - s2)).sum(0)
    return torch.stack([a, b, c, d]).reshape(4, *torch.broadcast_shapes(log_x.shape, log_y.shape))


def relative_nonclosure(counts: torch.Tensor) -> torch.Tensor:
    """(N_A N_D − N_B N_C) / (N_A N_D + N_B N_C) of region counts ordered (A, B, C, D) on axis 0."""
    a, b, c, d = counts
    ad, bc = a * d, b * c
    return (ad - bc) / (ad + bc + torch.finfo(counts.dtype).tiny)


def efficiency_cuts(
    values: torch.Tensor, weights: torch.Tensor, efficiencies: torch.Tensor
) -> torch.Tensor:
    """Per efficiency e, the cut midway between the two events where the weight fraction above passes e."""
    v, order = torch.sort(values)
    w = weights[order]
    above = 1 - torch.cumsum(w, 0) / w.sum()  # weight fraction strictly above v[i] (no ties)
    i = torch.argmin((above[:, None] - efficiencies[None, :]).abs(), dim=0)
    i = i.clamp(max=len(v) - 2)
    return (v[i] + v[i + 1]) / 2


def resolvable_pairs(
    efficiencies: torch.Tensor,
    weights: torch.Tensor,
    min_events: int,
    efficiencies_r2: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mask over the (e₁, e₂) pairs of :func:`torch.cartesian_prod` order (e₂ from
    ``efficiencies_r2``, by default ``efficiencies``) whose smallest region holds ``min_events``
    events when R1 and R2 are independent (effective events of the batch).

    Decided by the efficiencies and the batch alone, not by the observed regions: a correlated
    pair empties B and C, and that is the non-closure the penalty must see, not skip.
    """
    n_eff = weights.sum() ** 2 / (weights**2).sum()
    side1, side2 = (
        torch.minimum(e, 1 - e)
        for e in (efficiencies, efficiencies if efficiencies_r2 is None else efficiencies_r2)
    )
    e1, e2 = torch.cartesian_prod(side1, side2).unbind(1)
    return n_eff * e1 * e2 >= min_events


def jittered_efficiencies(
    efficiencies: Sequence[float], jitter: float, rng: np.random.Generator
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The cut efficiencies of R1 and of R2 for one training step: each axis's grid times its own
    exp(u), u uniform in ±``jitter`` (capped at 0.99). A fixed grid lets the model close the
    ABCD regions at its points and not between them; moving the grid every step holds closure
    at every cut the grid spans."""
    grid1, grid2 = (
        tuple(min(e * float(s), 0.99) for e in efficiencies)
        for s in np.exp(rng.uniform(-jitter, jitter, size=2))
    )
    return grid1, grid2


def closure_penalty(
    r1: torch.Tensor,
    r2: torch.Tensor,
    weights: torch.Tensor | None = None,
    efficiencies: Sequence[float] = DEFAULT_CLOSURE_EFFICIENCIES,
    temperature: float = DEFAULT_CLOSURE_TEMPERATURE,
    min_events: int = DEFAULT_CLOSURE_MIN_EVENTS,
    efficiencies_r2: Sequence[float] | None = None,
) -> torch.Tensor:
    """Mean squared soft ABCD non-closure over the usable pairs of cuts (see the module docstring).

    Every pair (e₁, e₂) of ``efficiencies`` (e₂ from ``efficiencies_r2`` when given) gives cuts
    keeping e₁ of R1 and e₂ of R2 on the batch; pairs whose smallest region would hold fewer
    than ``min_events`` events for independent scores are left out (:func:`resolvable_pairs`),
    and with none left the penalty is 0. Differentiable in ``r1`` and ``r2``; weights get no
    gradient.
    """
    if r1.ndim != 1 or r2.shape != r1.shape:
        raise ValueError(
            f"closure_penalty needs two 1-d tensors of one length, got {tuple(r1.shape)} and "
            f"{tuple(r2.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"closure temperature must be > 0, got {temperature}")
    grids = (efficiencies, efficiencies_r2 or efficiencies)
    for grid in grids:
        if not all(0 < e < 1 for e in grid) or not grid:
            raise ValueError(f"closure efficiencies must lie in (0, 1), got {tuple(grid)}")
    dtype = torch.promote_types(r1.dtype, torch.float32)
    r1, r2 = r1.to(dtype), r2.to(dtype)
    w = torch.ones_like(r1) if weights is None else weights.detach().to(dtype)
    zero = (r1.sum() + r2.sum()) * 0  # keeps the graph (and DDP) when no pair is usable
    if len(r1) < 2:
        return zero
    with torch.no_grad():
        eff1, eff2 = (torch.as_tensor(list(grid), dtype=dtype, device=r1.device) for grid in grids)
        cuts1, cuts2 = efficiency_cuts(r1, w, eff1), efficiency_cuts(r2, w, eff2)
        x, y = torch.cartesian_prod(cuts1, cuts2).unbind(1)
        usable = resolvable_pairs(eff1, w, min_events, eff2)
    if not usable.any():
        return zero
    # bf16 autocast (training on CUDA) would lose the counts' precision: keep float32
    with torch.autocast(device_type=r1.device.type, enabled=False):
        counts = soft_region_counts(r1, r2, w, x[usable], y[usable], temperature)
        return (relative_nonclosure(counts) ** 2).mean()
