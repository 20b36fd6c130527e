"""Dynamic Network Surgery (Guo, Yao and Chen, NIPS 2016), the pruning stage of seed ``002``
(Wijayanto et al., Sec. III-A, eqs. 3–4).

Each selected layer computes with ``W ⊙ C``. The mask ``C = h(W)`` is re-evaluated during training with
two thresholds ``a < b`` (hysteresis): ``h(w) = 0`` if ``|w| < a``, ``1`` if ``|w| ≥ b``, unchanged in
between. The gradient of the loss with respect to ``W ⊙ C`` updates **every** entry of ``W`` (eq. 4), so a
pruned weight keeps learning and is *spliced* back when it grows past ``b`` again.

Thresholds: Guo et al. derive them from the layer's mean and standard deviation of ``|W|`` with a
hand-tuned factor per layer; here the factor is replaced by the target ``sparsity`` (the
``sparsity``-quantile ``t`` of ``|W|``), with ``a = (1 − margin)·t`` and ``b = (1 + margin)·t``, so one
parameter sets the compression for every network; ``layer_rates`` gives named layers a sparsity of their own
(Guo et al. and Han et al. prune the first convolution lightest: :mod:`edgebench.compress.layer_rates`).
Masks are updated every ``update_every`` steps with
probability ``(1 + gamma·iteration)^(−power)`` (their schedule), then frozen and baked into the weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor, finetune, straight_through
from edgebench.compress.layer_rates import check_layer_rates, layer_rate_map
from edgebench.params import check_int, check_ratio
from edgebench.variants import Variant, VariantContext, clone, select_layers


class SurgeryMask(nn.Module):
    """Parametrization ``W -> W ⊙ C`` whose gradient reaches every entry of ``W`` (eq. 4)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return straight_through(w, w * self.mask)


def surgery_update(w: torch.Tensor, mask: torch.Tensor, sparsity: float, margin: float) -> torch.Tensor:
    """One pruning-and-splicing update of ``mask`` for weights ``w`` (h of eq. 3 with hysteresis)."""
    a_abs = w.abs()
    t = torch.quantile(a_abs.flatten().float()[: 2 ** 24], sparsity)
    lo, hi = (1 - margin) * t, (1 + margin) * t
    return torch.where(a_abs < lo, torch.zeros_like(mask), torch.where(a_abs >= hi, torch.ones_like(mask), mask))


@COMPRESSORS.register("dns")
class DNS(Compressor):
    """Dynamic network surgery: magnitude pruning with splicing.

    Args:
        sparsity: target share of zero weights per layer, in (0, 1).
        epochs: training epochs with surgery (the masks keep changing).
        margin: half-width of the hysteresis band around the threshold (0.1: a = 0.9·t, b = 1.1·t).
        update_every: optimizer steps between mask updates.
        gamma, power: the update probability ``(1 + gamma·iteration)^(−power)`` of Guo et al.
        lr: learning rate; default a tenth of the base's.
        layers: module-name globs of the Conv2d/Linear layers; default all.
        layer_rates: ``{layer name: sparsity}`` for named layers (0 leaves one dense); the others get ``sparsity``.
    """

    name = "dns"

    def __init__(self, *, sparsity: float, epochs: int = 2, margin: float = 0.1, update_every: int = 1,
                 gamma: float = 1e-4, power: float = 1.0, lr: float | None = None,
                 layers: list[str] | None = None, layer_rates: dict[str, float] | None = None) -> None:
        self.sparsity = check_ratio("sparsity", sparsity, what=self.what)
        self.epochs = check_int("epochs", epochs, what=self.what)
        self.margin = check_ratio("margin", margin, what=self.what)
        self.update_every = check_int("update_every", update_every, what=self.what, lo=1)
        self.gamma, self.power, self.lr = float(gamma), float(power), lr
        self.layers = list(layers) if layers is not None else None
        self.layer_rates = check_layer_rates(layer_rates, what=self.what)

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        twin = clone(model)
        rates = layer_rate_map(twin, self.layer_rates, self.sparsity, ctx, what=self.what)
        layers = [(n, m) for n, m in select_layers(twin, self.layers, ctx) if rates[n] > 0]
        masks: dict[str, SurgeryMask] = {}
        for name, layer in layers:
            w = layer.weight.detach()
            m = SurgeryMask(surgery_update(w, torch.ones_like(w), rates[name], 0.0))
            parametrize.register_parametrization(layer, "weight", m)
            masks[name] = m
        gen = torch.Generator().manual_seed(ctx.seed)
        state = {"it": 0, "updates": 0, "spliced": 0}

        def surgery() -> None:
            state["it"] += 1
            it = state["it"]
            if it % self.update_every or torch.rand((), generator=gen) > (1 + self.gamma * it) ** -self.power:
                return
            state["updates"] += 1
            with torch.no_grad():
                for name, layer in layers:
                    m = masks[name]
                    new = surgery_update(layer.parametrizations.weight.original, m.mask, rates[name], self.margin)
                    state["spliced"] += int(((m.mask == 0) & (new == 1)).sum())
                    m.mask.copy_(new)

        history = finetune(twin, ctx, self.epochs, lr=self.lr, after_step=surgery, desc="DNS")
        per_layer: dict[str, Any] = {}
        for name, layer in layers:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            per_layer[name] = {"sparsity": float((layer.weight == 0).float().mean()), "target": rates[name]}
        twin.eval()
        return Variant(model=twin, history=history, info={
            "sparsity_target": self.sparsity, "layer_rates": self.layer_rates, "per_layer": per_layer,
            "mask_updates": state["updates"],
            "spliced": state["spliced"], "steps": state["it"]})
