"""The shared loop of the random-noise baselines (``uniform-noise``, ``gaussian-noise``): not attacks but the
floor an attack must clear — a model that random noise of the same scale already fools is not broken by the
attack, it is merely noise-sensitive.

Per ε: ``repeats`` independent draws ``x + ε · z_r`` (``z_r`` unit-scale noise of the subclass), clipped to
[0, 1]. A sample counts as fooled if *any* draw fools the model; the first fooling draw is kept, otherwise the
last draw. ``repeats = 1`` is the plain baseline; ``repeats > 1`` gives the noise a fairer chance (at the
cost of ``repeats`` forwards). The draws come from a generator seeded with ``seed`` at every ε, so draw ``r``
has the same direction at every ε (only its scale changes) and a run is reproducible.

Cost per ε: ``repeats`` forwards, no backward.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from edgebench.attacks._gradient import first_success
from edgebench.attacks.base import Attack, Passes, predict
from edgebench.errors import ConfigError


class NoiseAttack(Attack):
    """Base of the noise baselines: untargeted, gradient-free. Subclasses set ``name``, ``norm`` and
    :meth:`unit_noise`.

    Args:
        seed: seed of the noise.
        repeats: draws per ε; a sample is fooled if any draw fools the model (the first such draw is kept).
    """

    targeted_ok = False
    needs_gradient = False

    def __init__(self, *, seed: int = 0, repeats: int = 1) -> None:
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ConfigError(f"attack {self.name!r}: repeats must be >= 1, got {repeats!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"attack {self.name!r}: seed must be an integer, got {seed!r}")
        self.seed = seed
        self.repeats = repeats

    @abc.abstractmethod
    def unit_noise(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        """Noise of scale 1 (the run multiplies it by ε)."""

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
        gen = torch.Generator().manual_seed(self.seed)
        best = x.clone()
        best_pred = torch.full_like(y, -1)
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        x_noisy, pred = x, best_pred
        for _ in range(self.repeats):
            x_noisy = torch.clamp(x + eps * self.unit_noise(x.shape, gen).to(x.device, x.dtype), 0.0, 1.0)
            pred = predict(model, x_noisy, passes)
            first_success(best, best_pred, done, x_noisy, pred, y, None)
        keep = ~done
        best[keep], best_pred[keep] = x_noisy[keep], pred[keep]
        return best, best_pred
