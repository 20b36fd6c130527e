"""FGSM — Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, "Explaining and Harnessing
Adversarial Examples", ICLR 2015). Norm: L∞.

Update, one step: ``x_adv = clip_[0,1](x + ε · sign(∇_x J(x, y)))`` (targeted:
``x − ε · sign(∇_x J(x, t))``). This is eq. 5 of Liu et al. 2018 (seed ``000``); run on a compressed
variant's torch twin, whose forward pass goes through the reshaped weights, it is their HFGSM (eq. 6).

Cost per ε: one forward + one backward, and one forward to read the prediction on ``x_adv``.

Example::

    result = FGSM()(model, x, y, eps=[0.1, 0.2, 0.3])
"""

from __future__ import annotations

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import loss_gradient
from edgebench.attacks.base import Attack, Passes, predict


@ATTACKS.register("fgsm")
class FGSM(Attack):
    """Fast Gradient Sign Method, L∞, untargeted or targeted. No hyper-parameters besides ε."""

    name = "fgsm"
    norm = "linf"
    family_ok = True

    def __init__(self) -> None:
        pass

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            target: torch.Tensor | None, passes: Passes) -> tuple[torch.Tensor, torch.Tensor]:
        grad, _ = loss_gradient(model, x, y, target, passes, attack=self.name)
        x_adv = torch.clamp(x + eps * grad.sign(), 0.0, 1.0)
        return x_adv, predict(model, x_adv, passes, y, target)
