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
and out). Both cost O(N²) time but only O(N·block) memory: the one O(N²) sum is taken over
blocks of rows and has a hand-written backward, so neither pass holds an N×N matrix
(at batch 10 000 a dense float32 N×N matrix is 400 MB, and autograd keeps several).
:func:`dense_disco_sq` is the textbook form (the N×N double-centred matrices, autograd
through them, as in ``gkasieczka/DisCo``), kept as the reference for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def _blocks(n: int) -> Iterator[slice]:
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _centred_block(
    v: torch.Tensor, r: torch.Tensor, g: torch.Tensor, s: slice
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``s`` of the distance matrix |v_j - v_k| double-centred with weighted means, and the signs."""
    d = v[s, None] - v
    return d.abs() - r[s, None] - r + g, torch.sign(d)


class _DCovSums(torch.autograd.Function):
    """(Σ w_j w_k A_jk B_jk, Σ w w A², Σ w w B²) over row blocks, with the analytic gradient.

    A, B are the weighted double-centred distance matrices of x and y, built block by block
    from the O(N) row means, so memory stays O(N·block) in both passes (autograd through
    broadcasting would keep several N×N matrices). Summing centred products keeps float32
    accurate (the expanded form S_xy/N² − 2<r r> + g g cancels large terms).

    Gradient: the weighted double centring P is a projection, self-adjoint in the
    w-weighted inner product, so Σ ww (Pa)(Pb) = Σ ww a (Pb): ∂/∂a_jk of the cross sum is
    w_j w_k B_jk and of Σ ww A² is 2 w_j w_k A_jk. With ∂a_jk/∂x_j = sign(x_j − x_k) and
    the symmetry of a, ∂/∂x_j Σ ww A B = 2 w_j Σ_k w_k sign(x_j − x_k) B_jk. The row means
    need no gradient of their own. Weights are constants.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor,
        rx: torch.Tensor,
        ry: torch.Tensor,
        gx: torch.Tensor,
        gy: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, y, w, rx, ry, gx, gy)
        sums = torch.zeros(
            3, dtype=torch.float64, device=x.device
        )  # block totals add up in float64
        for s in _blocks(len(x)):
            a, _ = _centred_block(x, rx, gx, s)
            b, _ = _centred_block(y, ry, gy, s)
            sums += torch.stack(
                [w[s] @ ((a * b) @ w), w[s] @ ((a * a) @ w), w[s] @ ((b * b) @ w)]
            ).double()
        return sums.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, y, w, rx, ry, gx, gy = ctx.saved_tensors
        gab, gaa, gbb = grad[0], grad[1], grad[2]
        dx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        dy = torch.empty_like(y) if ctx.needs_input_grad[1] else None
        for s in _blocks(len(x)):
            a, sa = _centred_block(x, rx, gx, s)
            b, sb = _centred_block(y, ry, gy, s)
            if dx is not None:
                dx[s] = 2 * w[s] * ((sa * (gab * b + 2 * gaa * a)) @ w)
            if dy is not None:
                dy[s] = 2 * w[s] * ((sb * (gab * a + 2 * gbb * b)) @ w)
        return dx, dy, None, None, None, None, None


def disco_sq(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Squared distance correlation of two 1-d tensors, event-weighted and differentiable.

    The weighted row means r of |Δx|, |Δy| take O(N log N) (sort and prefix sums, float64);
    the three sums of products of the double-centred matrices are then taken over blocks of
    rows (:class:`_DCovSums`), so peak memory is O(N·block), not O(N²). Computed in float32
    at least (half precision loses too much), also under autocast; weights get no gradient.
    """
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(
            f"disco_sq needs two 1-d tensors of one length, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if len(x) < 2:
        raise ValueError("disco_sq needs at least 2 events")
    # bf16 autocast (training on CUDA) would run the block products in bfloat16: keep float32 sums
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _disco_sq(x, y, weights)


def _disco_sq(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    w = torch.ones_like(x) if weights is None else weights.detach().to(dtype)
    if w.shape != x.shape:
        raise ValueError(f"weights have shape {tuple(w.shape)}, expected {tuple(x.shape)}")
    n = len(w)
    w = w * (n / w.sum())  # normalised to sum N
    with torch.no_grad():  # centring constants in float64: O(N), and the error budget is 1e-6
        rx, ry = _row_means(x.double(), w.double()), _row_means(y.double(), w.double())
        gx, gy = (w * rx).mean(), (w * ry).mean()
    ab, aa, bb = (
        _DCovSums.apply(x, y, w, rx.to(dtype), ry.to(dtype), gx.to(dtype), gy.to(dtype)) / n**2
    )
    # tiny keeps a constant input (aa = 0) from producing NaN gradients
    return ab / torch.sqrt(aa * bb + torch.finfo(dtype).tiny)


def dense_disco_sq(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """DisCo² straight from its definition with the N×N double-centred matrices (O(N²) memory).

    The reference for :func:`disco_sq` (tests, benchmarks); same conventions (float32 at
    least, weights normalised to sum N and treated as constants).
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    w = torch.ones_like(x) if weights is None else weights.detach().to(dtype)
    n = len(x)
    w = w * (n / w.sum())

    def centred(v: torch.Tensor) -> torch.Tensor:
        a = (v[:, None] - v[None, :]).abs()
        row = (a * w[None, :]).mean(dim=1)  # weighted row means (1/N) Σ_k w_k a_jk
        return a - row[:, None] - row[None, :] + (w * row).mean()

    a, b = centred(x), centred(y)
    ww = w[:, None] * w[None, :]

    def dcov(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (ww * p * q).sum() / n**2

    return dcov(a, b) / torch.sqrt(dcov(a, a) * dcov(b, b) + torch.finfo(dtype).tiny)


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
        raise ValueError(
            f"distance_correlation needs two 1-d arrays of one length, got {x.shape} and {y.shape}"
        )
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
