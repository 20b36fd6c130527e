"""Minimal-ε search: Algorithm 1 of Liu et al. 2018 (seed ``000``, "Adversarial Attack Methodology").

Per sample, raise ε along a grid (for JSMA: the share of perturbed features) until the attack succeeds or
the upper bound — the grid's largest value — is reached. Unlike crafting every ε for every sample, a
budgeted attack here only re-attacks the samples that are still unbroken, so the search costs about
``sum_k (unbroken at step k)`` samples' worth of passes instead of ``K × N``. Sequence attacks (JSMA) and
minimal-perturbation attacks (CW, DeepFool) produce every ε in one call anyway and are read off it.

The pipeline computes the same quantity from the adversarial sets it crafts for every ε (and on the
device's predictions); this function is the host-side API::

    found = minimal_eps_search(FGSM(), model, x, y, eps=[0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    found.eps_min      # (N,) per-sample minimal ε, inf where the bound was not enough
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from edgebench.attacks.base import Attack, Passes
from edgebench.errors import AttackError
from edgebench.metrics.robustness import minimal_eps


@dataclass
class MinEpsResult:
    """``eps_min[n]``: the smallest ε of the grid that fooled the model on sample ``n`` (``inf``: none did);
    ``x_adv[n]``: the adversarial input found at that ε (the clean input where none was); ``passes`` (batch
    passes); ``attacked``: samples × ε attacked in all (``N × K`` without the early stop)."""

    eps_min: np.ndarray
    x_adv: np.ndarray
    grid: tuple[float, ...]
    passes: Passes = field(default_factory=Passes)
    attacked: int = 0


def minimal_eps_search(attack: Attack, model: nn.Module, x: np.ndarray, y: np.ndarray, *,
                       eps: Sequence[float], target: np.ndarray | None = None) -> MinEpsResult:
    """Algorithm 1 of Liu et al. 2018 on the grid ``eps`` (sorted ascending here; its maximum is the upper
    bound). Success is the attack's own: misclassification, or the target when ``target`` is given."""
    grid = tuple(sorted(float(e) for e in eps))
    if not grid or grid[0] <= 0:
        raise AttackError(f"attack {attack.name!r}: the minimal-ε grid must hold values > 0, got {list(eps)}")
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    passes = Passes()
    out = np.full(len(x), np.inf)
    x_adv = x.copy()
    if attack.minimal or type(attack).run_all is not Attack.run_all:  # one call yields every ε
        res = attack(model, x, y, eps=list(grid), target=target)
        passes = res.passes
        out = minimal_eps(np.array(grid), res.success)
        for k, e in enumerate(grid):
            take = out == e
            x_adv[take] = res.x_adv[k][take]
        return MinEpsResult(out, x_adv, grid, passes, attacked=len(x) * len(grid))
    attacked = 0
    todo = np.arange(len(x))
    for e in grid:
        if not len(todo):
            break
        attacked += len(todo)
        res = attack(model, x[todo], y[todo], eps=e, target=None if target is None else target[todo])
        passes.forward += res.passes.forward
        passes.backward += res.passes.backward
        hit = res.success[0]
        out[todo[hit]] = e
        x_adv[todo[hit]] = res.x_adv[0][hit]
        todo = todo[~hit]
    return MinEpsResult(out, x_adv, grid, passes, attacked=attacked)
