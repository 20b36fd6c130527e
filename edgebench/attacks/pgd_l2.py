"""PGD-L2 — Projected Gradient Descent with an L2 budget (Madry et al., "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018). Norm: L2 (ε is the Euclidean norm of the perturbation, in
input units over all features).

Defaults: 40 steps, step size α = 2.5 · ε / steps, uniform random start in the L2 ball (direction uniform on
the sphere, radius ``ε · u^(1/d)``). The step follows the L2-normalised gradient, the steepest ascent
direction for the L2 norm::

    x_0     = x + δ_0,  δ_0 ~ U(B2(0, ε))                               (random_start)
    x_{t+1} = Π_{B2(x, ε) ∩ [0,1]} ( x_t + α · ∇_x J(x_t, y) / ‖∇_x J(x_t, y)‖₂ )

(targeted: the gradient of −J(x_t, t)). Projection: rescale onto the ball, then clip to [0, 1], which
cannot make the norm grow. Per sample, the first iterate that is adversarial is kept; otherwise the last
iterate. Cost per ε: ``steps`` forward+backward passes and one forward on the last iterate.

Example::

    result = PGDL2(steps=40, random_start=True, seed=0)(model, x, y, eps=[0.5, 1.0, 2.0])
"""

from __future__ import annotations

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import check_iterative, iterate, normalize_l2, random_start_l2, step_size
from edgebench.attacks.base import Attack, Passes, project_l2


@ATTACKS.register("pgd-l2")
class PGDL2(Attack):
    """PGD with an L2 budget, untargeted or targeted.

    Args:
        steps: iterations (gradient evaluations) per ε.
        rel_stepsize: step size as a fraction of ε; default ``2.5 / steps`` (ignored when ``abs_stepsize`` is set).
        abs_stepsize: step size in input units (L2 length of one step).
        random_start: start from a uniform point of the ε-ball.
        seed: seed of the random start.
    """

    name = "pgd-l2"
    norm = "l2"

    def __init__(
        self,
        *,
        steps: int = 40,
        rel_stepsize: float | None = None,
        abs_stepsize: float | None = None,
        random_start: bool = True,
        seed: int = 0,
    ) -> None:
        check_iterative(self.name, steps, rel_stepsize, abs_stepsize)
        self.steps = steps
        self.rel_stepsize = rel_stepsize
        self.abs_stepsize = abs_stepsize
        self.random_start = random_start
        self.seed = seed

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
        alpha = step_size(eps, self.steps, self.rel_stepsize, self.abs_stepsize, default_rel=2.5)
        gen = torch.Generator().manual_seed(self.seed)
        start = random_start_l2(x, eps, gen) if self.random_start else x.clone()
        return iterate(model, x, y, target, passes, attack=self.name, start=start, steps=self.steps,
                       update=lambda x_t, grad: project_l2(x_t + alpha * normalize_l2(grad), x, eps))
