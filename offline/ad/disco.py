"""Distance correlation (DisCo), differentiable and event-weighted.

DisCo² of Kasieczka & Shih (arXiv 2001.05310, code ``gkasieczka/DisCo``): with
``a_jk = |x_j - x_k|`` double-centred with weighted means to ``A_jk`` (likewise
``B_jk`` for y) and weights normalised to sum N,

    dCov²(x, y) = (1/N²) Σ_jk w_j w_k A_jk B_jk,
    DisCo²(x, y) = dCov²(x, y) / sqrt(dCov²(x, x) · dCov²(y, y)).

It is 0 for independent variables (in the large-N limit) and 1 for identical
ones. With unit weights it equals ``dcor.distance_correlation_sqr``; an
integer weight is the same as repeating the event.

:func:`disco_sq` is the differentiable training term on a batch;
:func:`distance_correlation` is the held-out figure of merit (dCor, float64, numpy in
and out). Both cost O(N²) time but only O(N) memory.
"""

from __future__ import annotations

import numpy as np
import torch


def _row_means(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """r_j = (1/N) Σ_k w_k |x_j - x_k| for every j in O(N log N) (sort and prefix sums), differentiable."""
    xs, order = torch.sort(x)
    ws = w[order]
    cw = torch.cumsum(ws, 0) - ws  # weight strictly before each sorted position
    cwx = torch.cumsum(ws * xs, 0) - ws * xs
    tw, twx = ws.sum(), (ws * xs).sum()
    below = xs * cw - cwx
    above = (twx - cwx - ws * xs) - xs * (tw - cw - ws)
    r = torch.empty_like(x)
    r[order] = (below + above) / len(x)
    return r


_BLOCK_ELEMENTS = 1 << 22  # elements of one block × N slab (16 MiB in float32)


class _CrossTerm(torch.autograd.Function):
    """S = Σ_jk w_j w_k |x_j - x_k| |y_j - y_k| in row blocks, with its analytic gradient.

    The only O(N²) part of DisCo; written as a Function so that neither pass keeps N×N
    matrices alive (autograd through broadcasting would hold several). Weights are
    treated as constants.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y, w)
        total = x.new_zeros(())
        for s in _blocks(len(x)):
            total = total + w[s] @ ((x[s, None] - x).abs() * (y[s, None] - y).abs() @ w)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, y, w = ctx.saved_tensors
        gx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        gy = torch.empty_like(y) if ctx.needs_input_grad[1] else None
        for s in _blocks(len(x)):
            dx, dy = x[s, None] - x, y[s, None] - y
            # S is symmetric in (j, k): dS/dx_j = 2 w_j Σ_k w_k sign(x_j - x_k) |y_j - y_k|
            if gx is not None:
                gx[s] = 2 * w[s] * ((torch.sign(dx) * dy.abs()) @ w)
            if gy is not None:
                gy[s] = 2 * w[s] * ((torch.sign(dy) * dx.abs()) @ w)
        return (None if gx is None else grad * gx, None if gy is None else grad * gy, None)


def _blocks(n: int):
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _dcov_self(x: torch.Tensor, w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """dCov²(x, x): Σ_jk w_j w_k (x_j - x_k)² = 2 N Σ w (x - x̄)² is O(N)."""
    n = len(x)
    xc = x - (w * x).sum() / n
    s = 2 * n * (w * xc * xc).sum()
    g = (w * r).mean()
    return s / n**2 - 2 * (w * r * r).mean() + g * g


def disco_sq(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Squared distance correlation of two 1-d tensors, event-weighted and differentiable.

    Expanding the double centring (its weighted row means vanish) gives
    dCov²(x, y) = S_xy/N² − (2/N) Σ_j w_j r^x_j r^y_j + g^x g^y with S_xy the weighted sum of
    |Δx||Δy| over pairs, r the weighted row means of |Δx| (O(N log N) by sorting) and g their
    weighted mean. Only S_xy costs O(N²) time, in blocks of bounded memory. Computed in
    float32 at least (half precision loses too much); weights get no gradient.
    """
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"disco_sq needs two 1-d tensors of one length, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) < 2:
        raise ValueError("disco_sq needs at least 2 events")
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    w = torch.ones_like(x) if weights is None else weights.detach().to(dtype)
    if w.shape != x.shape:
        raise ValueError(f"weights have shape {tuple(w.shape)}, expected {tuple(x.shape)}")
    n = len(w)
    w = w * (n / w.sum())  # normalised to sum N
    rx, ry = _row_means(x, w), _row_means(y, w)
    gx, gy = (w * rx).mean(), (w * ry).mean()
    ab = _CrossTerm.apply(x, y, w) / n**2 - 2 * (w * rx * ry).mean() + gx * gy
    aa, bb = _dcov_self(x, w, rx), _dcov_self(y, w, ry)
    # tiny keeps a constant input (aa = 0) from producing NaN gradients
    return ab / torch.sqrt(aa * bb + torch.finfo(dtype).tiny)


def distance_correlation(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    max_events: int = 20_000,
    seed: int = 0,
) -> float:
    """Distance correlation dCor (the square root of DisCo²) of two 1-d arrays, event-weighted.

    The same computation as :func:`disco_sq`, in float64 without gradients. Above
    ``max_events`` a fixed random subsample is used (the cost is O(N²) time, O(N) memory).
    Returns a float in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"distance_correlation needs two 1-d arrays of one length, got {x.shape} and {y.shape}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape:
        raise ValueError(f"weights have shape {w.shape}, expected {x.shape}")
    if len(x) < 2:
        raise ValueError("distance_correlation needs at least 2 events")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(w).all()):
        raise ValueError("distance_correlation: inputs hold NaN or inf")
    if len(x) > max_events:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), max_events, replace=False))
        x, y, w = x[keep], y[keep], w[keep]
    with torch.no_grad():
        d = disco_sq(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w))
    return float(np.sqrt(max(float(d), 0.0)))
