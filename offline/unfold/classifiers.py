"""Classifiers for OmniFold, chosen by name: an MLP on fixed-length features, Deep Sets and a
point-cloud transformer on particle sets (``offline.unfold.point_cloud``).

All return one logit per event; OmniFold turns it into the likelihood ratio
f/(1−f) = exp(logit) without ever forming f, so f → 1 cannot produce a division by zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from offline.unfold.point_cloud import DeepSets, PointCloudTransformer, dense

# (per-event feature shape) -> a fresh classifier; what OmniFold calls for each step
ClassifierFactory = Callable[[tuple[int, ...]], nn.Module]
CLASSIFIERS = ("mlp", "deepsets", "transformer")
PARTICLE_CLASSIFIERS = ("deepsets", "transformer")


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
        self.net = dense([n_features, *hidden, 1], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def make_classifier(kind: str, feature_shape: tuple[int, ...], **options: Any) -> nn.Module:
    """``mlp`` for (F,) features; ``deepsets`` or ``transformer`` for (P, F) particle sets."""
    if kind == "mlp":
        if len(feature_shape) != 1:
            raise ValueError(
                f"mlp classifier needs (N, F) features, got per-event shape {feature_shape}"
            )
        return MLP(feature_shape[0], **options)
    if kind in PARTICLE_CLASSIFIERS:
        if len(feature_shape) != 2:
            raise ValueError(
                f"{kind} classifier needs (N, P, F) particle features, got per-event shape {feature_shape}"
            )
        model = DeepSets if kind == "deepsets" else PointCloudTransformer
        return model(feature_shape[1], **options)
    raise ValueError(f"unknown classifier {kind!r} (known: {', '.join(CLASSIFIERS)})")


def classifier_factory(kind: str, **options: Any) -> ClassifierFactory:
    """A factory for ``kind`` with ``options``; the name is checked now, not at the first step."""
    if kind not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {kind!r} (known: {', '.join(CLASSIFIERS)})")
    return lambda shape: make_classifier(kind, shape, **options)
