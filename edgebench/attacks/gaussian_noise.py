"""Gaussian noise — a non-adversarial baseline: ``x + N(0, σ²)`` per feature with σ = ε, clipped to [0, 1].
Norm: ``none`` — ε is the noise's standard deviation in input units, a noise scale rather than the radius of
a ball (a draw's L∞ norm is unbounded and its L2 norm is about ``ε · √d``; the result's ``linf``/``l2``
arrays record the actual norms).

Defaults: one draw per ε, seed 0. With ``repeats = R > 1`` a sample counts as fooled if any of its ``R``
draws fools the model (the first fooling draw is kept, otherwise the last)::

    x_r = clip_[0,1]( x + ε · z_r ),  z_r ~ N(0, I_d),  r = 1..R

Untargeted only; no gradient. Cost per ε: ``repeats`` forwards. The loop is shared with ``uniform-noise``
(see ``_noise.py``).

Example::

    result = GaussianNoise(repeats=5, seed=0)(model, x, y, eps=[0.05, 0.1, 0.2])
"""

from __future__ import annotations

import torch

from edgebench.attacks import ATTACKS
from edgebench.attacks._noise import NoiseAttack


@ATTACKS.register("gaussian-noise")
class GaussianNoise(NoiseAttack):
    """Gaussian noise with standard deviation ε (baseline, untargeted, gradient-free).

    Args:
        seed: seed of the noise.
        repeats: draws per ε; a sample is fooled if any draw fools the model.
    """

    name = "gaussian-noise"
    norm = "none"

    def unit_noise(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(shape, generator=generator)  # on the CPU generator; the caller moves it
