"""MIM — Momentum Iterative Method, a.k.a. MI-FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum",
CVPR 2018, Algorithm 1). Norm: L∞.

Defaults: 10 steps, decay μ = 1.0, step size α = ε / steps, no random start. The gradient is normalised by
its per-sample L1 norm before it enters the momentum buffer, so that steps of different gradient scale weigh
the same; the step follows the sign of the accumulated direction::

    x_0 = x,  g_0 = 0
    g_{t+1} = μ · g_t + ∇_x J(x_t, y) / ‖∇_x J(x_t, y)‖₁         (targeted: the gradient of −J(x_t, t))
    x_{t+1} = Π_{B∞(x, ε) ∩ [0,1]} ( x_t + α · sign(g_{t+1}) )

μ = 0 is BIM. Per sample, the first iterate that is adversarial is kept (the forward pass of each step
already shows it); otherwise the last iterate. Cost per ε: ``steps`` forward+backward passes and one forward
on the last iterate.

Example::

    result = MIM(steps=10, decay=1.0)(model, x, y, eps=[0.05, 0.1, 0.2])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import check_iterative, iterate, step_size
from edgebench.attacks.base import Attack, Passes, project_linf
from edgebench.errors import ConfigError


@ATTACKS.register("mim")
class MIM(Attack):
    """Momentum Iterative Method (MI-FGSM), L∞, untargeted or targeted.

    Args:
        steps: iterations (gradient evaluations) per ε.
        decay: momentum decay factor μ (>= 0; 0 gives BIM).
        rel_stepsize: step size as a fraction of ε; default ``1 / steps`` (ignored when ``abs_stepsize`` is set).
        abs_stepsize: step size in input units.
    """

    name = "mim"
    norm = "linf"
    family_ok = True

    def __init__(
        self,
        *,
        steps: int = 10,
        decay: float = 1.0,
        rel_stepsize: float | None = None,
        abs_stepsize: float | None = None,
    ) -> None:
        check_iterative(self.name, steps, rel_stepsize, abs_stepsize)
        if not (isinstance(decay, (int, float)) and 0 <= decay < math.inf):
            raise ConfigError(f"attack 'mim': decay must be a finite number >= 0, got {decay!r}")
        self.steps = steps
        self.decay = decay
        self.rel_stepsize = rel_stepsize
        self.abs_stepsize = abs_stepsize

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        target: torch.Tensor | None,
        passes: Passes,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = step_size(eps, self.steps, self.rel_stepsize, self.abs_stepsize, default_rel=1.0)
        momentum = torch.zeros_like(x)
        shape = (-1, *([1] * (x.ndim - 1)))

        def update(x_t: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
            nonlocal momentum
            momentum = self.decay * momentum + grad / grad.flatten(1).abs().sum(1).clamp_min(1e-12).view(shape)
            return project_linf(x_t + alpha * momentum.sign(), x, eps)

        return iterate(model, x, y, target, passes, attack=self.name, start=x.clone(), steps=self.steps,
                       update=update)
