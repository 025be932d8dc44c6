"""Classifiers for OmniFold: an MLP for fixed-length features, Deep Sets for particle sets.

Both return one logit per event; OmniFold turns it into the likelihood ratio
f/(1−f) = exp(logit) without ever forming f, so f → 1 cannot produce a division by zero.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn


def _mlp(sizes: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Dense network on (N, F) features -> (N,) logits.

    GELU rather than ReLU: a smooth logit gives smooth weights (exp(logit)); on the
    Gaussian toy it halves the triangular discriminator at equal cost. The default sizes
    are those of the ``omnifold`` package's MLP.
    """

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (64, 128, 64),
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.net = _mlp([n_features, *hidden, 1], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class DeepSets(nn.Module):
    """Permutation-invariant classifier on (N, P, F) particle sets -> (N,) logits.

    φ maps each particle to a latent vector, the sum over real particles pools them
    (Komiske, Metodiev, Thaler's Energy/Particle Flow Networks use the same form), and ρ
    classifies the pooled vector. Rows whose features are all zero are padding, the
    convention of the event files; they are masked out of the sum.
    """

    def __init__(
        self,
        n_features: int,
        phi: Sequence[int] = (64, 64),
        rho: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.phi = nn.Sequential(_mlp([n_features, *phi], activation), activation())
        self.rho = _mlp([phi[-1], *rho, 1], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (x != 0).any(dim=-1, keepdim=True).to(x.dtype)
        latent = (self.phi(x) * mask).sum(dim=1)
        return self.rho(latent).squeeze(-1)


def make_classifier(kind: str, feature_shape: tuple[int, ...], **options) -> nn.Module:
    """``mlp`` for (F,) features, ``deepsets`` for (P, F) particle sets."""
    if kind == "mlp":
        if len(feature_shape) != 1:
            raise ValueError(
                f"mlp classifier needs (N, F) features, got per-event shape {feature_shape}"
            )
        return MLP(feature_shape[0], **options)
    if kind == "deepsets":
        if len(feature_shape) != 2:
            raise ValueError(
                f"deepsets classifier needs (N, P, F) particle features, got per-event shape {feature_shape}"
            )
        return DeepSets(feature_shape[1], **options)
    raise ValueError(f"unknown classifier {kind!r} (known: mlp, deepsets)")
