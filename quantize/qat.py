"""What both QAT frameworks share: the fine-tuning settings and magnitude pruning.

Pruning is plain magnitude pruning with a polynomial schedule (Zhu & Gupta,
arXiv 1710.01878, the tfmot default): after each optimiser step the smallest
``s(t)`` fraction of every weight matrix (by absolute value of the float weight) is
zeroed, ``s`` rising from 0 to the target between ``prune_start`` and ``prune_end``
(fractions of the training) and held there. Masks only grow, so a pruned weight
stays zero. A zero float weight quantizes to zero on any grid, so the exported
matrices have at least the target sparsity. Biases are not pruned. The same numpy
code serves Brevitas and QKeras so both prune the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

__all__ = ["QATConfig", "magnitude_mask", "sparsity_at", "weight_sparsity"]


@dataclass(frozen=True)
class QATConfig:
    """Fine-tuning from the float checkpoint; ``lam`` None takes the float training's λ."""

    epochs: int = 10
    batch_size: int = 1024
    lr: float = 3e-4
    lam: float | None = None
    seed: int = 1234
    sparsity: float = 0.5  # part of the default trigger's 50 ns latency (quantize.precision)
    prune_start: float = 0.0
    prune_end: float = 0.5
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"QAT epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(
                f"QAT batch_size must be >= 2 (DisCo needs pairs), got {self.batch_size}"
            )
        if not self.lr > 0:
            raise ValueError(f"QAT learning rate must be > 0, got {self.lr}")
        if self.lam is not None and (self.lam < 0 or not math.isfinite(self.lam)):
            raise ValueError(f"QAT lambda must be a finite number >= 0, got {self.lam}")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 <= self.prune_start <= self.prune_end <= 1.0:
            raise ValueError(
                f"need 0 <= prune_start <= prune_end <= 1, got {self.prune_start}, {self.prune_end}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> QATConfig:
        data = dict(data or {})
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown QAT settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def sparsity_at(config: QATConfig, step: int, total_steps: int) -> float:
    """Target sparsity after optimiser step ``step`` of ``total_steps`` (cubic ramp)."""
    if config.sparsity == 0.0:
        return 0.0
    t = step / max(total_steps, 1)
    if t < config.prune_start:
        return 0.0
    span = config.prune_end - config.prune_start
    if span <= 0 or t >= config.prune_end:
        return config.sparsity
    frac = (t - config.prune_start) / span
    return config.sparsity * (1.0 - (1.0 - frac) ** 3)


def magnitude_mask(
    weight: np.ndarray, sparsity: float, previous: np.ndarray | None = None
) -> np.ndarray:
    """0/1 mask zeroing the ``ceil(sparsity * size)`` smallest-magnitude entries.

    Entries already pruned by ``previous`` stay pruned (they are zero, so they sort first).
    """
    w = np.abs(np.asarray(weight, dtype=np.float64))
    if previous is not None:
        w = np.where(previous == 0, -1.0, w)
    n_zero = math.ceil(sparsity * w.size - 1e-9)  # at least the target, per matrix
    if previous is not None:
        n_zero = max(n_zero, int((previous == 0).sum()))
    mask = np.ones(w.size, dtype=np.float32)
    if n_zero:
        mask[np.argsort(w, axis=None, kind="stable")[:n_zero]] = 0.0
    return mask.reshape(w.shape)


def weight_sparsity(weights: dict[str, np.ndarray]) -> float:
    """Fraction of zero weights over all weight matrices (``*.weight`` keys; biases excluded)."""
    mats = [np.asarray(v) for k, v in weights.items() if k.endswith(".weight")]
    return float(sum((m == 0).sum() for m in mats) / sum(m.size for m in mats))
