"""The quantized pair in Brevitas, built from a FirmwareSpec, and its QONNX export.

Quantizers are Brevitas' power-of-two fixed-point ones (the only ones hls4ml reproduces
exactly, see docs/toolchain.md) with their scale *fixed* to the spec's type instead of learned
from statistics: ``scale = 2**-fractional``. So the spec is known before training and the
trained model lies on it by construction:

- weights ``Int8WeightPerTensorFixedPoint`` with ``narrow_range=False`` (the full
  ``ap_fixed`` range, as QKeras' ``quantized_bits(alpha=1)``), bias
  ``Int8BiasPerTensorFixedPointInternalScaling`` (its own type, not input*weight scale);
- input ``Int8ActPerTensorFixedPoint`` (signed), hidden ReLUs
  ``Uint8ActPerTensorFixedPoint``; both round half to even (``torch.round``) and clip,
  i.e. ``AP_RND_CONV, AP_SAT``;
- widths from the spec (the ``Int8``/``Uint8`` names are only the base classes).

State-dict names follow ``offline.ad.model`` (``ae{i}.layers.{k}.weight``), so a float
checkpoint loads directly.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from brevitas.inject.enum import ScalingImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8BiasPerTensorFixedPointInternalScaling,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
)
from torch import nn
from tqdm.auto import tqdm

from offline.ad.model import AutoencoderPair, reconstruction_error
from offline.ad.train import pair_loss
from quantize.qat import QATConfig, magnitude_mask, sparsity_at
from quantize.spec import (
    AutoencoderSpec,
    FirmwareSpec,
    FixedType,
    require_reconstruction,
    weight_key,
)

__all__ = [
    "BrevitasAutoencoder",
    "BrevitasPair",
    "export_qonnx",
    "finetune",
    "quantized_weights",
]

_EXACT_ACT = ("AP_RND_CONV", "AP_SAT")


def _weight_quant(t: FixedType):
    return Int8WeightPerTensorFixedPoint.let(
        narrow_range=False,
        bit_width=t.width,
        scaling_impl_type=ScalingImplType.CONST,
        scaling_const=math.ldexp(1.0, t.integer - 1),
    )


def _bias_quant(t: FixedType):
    return Int8BiasPerTensorFixedPointInternalScaling.let(
        bit_width=t.width,
        scaling_impl_type=ScalingImplType.CONST,
        scaling_const=math.ldexp(1.0, t.integer - 1),
    )


def _act_quant(t: FixedType, where: str):
    if (t.rounding, t.overflow) != _EXACT_ACT:
        raise ValueError(
            f"{where}: Brevitas activations round half to even and saturate; {t} is not {_EXACT_ACT}"
        )
    if t.signed:
        top = math.ldexp(1.0, t.integer - 1)
        return Int8ActPerTensorFixedPoint.let(
            bit_width=t.width, scaling_impl_type=ScalingImplType.CONST, max_val=top, min_val=-top
        )
    return Uint8ActPerTensorFixedPoint.let(
        bit_width=t.width,
        scaling_impl_type=ScalingImplType.CONST,
        max_val=math.ldexp(1.0, t.integer),
    )


class BrevitasAutoencoder(nn.Module):
    """One autoencoder of the spec: input quantizer, QuantLinear layers, QuantReLU between them."""

    def __init__(self, spec: AutoencoderSpec, input_type: FixedType) -> None:
        super().__init__()
        self.spec = spec
        self.input_quant = QuantIdentity(
            act_quant=_act_quant(input_type, "input"), return_quant_tensor=False
        )
        self.layers: Any = nn.ModuleList()  # of QuantLinear, which has no type information
        self.acts = nn.ModuleList()
        for k, d in enumerate(spec.layers):
            if d.result != d.accumulator:
                raise ValueError(
                    f"{spec.name} layer {k}: Brevitas keeps the exact accumulator as the result"
                )
            self.layers.append(
                QuantLinear(
                    d.n_in,
                    d.n_out,
                    bias=d.bias is not None,
                    weight_quant=_weight_quant(d.weight),
                    bias_quant=_bias_quant(d.bias) if d.bias is not None else None,
                    return_quant_tensor=False,
                )
            )
            if d.activation == "relu":
                self.acts.append(
                    QuantReLU(
                        act_quant=_act_quant(d.activation_result, f"{d.name}"),
                        return_quant_tensor=False,
                    )
                )
            elif d.activation_result != d.result:
                raise ValueError(
                    f"{d.name}: a linear layer's result must be its exact accumulator in Brevitas"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.acts):
                x = self.acts[k](x)
        return x

    def trace(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every activation, input quantizer first (for grid checks)."""
        x = self.input_quant(x)
        out = [x]
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.acts):
                x = self.acts[k](x)
            out.append(x)
        return out


