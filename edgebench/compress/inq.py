"""Incremental Network Quantization (Zhou et al., ICLR 2017), the quantization stage of seed ``002``
(Wijayanto et al., Sec. III-B, eqs. 5–6 and Algorithm 1).

Every selected layer's weights end in ``P_l = {±2^n1, …, ±2^n2, 0}`` with ``n1 = floor(log2(4·s/3))``,
``s = max|W_l|`` and ``n2 = n1 + 1 − 2^(b−1)/2`` (b bits: one for zero, the rest index 2^(b−1)/2
magnitudes per sign). A weight goes to the nearest element of ``P_l`` (the rule
``β·sgn(W)`` if ``(α+β)/2 ≤ |W| < 3β/2`` for adjacent α < β in P_l, else 0).

The schedule is accumulated: at step n the largest-magnitude share σ_n of each layer's weights
(pruning-inspired partition) is quantized and frozen (T = 0 in eq. 6); the rest are retrained
(``epochs_per_step``) to compensate, then the next share is taken, until σ = 1. The torch twin holds the
final powers of two as plain weights, so its input gradients are exact.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from edgebench.compress import COMPRESSORS
from edgebench.compress.base import Compressor, finetune
from edgebench.errors import ConfigError
from edgebench.params import check_bits, check_int, check_schedule
from edgebench.variants import Variant, VariantContext, clone, select_layers


def inq_exponents(w: torch.Tensor, bits: int) -> tuple[int, int]:
    """``(n1, n2)`` of INQ's eq. for the layer's weights ``w`` at ``bits`` (b ≥ 2)."""
    s = float(w.abs().max())
    n1 = math.floor(math.log2(4.0 * s / 3.0)) if s > 0 else 0
    return n1, n1 + 1 - 2 ** (bits - 1) // 2


def quantize_pow2(w: torch.Tensor, n1: int, n2: int) -> torch.Tensor:
    """Nearest element of ``{±2^n1, …, ±2^n2, 0}`` (zero below ``2^(n2−1)``; largest magnitude 2^n1)."""
    a = w.abs()
    e = torch.clamp(torch.round(torch.log2(torch.clamp(a, min=1e-30) / 1.5) + 0.5), n2, n1)
    # |w| in [0.75, 1.5)·2^e maps to e: the nearest power of two in the linear domain (midpoints 3/4·2^e, 3/2·2^e)
    q = torch.sign(w) * torch.pow(2.0, e)
    return torch.where(a < 2.0 ** (n2 - 1), torch.zeros_like(w), q)


@COMPRESSORS.register("inq")
class INQ(Compressor):
    """Incremental Network Quantization to powers of two or zero.

    Args:
        bits: bit width b, 2..8 (5 in Zhou et al.'s main results).
        schedule: accumulated shares quantized at each step (default 50, 75, 87.5, 100 %).
        epochs_per_step: retraining epochs of the not-yet-quantized weights after each step except the last.
        lr: retraining learning rate; default a tenth of the base's.
        layers: module-name globs of the Conv2d/Linear layers; default all.
        adversarial_ratio: λ > 0 mixes FGSM examples into every retraining batch at that share, with the loss
            ``(1 − λ)·CE(clean) + λ·CE(adversarial)`` — Wijayanto et al. 2018's adversarial-aware INQ (seed
            002, Algorithm 1: λ = 0.5); 0 (default) is Zhou et al.'s plain INQ.
        adversarial_eps: FGSM's ε for those examples (input range [0, 1]).
    """

    name = "inq"

    def __init__(self, *, bits: int = 5, schedule: list[float] = (0.5, 0.75, 0.875, 1.0),  # type: ignore[assignment]
                 epochs_per_step: int = 1, lr: float | None = None, layers: list[str] | None = None,
                 adversarial_ratio: float = 0.0, adversarial_eps: float = 0.1) -> None:
        self.bits = check_bits(bits, what=self.what, lo=2)
        for key, value in (("adversarial_ratio", adversarial_ratio), ("adversarial_eps", adversarial_eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"{self.what}: {key} must be a number in [0, 1], got {value!r}")
        self.adversarial_ratio = float(adversarial_ratio)
        self.adversarial_eps = float(adversarial_eps)
        self.schedule = check_schedule(list(schedule), what=self.what)
        self.epochs_per_step = check_int("epochs_per_step", epochs_per_step, what=self.what)
        self.lr = lr
        self.layers = list(layers) if layers is not None else None

    def apply(self, model: nn.Module, ctx: VariantContext) -> Variant:
        twin = clone(model)
        layers = select_layers(twin, self.layers, ctx)
        exps = {name: inq_exponents(layer.weight.detach(), self.bits) for name, layer in layers}
        # weights already pruned (exactly zero: DNS, magnitude pruning) stay zero: frozen from the start, and
        # the schedule's shares count the remaining weights only (seed 002, Algorithm 1 keeps the DNS masks)
        pruned = {name: layer.weight.detach() == 0 for name, layer in layers}
        frozen = {name: pruned[name].clone() for name, layer in layers}
        targets: dict[str, torch.Tensor] = {}
        history: list[dict[str, Any]] = []
        loss = None
        if self.adversarial_ratio > 0:
            from edgebench.defenses.adversarial_training import mixed_loss

            loss = mixed_loss(twin, ratio=self.adversarial_ratio, eps=self.adversarial_eps)

        def reimpose() -> None:
            with torch.no_grad():
                for name, layer in layers:
                    layer.weight.copy_(torch.where(frozen[name], targets[name], layer.weight))

        for step, share in enumerate(self.schedule):
            with torch.no_grad():
                for name, layer in layers:
                    w = layer.weight
                    live = ~pruned[name].flatten()
                    k = round(share * int(live.sum()))
                    # stable: ties (equal magnitudes) break by position on any device
                    order = torch.argsort(torch.where(live, w.abs().flatten(), -1.0), descending=True, stable=True)
                    mask = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
                    mask[order[:k]] = True
                    frozen[name] = mask.view_as(w) | frozen[name]
                    targets[name] = torch.where(pruned[name], torch.zeros_like(w), quantize_pow2(w, *exps[name]))
            reimpose()
            if share < 1.0:
                for h in finetune(twin, ctx, self.epochs_per_step, lr=self.lr, after_step=reimpose, loss=loss,
                                  desc=f"INQ step {step + 1}/{len(self.schedule)}"):
                    history.append({**h, "inq_step": step + 1, "share": share})
        twin.eval()
        per_layer = {name: {"n1": exps[name][0], "n2": exps[name][1],
                            "distinct_values": int(torch.unique(layer.weight.detach()).numel()),
                            "zeros": float((layer.weight == 0).float().mean()),
                            "pruned_kept": int(pruned[name].sum())} for name, layer in layers}
        return Variant(model=twin, history=history, info={
            "grid": f"powers of two or zero, {self.bits} bits: {{±2^n1..±2^n2, 0}} per layer",
            "bits": self.bits, "schedule": list(self.schedule), "per_layer": per_layer,
            "adversarial": None if not self.adversarial_ratio else {
                "ratio": self.adversarial_ratio, "eps": self.adversarial_eps, "attack": "fgsm, predicted labels",
                "rule": "(1 - lambda) CE(clean) + lambda CE(adv) in every retraining batch (seed 002, Alg. 1)"}})
