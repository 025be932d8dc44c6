"""The autoencoder pair: two identical dense autoencoders on the same 57 features.

Reconstruction error of one autoencoder: R(x) = sum_j (x_j - xhat_j)^2 over the
57 features (a sum, not a mean, so the firmware needs no multiplier).
Layer ``k`` of autoencoder ``i`` is ``ae{i}.layers.{k}`` (an ``nn.Linear``);
the quantized twins in ``quantize`` keep these names so float checkpoints load.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from offline.events.schema import N_FEATURES


@dataclass(frozen=True)
class AEConfig:
    """Architecture of one autoencoder: encoder widths, latent width, decoder mirrors them."""

    hidden: tuple[int, ...] = (16,)
    latent: int = 4
    bias: bool = True
    n_inputs: int = N_FEATURES

    @property
    def widths(self) -> tuple[int, ...]:
        """Every layer boundary, input to output, e.g. (57, 16, 4, 16, 57)."""
        return (self.n_inputs, *self.hidden, self.latent, *reversed(self.hidden), self.n_inputs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AEConfig:
        """Read ``to_dict``'s output; a missing or wrong-typed field is a ValueError naming it."""
        if not isinstance(data, dict):
            raise ValueError(f"architecture must be an object, got {type(data).__name__}")
        try:
            hidden, latent, bias, n_inputs = (
                data["hidden"],
                data["latent"],
                data["bias"],
                data["n_inputs"],
            )
        except KeyError as err:
            raise ValueError(f"architecture: missing field {err}") from None

        def positive(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value > 0

        if not isinstance(hidden, list) or not all(positive(h) for h in hidden):
            raise ValueError(
                f"architecture.hidden must be a list of positive integers, got {hidden!r}"
            )
        for key, value in (("latent", latent), ("n_inputs", n_inputs)):
            if not positive(value):
                raise ValueError(f"architecture.{key} must be a positive integer, got {value!r}")
        if not isinstance(bias, bool):
            raise ValueError(f"architecture.bias must be true or false, got {bias!r}")
        return cls(tuple(hidden), latent, bias, n_inputs)


PRESETS: dict[str, AEConfig] = {
    # small enough for L1 at II=1 (AXOL1TL v1 is 57-32-16-13), and shallow enough for a 40 ns
    # estimate (8 cycles at 5 ns, where 57-32-16-4 needs 11): benchmarks/results/firmware_margin*.json
    "firmware": AEConfig(hidden=(16,), latent=4, bias=True),
    # Mikuni, Nachman, Shih (arXiv 2111.06417) / ViniciusMikuni/DoubleAE
    "paper": AEConfig(hidden=(256, 128, 64, 32), latent=5, bias=False),
}


def preset(name: str) -> AEConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture preset {name!r}; known: {', '.join(PRESETS)}"
        ) from None


class Autoencoder(nn.Module):
    """Dense autoencoder, ReLU after every layer but the last (linear output)."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=config.bias) for a, b in itertools.pairwise(w)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def reconstruction_error(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """R = sum over features of the squared difference, one value per event."""
    return ((x - reconstruction) ** 2).sum(dim=-1)


class AutoencoderPair(nn.Module):
    """Two autoencoders of one architecture; ``forward`` returns (R1, R2) per event."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        self.ae1 = Autoencoder(config)
        self.ae2 = Autoencoder(config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return reconstruction_error(x, self.ae1(x)), reconstruction_error(x, self.ae2(x))
