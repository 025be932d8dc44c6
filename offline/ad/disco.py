"""Distance correlation (DisCo), differentiable and event-weighted.

DisCo² of Kasieczka & Shih (arXiv 2001.05310, code ``gkasieczka/DisCo``): with
``a_jk = |x_j - x_k|`` double-centred with weighted means to ``A_jk`` (likewise
``B_jk`` for y) and weights normalised to sum N,

    dCov²(x, y) = (1/N²) Σ_jk w_j w_k A_jk B_jk,
    DisCo²(x, y) = dCov²(x, y) / sqrt(dCov²(x, x) · dCov²(y, y)).

It is 0 for independent variables (in the large-N limit) and 1 for identical
ones. With unit weights it equals ``dcor.distance_correlation_sqr``; an
integer weight is the same as repeating the event.

Two forms live here: :func:`disco_sq` (torch, O(N²) memory, differentiable —
the training loss on one batch) and :func:`distance_correlation` (numpy, O(N²)
time in row blocks of bounded memory — the held-out figure of merit on tens of
thousands of events).
"""

from __future__ import annotations

import numpy as np
import torch


def _centred(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    a = (x[:, None] - x[None, :]).abs()
    row = (a * w[None, :]).mean(dim=1)  # weighted mean over k, for each j
    grand = (row * w).mean()
    return a - row[:, None] - row[None, :] + grand


def disco_sq(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Squared distance correlation of two 1-d tensors, event-weighted and differentiable.

    Computed in float32 at least (the N×N matrices lose too much in half precision).
    """
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"disco_sq needs two 1-d tensors of one length, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) < 2:
        raise ValueError("disco_sq needs at least 2 events")
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    w = torch.ones_like(x) if weights is None else weights.to(dtype)
    if w.shape != x.shape:
        raise ValueError(f"weights have shape {tuple(w.shape)}, expected {tuple(x.shape)}")
    w = w * (len(w) / w.sum())  # normalised to sum N
    a, b = _centred(x, w), _centred(y, w)
    ww = w[:, None] * w[None, :]
    ab = (a * b * ww).mean()
    aa = (a * a * ww).mean()
    bb = (b * b * ww).mean()
    # eps keeps a constant input (aa = 0) from producing NaN gradients
    return ab / torch.sqrt(aa * bb + torch.finfo(dtype).tiny)


def _row_blocks(n: int, block: int):
    for start in range(0, n, block):
        yield slice(start, min(start + block, n))


def distance_correlation(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    max_events: int = 20_000,
    seed: int = 0,
    block: int = 1024,
) -> float:
    """Distance correlation dCor (the square root of DisCo²) of two 1-d arrays, event-weighted.

    Above ``max_events`` a fixed random subsample is used (the O(N²) cost). Memory stays at
    a few ``block × N`` arrays. Returns a float in [0, 1].
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
    n = len(x)
    w = w * (n / w.sum())

    def row_means(v: np.ndarray) -> np.ndarray:
        out = np.empty(n)
        for s in _row_blocks(n, block):
            out[s] = (np.abs(v[s, None] - v[None, :]) @ w) / n
        return out

    mx, my = row_means(x), row_means(y)
    gx, gy = (mx * w).mean(), (my * w).mean()
    ab = aa = bb = 0.0
    for s in _row_blocks(n, block):
        a = np.abs(x[s, None] - x[None, :]) - mx[s, None] - mx[None, :] + gx
        b = np.abs(y[s, None] - y[None, :]) - my[s, None] - my[None, :] + gy
        wa = a * w[None, :]
        wb = b * w[None, :]
        ab += w[s] @ (wa * b).sum(axis=1)
        aa += w[s] @ (wa * a).sum(axis=1)
        bb += w[s] @ (wb * b).sum(axis=1)
    if aa <= 0 or bb <= 0:
        return 0.0
    return float(np.sqrt(max(ab, 0.0) / np.sqrt(aa * bb)))
