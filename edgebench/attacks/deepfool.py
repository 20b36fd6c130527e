"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool deep neural
networks", CVPR 2016, Algorithm 2 and Sec. 3.3). Norm: L2 (default) or L∞ (``norm_p``). A minimal-perturbation
attack: the result at a finite ε is the perturbation found, projected onto the ε-ball (see ``base``).
Untargeted only.

Defaults: the top ``candidates = 10`` classes of the clean logits (the true class ``y`` and the 9 others
ranked highest), overshoot 0.02, at most 50 iterations. Each iteration linearizes the model around ``x_i``
and steps to the nearest linearized class boundary (``f_k = z_k − z_y``, ``w_k = ∇f_k``, ``q`` the dual norm:
2 for L2, 1 for L∞)::

    l   = argmin_{k ≠ y}  |f_k(x_i)| / ||w_k(x_i)||_q
    r_i = (|f_l| / ||w_l||_q + 1e-4) · w_l / ||w_l||₂         (L2)
    r_i = (|f_l| / ||w_l||_1 + 1e-4) · sign(w_l)              (L∞)
    x_{i+1} = clip_[0,1](x + (1 + overshoot) · Σ_{j ≤ i} r_j)

Only the samples still classified as ``y`` keep iterating (the 1e-4 is the authors' code's, so that a step
never stops exactly on the boundary). Samples the model already gets wrong, and samples still correct after
``max_iter`` iterations, return the clean ``x``. Cost: per iteration one forward and ``candidates − 1``
backward passes (the gradients of ``z_k − z_y``) on the samples still correct, and one forward on the result.

Example::

    result = DeepFool(candidates=10, overshoot=0.02)(model, x, y, eps=[0.25, 0.5, float("inf")])
"""

from __future__ import annotations

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import no_gradient
from edgebench.attacks.base import Attack, Passes, predict
from edgebench.errors import AttackError, ConfigError


@ATTACKS.register("deepfool")
class DeepFool(Attack):
    """DeepFool, L2 or L∞, untargeted.

    Args:
        norm_p: ``"l2"`` or ``"linf"``: the norm of the linearized distance that is minimized.
        candidates: how many classes (the true one included, the others by decreasing clean logit) are
            considered; fewer is faster.
        overshoot: the factor ``1 + overshoot`` applied to the accumulated perturbation.
        max_iter: the maximum number of linearization steps.
    """

    name = "deepfool"
    norm = "l2"
    minimal = True
    targeted_ok = False

    def __init__(
        self, *, norm_p: str = "l2", candidates: int = 10, overshoot: float = 0.02, max_iter: int = 50
    ) -> None:
        where = "attack 'deepfool'"
        if norm_p not in ("l2", "linf"):
            raise ConfigError(f"{where}: norm_p must be 'l2' or 'linf', got {norm_p!r}")
        if candidates < 2:
            raise ConfigError(f"{where}: candidates must be >= 2, got {candidates}")
        if not overshoot >= 0:
            raise ConfigError(f"{where}: overshoot must be >= 0, got {overshoot}")
        if max_iter < 1:
            raise ConfigError(f"{where}: max_iter must be >= 1, got {max_iter}")
        self.norm_p = norm_p
        self.norm = norm_p  # the base reads the budget norm from the instance
        self.candidates = candidates
        self.overshoot = overshoot
        self.max_iter = max_iter

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
        if target is not None:  # the base rejects targets already (targeted_ok = False)
            raise AttackError("attack 'deepfool': this attack has no targeted mode; drop 'target'")
        x_adv = x.clone()
        r_tot = torch.zeros_like(x)
        active = torch.arange(len(x), device=x.device)
        others: torch.Tensor | None = None  # (N, candidates − 1) class indices, from the clean logits
        for it in range(self.max_iter + 1):
            xa = x_adv[active].detach().requires_grad_(it < self.max_iter)
            logits = model(xa)
            passes.forward += 1
            ya = y[active]
            if others is None:
                k = min(self.candidates, logits.shape[1])
                ranked = logits.detach().scatter(1, ya[:, None], float("-inf"))
                others = ranked.topk(k - 1, dim=1).indices
            still = logits.argmax(1) == ya
            if it == self.max_iter or not bool(still.any()):
                active = active[still]
                break
            r = self._step(logits, xa, ya, others[active], passes)
            active = active[still]
            r_tot[active] += r[still]
            x_adv[active] = torch.clamp(x[active] + (1 + self.overshoot) * r_tot[active], 0.0, 1.0)
        x_adv[active] = x[active]  # never successful
        return x_adv, predict(model, x_adv, passes)

    def _step(
        self, logits: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor, others: torch.Tensor, passes: Passes
    ) -> torch.Tensor:
        """The step ``r_i`` to the nearest linearized boundary among ``others`` (one backward per class)."""
        shape = (-1,) + (1,) * (xa.ndim - 1)
        z_y = logits.gather(1, ya[:, None]).squeeze(1)
        n, k = others.shape
        best_dist = torch.full((n,), float("inf"), device=xa.device)
        best_w = torch.zeros_like(xa)
        for j in range(k):
            f = logits.gather(1, others[:, j : j + 1]).squeeze(1) - z_y
            try:
                (w,) = torch.autograd.grad(f.sum(), xa, retain_graph=j < k - 1)
            except RuntimeError as exc:
                raise no_gradient(self.name, exc) from None
            passes.backward += 1
            dual = w.flatten(1).norm(dim=1) if self.norm == "l2" else w.flatten(1).abs().sum(1)
            dist = f.detach().abs() / dual.clamp_min(1e-12)
            closer = dist < best_dist
            best_dist = torch.where(closer, dist, best_dist)
            best_w = torch.where(closer.view(shape), w, best_w)
        if self.norm == "l2":
            unit = best_w / best_w.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
            return (best_dist + 1e-4).view(shape) * unit
        return (best_dist + 1e-4).view(shape) * best_w.sign()
