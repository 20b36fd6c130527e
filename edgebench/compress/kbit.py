"""k-bit linear weight quantization (seed ``003``: Song et al., "Improving adversarial robustness in
weight-quantized neural networks", Sec. "Quantization" and Fig. 1: weights only, linear levels, 1–8 bits).

Each selected layer's weight tensor is replaced by its nearest value on a symmetric uniform grid, per
tensor (``granularity = "tensor"``, one scale per layer) or per output channel (``"channel"``). Biases and
activations stay in floating point, as in the paper. Two grids, named in the variant record because
they differ a lot at low bit widths (DESIGN.md: 17 points apart at 3 bits on an adversarially trained
MNIST network):

- ``grid = "zero"`` (mid-tread): ``s·{−(2^(b−1)−1), …, −1, 0, 1, …, 2^(b−1)−1}``, 2^b − 1 levels with an
  exact zero; needs b ≥ 2.
- ``grid = "nozero"`` (mid-rise): ``s·{±1/2, ±3/2, …, ±(2^(b−1) − 1/2)}``, 2^b levels without zero; b = 1
  is binary ±s/2.

The scale ``s`` puts the outermost level on ``max|W|`` (``scale = "max"``) or on the clipping value in
``max|W|·{0.30, 0.32, …, 1.00}`` that minimizes ‖W − Q(W)‖² (``scale = "mse"``, the default; it keeps
outliers from wasting the few levels at 2–4 bits).

The torch twin holds the quantized values as ordinary weights, so input gradients through it are exact:
a white-box attack on the twin attacks exactly the deployed function. The exported artifacts keep fp32
storage of the quantized values; the DEFLATE statistics show the storage gain.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor
from edgebench.params import check_bits, check_choice
from edgebench.variants import Variant, VariantContext, clone, select_layers

_CLIPS = torch.linspace(0.30, 1.00, 36)


def _levels(bits: int, grid: str) -> tuple[float, float]:
    """(offset, top) in units of the step: level k·step + offset for k in a symmetric range."""
    half = 2 ** (bits - 1)
    return (0.0, float(half - 1)) if grid == "zero" else (0.5, half - 0.5)


def quantize_linear(w: torch.Tensor, *, bits: int, grid: str, clip: torch.Tensor) -> torch.Tensor:
    """Round ``w`` to the grid whose outermost level sits at ``clip`` (broadcast against ``w``)."""
    offset, top = _levels(bits, grid)
    step = clip / top
    step = torch.where(step > 0, step, torch.ones_like(step))
    k = torch.floor(w / step) if offset else torch.round(w / step)
    k = torch.clamp(k, -top - offset, top - offset)
    return (k + offset) * step


def _clip_value(w: torch.Tensor, *, bits: int, grid: str, scale: str, channel: bool) -> torch.Tensor:
    flat = w.reshape(w.shape[0], -1) if channel else w.reshape(1, -1)
    amax = flat.abs().amax(dim=1, keepdim=True)
    if scale == "max":
        best = amax
    else:
        clips = _CLIPS.to(flat.device, flat.dtype)
        errs = torch.stack([((flat - quantize_linear(flat, bits=bits, grid=grid, clip=amax * c)) ** 2).sum(1)
                            for c in clips])
        best = amax * clips[errs.argmin(0)].unsqueeze(1)
    shape = (-1,) + (1,) * (w.dim() - 1) if channel else (1,) * w.dim()
    return best.reshape(shape)


@COMPRESSORS.register("kbit")
class KBit(Compressor):
    """Linear weight quantization to ``bits`` (1–8) on a named grid, per tensor or per channel.

    Args:
        bits: bit width b, 1..8 (``grid = "zero"`` needs b ≥ 2).
        grid: ``"zero"`` (2^b − 1 levels with zero) or ``"nozero"`` (2^b levels without zero).
        granularity: ``"tensor"`` (one scale per layer) or ``"channel"`` (one per output channel).
        scale: ``"mse"`` (clipping that minimizes the squared error) or ``"max"`` (no clipping).
        layers: module-name globs of the Conv2d/Linear layers to quantize; default all.
    """

    name = "kbit"

    def __init__(self, *, bits: int, grid: str = "zero", granularity: str = "channel", scale: str = "mse",
                 layers: list[str] | None = None) -> None:
        self.bits = check_bits(bits, what=self.what)
        self.grid = check_choice("grid", grid, ("zero", "nozero"), what=self.what)
        if self.grid == "zero" and self.bits < 2:
            from edgebench.errors import ConfigError

            raise ConfigError(f"{self.what}: grid 'zero' needs bits >= 2 (1 bit leaves only the zero "
                              "level); use grid = 'nozero' for binary weights")
        self.granularity = check_choice("granularity", granularity, ("tensor", "channel"), what=self.what)
        self.scale = check_choice("scale", scale, ("mse", "max"), what=self.what)
        self.layers = list(layers) if layers is not None else None

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        twin = clone(model)
        per_layer: dict[str, Any] = {}
        with torch.no_grad():
            for name, layer in select_layers(twin, self.layers, ctx):
                w = layer.weight
                clip = _clip_value(w, bits=self.bits, grid=self.grid, scale=self.scale,
                                   channel=self.granularity == "channel")
                q = quantize_linear(w, bits=self.bits, grid=self.grid, clip=clip)
                per_layer[name] = {"levels_used": int(torch.unique(q).numel()),
                                   "max_abs_error": float((q - w).abs().max())}
                w.copy_(q)
        levels = 2 ** self.bits - (1 if self.grid == "zero" else 0)
        grid_desc = (f"symmetric uniform, {levels} levels "
                     f"{'with a zero level' if self.grid == 'zero' else 'without zero'}, per {self.granularity}, "
                     f"scale by {'squared-error clipping search' if self.scale == 'mse' else 'max |W|'}")
        return Variant(model=twin, info={"grid": grid_desc, "bits": self.bits, "levels": levels,
                                            "per_layer": per_layer})
