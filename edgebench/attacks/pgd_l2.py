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

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import normalize_l2, random_start_l2
from edgebench.attacks.base import project_l2
from edgebench.attacks.pgd import PGD


@ATTACKS.register("pgd-l2")
class PGDL2(PGD):
    """PGD with an L2 budget, untargeted or targeted.

    :class:`~.pgd.PGD`'s parameters and loop, with the L2 random start, step and projection (``abs_stepsize``
    is the L2 length of one step)."""

    name = "pgd-l2"
    norm = "l2"

    def start(self, x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        return random_start_l2(x, eps, generator)

    def step(self, x_t: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, eps: float, alpha: float) -> torch.Tensor:
        return project_l2(x_t + alpha * normalize_l2(grad), x, eps)
