"""What the compression methods share besides the variant-method base (:mod:`edgebench.variants`):
fine-tuning, BatchNorm re-calibration and the straight-through estimator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from edgebench.models.placement import to_model
from edgebench.models.train import Loss, train
from edgebench.variants import VariantContext, VariantMethod


class Compressor(VariantMethod):
    """A registered compression method (a plan's ``[[compress]]``): a :class:`VariantMethod` of kind
    ``compress``."""

    kind: ClassVar[str] = "compress"


# training -----------------------------------------------------------------------------------------------
def finetune(model: nn.Module, ctx: VariantContext, epochs: int, *, lr: float | None = None, desc: str = "finetune",
             loss: Loss | None = None, after_step: Callable[[], None] | None = None,
             params: list[nn.Parameter] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` with the base's optimizer and batch size (learning rate ``lr`` if
    given, else a tenth of the base's, the usual fine-tuning choice); 0 epochs is a no-op."""
    if epochs <= 0 or len(ctx.x_train) == 0:
        return []
    cfg = replace(ctx.train, epochs=epochs, lr=lr if lr is not None else ctx.train.lr / 10, seed=ctx.seed)
    return train(model, ctx.x_train, ctx.y_train, cfg, desc=desc, loss=loss, after_step=after_step, params=params)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: np.ndarray, *, batch_size: int = 256, max_samples: int = 4096) -> int:
    """Re-estimate every BatchNorm's running mean and variance on ``x`` (cumulative average over the
    batches, on the model's device), the BN adaptation NNCF applies after pruning. Returns the number of
    BatchNorm layers."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or len(x) == 0:
        return 0
    saved = {m: m.momentum for m in bns}
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    xs = x[:max_samples]
    for i in range(0, len(xs), batch_size):
        model(to_model(model, xs[i:i + batch_size]))
    for m, mom in saved.items():
        m.momentum = mom
    model.eval()
    return len(bns)


def straight_through(full: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """``quantized`` in the forward pass, identity gradient to ``full`` in the backward pass (STE,
    Bengio et al. 2013)."""
    return full + (quantized - full).detach()