class BrevitasPair(nn.Module):
    """The two autoencoders; ``forward`` returns (R1, R2) of the quantized input, like the float pair."""

    def __init__(self, spec: FirmwareSpec) -> None:
        super().__init__()
        require_reconstruction(spec, "the Brevitas pair")
        self.spec = spec
        self.ae1 = BrevitasAutoencoder(spec.autoencoders[0], spec.input)
        self.ae2 = BrevitasAutoencoder(spec.autoencoders[1], spec.input)

    @property
    def autoencoders(self) -> tuple[BrevitasAutoencoder, BrevitasAutoencoder]:
        return (self.ae1, self.ae2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xq = self.ae1.input_quant(x)
        return reconstruction_error(xq, self.ae1(x)), reconstruction_error(xq, self.ae2(x))

    def load_float(self, model: AutoencoderPair) -> BrevitasPair:
        """Copy the float pair's weights (same names); quantizer state stays as built."""
        missing, unexpected = self.load_state_dict(model.state_dict(), strict=False)
        if unexpected:
            raise ValueError(
                f"float checkpoint has tensors the quantized pair lacks: {unexpected[:5]}"
            )
        need = {
            k for k in self.state_dict() if k.endswith((".weight", ".bias")) and ".layers." in k
        }
        lacking = need & set(missing)
        if lacking:
            raise ValueError(f"float checkpoint lacks {sorted(lacking)[:5]}")
        return self

    def load_quantized(self, weights: dict[str, np.ndarray]) -> BrevitasPair:
        """Load grid weights (a spec's ``weights.safetensors``); they quantize to themselves."""
        with torch.no_grad():
            for i, ae in enumerate(self.autoencoders):
                for k, layer in enumerate(ae.layers):
                    layer.weight.copy_(torch.as_tensor(weights[weight_key(i, k, "weight")]))
                    if layer.bias is not None:
                        layer.bias.copy_(torch.as_tensor(weights[weight_key(i, k, "bias")]))
        return self


def quantized_weights(model: BrevitasPair) -> dict[str, np.ndarray]:
    """The weights and biases as the quantizers see them: exact values on the spec's grids."""
    out = {}
    with torch.no_grad():
        for i, ae in enumerate(model.autoencoders):
            for k, layer in enumerate(ae.layers):
                out[weight_key(i, k, "weight")] = layer.quant_weight().value.double().numpy()
                if layer.bias is not None:
                    out[weight_key(i, k, "bias")] = layer.quant_bias().value.double().numpy()
    return out


def _masks_update(model: BrevitasPair, masks: dict[str, torch.Tensor], sparsity: float) -> None:
    for i, ae in enumerate(model.autoencoders):
        for k, layer in enumerate(ae.layers):
            key = weight_key(i, k, "weight")
            prev = masks.get(key)
            m = magnitude_mask(
                layer.weight.detach().numpy(), sparsity, None if prev is None else prev.numpy()
            )
            masks[key] = torch.from_numpy(m)


def _masks_apply(model: BrevitasPair, masks: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for i, ae in enumerate(model.autoencoders):
            for k, layer in enumerate(ae.layers):
                m = masks.get(weight_key(i, k, "weight"))
                if m is not None:
                    layer.weight.mul_(m)


def finetune(
    model: BrevitasPair,
    train_x: np.ndarray,
    train_w: np.ndarray,
    val_x: np.ndarray,
    val_w: np.ndarray,
    config: QATConfig,
    lam: float,
) -> list[dict[str, float]]:
    """QAT with the float training's loss (``offline.ad.train.pair_loss``), magnitude pruning on top.

    Keeps the weights of the best validation loss among epochs at full target sparsity.
    Returns the per-epoch history.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x = torch.as_tensor(train_x, dtype=torch.float32)
    w = torch.as_tensor(train_w, dtype=torch.float32)
    vx = torch.as_tensor(val_x, dtype=torch.float32)
    vw = torch.as_tensor(val_w, dtype=torch.float32)
    batch = min(config.batch_size, len(x))
    per_epoch = max(len(x) // batch, 1)
    total = per_epoch * config.epochs
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    masks: dict[str, torch.Tensor] = {}
    history: list[dict[str, float]] = []
    best, best_state, step = math.inf, None, 0
    bar = tqdm(
        range(config.epochs), desc="QAT (Brevitas)", disable=not config.progress, leave=False
    )
    for epoch in bar:
        model.train()
        order = torch.from_numpy(rng.permutation(len(x)))
        losses = []
        for b in range(per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            r1, r2 = model(x[idx])
            loss = pair_loss(r1, r2, w[idx], lam).total
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            target = sparsity_at(config, step, total)
            if target > 0:
                _masks_update(model, masks, target)
                _masks_apply(model, masks)
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            r1, r2 = model(vx)
            val = float(pair_loss(r1, r2, vw, lam).total)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val})
        bar.set_postfix(val=f"{val:.4g}")
        if sparsity_at(config, step, total) >= config.sparsity and val < best:
            best, best_state = val, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def export_qonnx(model: BrevitasPair, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Each autoencoder as a cleaned QONNX file ``ae1.onnx``/``ae2.onnx`` (what hls4ml converts).

    Cleaning as in docs/toolchain.md: qonnx ``cleanup``, ``ConvertToChannelsLastAndClean``, ``GemmToMatMul``.
    """
    from brevitas.export import export_qonnx as _export
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    from offline.artifacts import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    model.eval()
    for ae in model.autoencoders:
        n_in = ae.spec.layers[0].n_in
        target = directory / f"{ae.spec.name}.onnx"
        # the raw export (and the external-data file torch writes beside it) lives in a scratch
        # directory elsewhere, so nothing but the cleaned model ever lands in ``directory``
        with (
            atomic_path(target) as tmp,
            tempfile.TemporaryDirectory(prefix="l1ad-qonnx-") as scratch,
        ):
            raw = Path(scratch) / f"{ae.spec.name}.raw.onnx"
            _export(ae, torch.zeros(1, n_in), export_path=str(raw))
            wrapped = cleanup_model(ModelWrapper(str(raw)))
            wrapped = wrapped.transform(ConvertToChannelsLastAndClean())
            with warnings.catch_warnings():
                # qonnx checks the opset of Gemm (9) against the model's "version"; our Gemms are
                # plain (no transposes/alpha/beta) and the tests check the result against Brevitas
                warnings.filterwarnings(
                    "ignore", message="The GemmToMatMul transformation only offers"
                )
                wrapped = wrapped.transform(GemmToMatMul())
            wrapped = cleanup_model(wrapped)
            wrapped.save(str(tmp))
        paths[ae.spec.name] = target
    return paths
