"""Uniform noise — a non-adversarial baseline: ``x + U(−ε, ε)`` per feature, clipped to [0, 1]. Norm: L∞ (the
noise fills the ε-ball uniformly). Used as the "Uniform" row of Song et al. 2020 (seed ``003``, Table 2) to
show how much of an attack's success random noise of the same budget already achieves.

Defaults: one draw per ε, seed 0. With ``repeats = R > 1`` a sample counts as fooled if any of its ``R``
draws fools the model (the first fooling draw is kept, otherwise the last)::

    x_r = clip_[0,1]( x + ε · u_r ),  u_r ~ U(−1, 1)^d,  r = 1..R

Untargeted only; no gradient. Cost per ε: ``repeats`` forwards. The loop is shared with
``gaussian-noise`` (see ``_noise.py``).

Example::

    result = UniformNoise(repeats=5, seed=0)(model, x, y, eps=[0.1, 0.2, 0.3])
"""

from __future__ import annotations

import torch

from edgebench.attacks import ATTACKS
from edgebench.attacks._noise import NoiseAttack


@ATTACKS.register("uniform-noise")
class UniformNoise(NoiseAttack):
    """Uniform noise in the L∞ ε-ball (baseline, untargeted, gradient-free).

    Args:
        seed: seed of the noise.
        repeats: draws per ε; a sample is fooled if any draw fools the model.
    """

    name = "uniform-noise"
    norm = "linf"

    def unit_noise(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(shape, generator=generator) * 2.0 - 1.0
