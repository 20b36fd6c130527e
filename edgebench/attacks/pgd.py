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
from edgebench.attacks._gradient import check_iterative, iterate, random_start_linf, step_size
from edgebench.attacks.base import Attack, Passes, project_linf


@ATTACKS.register("pgd")
class PGD(Attack):
    """PGD with an L∞ budget, untargeted or targeted.

    Subclasses change the norm by overriding :meth:`start` and :meth:`step` (:class:`~.pgd_l2.PGDL2`) or the
    defaults (:class:`~.bim.BIM`).

    Args:
        steps: iterations (gradient evaluations) per ε.
        rel_stepsize: step size as a fraction of ε; default ``default_rel / steps`` (2.5 / steps for PGD;
            ignored when ``abs_stepsize`` is set).
        abs_stepsize: step size in input units (measured in the attack's norm).
        random_start: start from a uniform point of the ε-ball.
        seed: seed of the random start.
    """

    name = "pgd"
    norm = "linf"
    family_ok = True
    default_rel = 2.5  # α = default_rel / steps · ε unless a step size is given

    def __init__(self, *, steps: int = 40, rel_stepsize: float | None = None, abs_stepsize: float | None = None,
                 random_start: bool = True, seed: int = 0) -> None:
        check_iterative(self.name, steps, rel_stepsize, abs_stepsize)
        self.steps = steps
        self.rel_stepsize = rel_stepsize
        self.abs_stepsize = abs_stepsize
        self.random_start = random_start
        self.seed = seed

    def start(self, x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        """A uniform point of the ε-ball around ``x`` (the random start)."""
        return random_start_linf(x, eps, generator)

    def step(self, x_t: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, eps: float, alpha: float) -> torch.Tensor:
        """One ascent step of length ``alpha`` along the steepest direction of the norm, projected back."""
        return project_linf(x_t + alpha * grad.sign(), x, eps)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            target: torch.Tensor | None, passes: Passes) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = step_size(eps, self.steps, self.rel_stepsize, self.abs_stepsize, default_rel=self.default_rel)
        gen = torch.Generator().manual_seed(self.seed)
        start = self.start(x, eps, gen) if self.random_start else x.clone()
        return iterate(model, x, y, target, passes, attack=self.name, start=start, steps=self.steps,
                       update=lambda x_t, grad: self.step(x_t, grad, x, eps, alpha))
