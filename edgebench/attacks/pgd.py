"""PGD-L∞ — Projected Gradient Descent (Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018). Norm: L∞.

Defaults: 40 steps, step size α = 2.5 · ε / steps (Madry et al.'s rule, so that the iterates can travel
2.5 ε and reach the boundary of the ball from any start), uniform random start in the ε-ball. Update::

    x_0     = x + U(−ε, ε)                                  (random_start)
    x_{t+1} = Π_{B∞(x, ε) ∩ [0,1]} ( x_t + α · sign(∇_x J(x_t, y)) )

Per sample, the first iterate that is adversarial is kept (the forward pass of each step already shows
it, so this costs nothing); otherwise the last iterate. Cost per ε: ``steps`` forward+backward passes and
one forward on the last iterate.

Example::

    result = PGD(steps=40, random_start=True, seed=0)(model, x, y, eps=[0.1, 0.2, 0.3])
"""

from __future__ import annotations

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import first_success, loss_gradient, project_linf, random_start_linf
from edgebench.attacks.base import Attack, Passes, predict
from edgebench.errors import ConfigError


@ATTACKS.register("pgd")
class PGD(Attack):
    """PGD with an L∞ budget.

    Args:
        steps: iterations (gradient evaluations) per ε.
        rel_stepsize: step size as a fraction of ε; default ``2.5 / steps`` (ignored when ``abs_stepsize`` is set).
        abs_stepsize: step size in input units.
        random_start: start from a uniform point of the ε-ball.
        seed: seed of the random start.
    """

    name = "pgd"
    norm = "linf"

    def __init__(self, *, steps: int = 40, rel_stepsize: float | None = None, abs_stepsize: float | None = None,
                 random_start: bool = True, seed: int = 0) -> None:
        if steps < 1:
            raise ConfigError(f"attack 'pgd': steps must be >= 1, got {steps}")
        if (rel_stepsize is not None and rel_stepsize <= 0) or (abs_stepsize is not None and abs_stepsize <= 0):
            raise ConfigError("attack 'pgd': step sizes must be > 0")
        self.steps = steps
        self.rel_stepsize = rel_stepsize
        self.abs_stepsize = abs_stepsize
        self.random_start = random_start
        self.seed = seed

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            target: torch.Tensor | None, passes: Passes) -> tuple[torch.Tensor, torch.Tensor]:
        rel = self.rel_stepsize if self.rel_stepsize is not None else 2.5 / self.steps
        alpha = self.abs_stepsize if self.abs_stepsize is not None else rel * eps
        gen = torch.Generator().manual_seed(self.seed)
        x_adv = random_start_linf(x, eps, gen) if self.random_start else x.clone()
        best = x.clone()
        best_pred = torch.full_like(y, -1)
        done = torch.zeros(len(x), dtype=torch.bool)
        for _ in range(self.steps):
            grad, logits = loss_gradient(model, x_adv, y, target, passes, attack=self.name)
            first_success(best, best_pred, done, x_adv, logits.argmax(1), y, target)
            x_adv = project_linf(x_adv + alpha * grad.sign(), x, eps)
        last_pred = predict(model, x_adv, passes)
        keep = ~done
        best[keep], best_pred[keep] = x_adv[keep], last_pred[keep]
        return best, best_pred
