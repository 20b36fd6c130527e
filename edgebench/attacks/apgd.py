"""APGD — Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, Algorithm 1). Norm: L∞ (default) or L2 (``norm_p``).

Defaults: 100 steps, 1 restart, momentum α = 0.75, ρ = 0.75, initial step size η = 2ε, random start.
``loss="ce"`` is APGD-CE; ``loss="dlr"`` is APGD-DLR, and with a target the targeted DLR of APGD-T.
With ``s(g) = sign(g)`` (L∞) or ``g / ||g||₂`` (L2) and ``P`` the projection onto the ε-ball ∩ [0,1]::

    x_1     = P(x_0 + η s(∇f(x_0)))
    z_{k+1} = P(x_k + η s(∇f(x_k)))
    x_{k+1} = P(x_k + α (z_{k+1} − x_k) + (1 − α)(x_k − x_{k−1}))

Checkpoints ``w_j = ⌈p_j N⌉`` with ``p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``.
At each checkpoint, per sample, η is halved and the iterate restarts from the best point ``x_max`` (with the
gradient stored there) when (1) ``f`` rose in fewer than ``ρ (w_j − w_{j−1})`` of the steps since the last
checkpoint, or (2) η was not halved at the last checkpoint and ``f_max`` has not improved since. (The
reference code tests (1) with ``≤``; this follows the paper's ``<``.)

Per sample, the first successful iterate is returned; otherwise the point of highest objective ``x_max``.
Each restart draws a new random start and attacks only the samples not yet successful; across restarts
the highest objective is kept. Cost per ε and restart: ``steps`` forward+backward passes (at
``x_0 … x_{N−1}``) and one forward (at ``x_N``) — the cost of ``PGD(steps=N)``.

On a model family (threat ``family``, :mod:`edgebench.attacks._family`) ``f`` is the family objective, the mean
of the members' objectives, and ``∇f`` its gradient: the step-size halving, the checkpoints' conditions and
``x_max`` all follow that mean (the function being ascended), while "successful" means every member is fooled.

Example::

    result = APGD(loss="dlr", steps=100, seed=0)(model, x, y, eps=[8 / 255, 16 / 255])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import (
    OBJECTIVES,
    Objective,
    first_success,
    normalize_l2,
    objective_gradient,
    objective_value,
    random_start_l2,
    random_start_linf,
)
from edgebench.attacks.base import Attack, Passes, project_l2, project_linf
from edgebench.errors import AttackError, ConfigError


def checkpoints(steps: int) -> list[int]:
    """The iterations ``w_j = ⌈p_j · steps⌉`` (``0 < w_j < steps``) at which the step size may be halved."""
    p_prev, p = 0.0, 0.22
    out: list[int] = []
    while p <= 1.0:
        w = math.ceil(round(p * steps, 9))
        if 0 < w < steps and (not out or w > out[-1]):
            out.append(w)
        p_prev, p = p, round(p + max(p - p_prev - 0.03, 0.06), 9)
    return out


def _objective(loss: str) -> Objective:
    """The objective ``loss``; DLR raises a clear error when the model has too few classes for it."""
    base = OBJECTIVES[loss]
    if loss != "dlr":
        return base

    def dlr_checked(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        need = 3 if target is None else 4
        if logits.shape[1] < need:
            kind = "untargeted" if target is None else "targeted"
            raise AttackError(
                f"attack 'apgd': loss 'dlr' ({kind}) needs at least {need} classes, the model has "
                f"{logits.shape[1]}; use loss='ce'"
            )
        return base(logits, y, target)

    return dlr_checked


@ATTACKS.register("apgd")
class APGD(Attack):
    """Auto-PGD, L∞ or L2, untargeted or targeted.

    Args:
        norm_p: the budget norm, ``"linf"`` or ``"l2"``.
        loss: the objective ascended, ``"ce"`` (cross-entropy) or ``"dlr"`` (difference of logits ratio; needs
            at least 3 classes, 4 when targeted).
        steps: gradient steps ``N`` per restart.
        n_restarts: runs from new random starts, each on the samples not yet successful.
        rho: the fraction of increasing steps below which condition 1 halves the step size.
        alpha: the momentum weight of the new step (1 = no momentum).
        random_start: start from a uniform point of the ε-ball (else from ``x``).
        seed: seed of the random starts.
    """

    name = "apgd"
    norm = "linf"
    family_ok = True

    def __init__(
        self,
        *,
        norm_p: str = "linf",
        loss: str = "ce",
        steps: int = 100,
        n_restarts: int = 1,
        rho: float = 0.75,
        alpha: float = 0.75,
        random_start: bool = True,
        seed: int = 0,
    ) -> None:
        where = "attack 'apgd'"
        if norm_p not in ("linf", "l2"):
            raise ConfigError(f"{where}: norm_p must be 'linf' or 'l2', got {norm_p!r}")
        if loss not in ("ce", "dlr"):
            raise ConfigError(f"{where}: loss must be 'ce' or 'dlr', got {loss!r}")
        if steps < 1:
            raise ConfigError(f"{where}: steps must be >= 1, got {steps}")
        if n_restarts < 1:
            raise ConfigError(f"{where}: n_restarts must be >= 1, got {n_restarts}")
        if not 0.0 < rho <= 1.0:
            raise ConfigError(f"{where}: rho must be in (0, 1], got {rho}")
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"{where}: alpha must be in (0, 1], got {alpha}")
        self.norm_p = norm_p
        self.norm = norm_p  # the base reads the budget norm from the instance
        self.loss = loss
        self.steps = steps
        self.n_restarts = n_restarts
        self.rho = rho
        self.alpha = alpha
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
        gen = torch.Generator().manual_seed(self.seed)
        best = x.clone()
        best_pred = torch.full_like(y, -1)
        best_f = torch.full((len(x),), float("-inf"), device=x.device)
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.n_restarts):
            idx = (~done).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            tgt = None if target is None else target[idx]
            x_r, pred_r, f_r, hit_r = self._restart(model, x[idx], y[idx], tgt, eps, gen, passes)
            take = hit_r | (f_r > best_f[idx])
            best[idx[take]], best_pred[idx[take]] = x_r[take], pred_r[take]
            best_f[idx[take]] = f_r[take]
            done[idx[hit_r]] = True
        return best, best_pred

    def _restart(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        eps: float,
        gen: torch.Generator,
        passes: Passes,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One run of Algorithm 1: ``(x_out, pred_out, f_max, hit)`` per sample."""
        linf = self.norm == "linf"
        objective = _objective(self.loss)
        shape = (-1,) + (1,) * (x.ndim - 1)

        def proj(z: torch.Tensor) -> torch.Tensor:
            return project_linf(z, x, eps) if linf else project_l2(z, x, eps)

        def direction(g: torch.Tensor) -> torch.Tensor:
            return g.sign() if linf else normalize_l2(g)

        if self.random_start:
            x_cur = random_start_linf(x, eps, gen) if linf else random_start_l2(x, eps, gen)
        else:
            x_cur = x.clone()
        grad, logits, f_cur = objective_gradient(model, x_cur, y, target, passes, attack=self.name, objective=objective)
        pred = logits.argmax(1)
        first, first_pred = x.clone(), torch.full_like(y, -1)
        hit = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        first_success(first, first_pred, hit, x_cur, pred, y, target)
        x_max, g_max, f_max, pred_max = x_cur.clone(), grad.clone(), f_cur.clone(), pred.clone()

        eta = torch.full((len(x),), 2.0 * eps, dtype=x.dtype, device=x.device)
        marks = set(checkpoints(self.steps))
        last_mark, n_up = 0, torch.zeros(len(x), device=x.device)
        f_max_at_mark, halved_at_mark = f_max.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
        x_prev = x_cur
        for k in range(self.steps):  # makes x_{k+1}
            z = proj(x_cur + eta.view(shape) * direction(grad))
            x_new = z if k == 0 else proj(x_cur + self.alpha * (z - x_cur) + (1 - self.alpha) * (x_cur - x_prev))
            if k + 1 < self.steps:
                grad_new, logits, f_new = objective_gradient(
                    model, x_new, y, target, passes, attack=self.name, objective=objective
                )
            else:  # the last iterate needs no gradient
                logits, f_new = objective_value(model, x_new, y, target, passes, objective=objective)
                grad_new = grad
            pred = logits.argmax(1)
            first_success(first, first_pred, hit, x_new, pred, y, target)
            n_up += (f_new > f_cur).to(n_up.dtype)
            up = f_new > f_max
            x_max[up], g_max[up], f_max[up], pred_max[up] = x_new[up], grad_new[up], f_new[up], pred[up]
            x_prev, x_cur, grad, f_cur = x_cur, x_new, grad_new, f_new
            if k + 1 in marks:
                cond1 = n_up < self.rho * (k + 1 - last_mark)
                cond2 = ~halved_at_mark & (f_max <= f_max_at_mark)
                cut = cond1 | cond2
                eta = torch.where(cut, eta / 2, eta)
                x_cur = torch.where(cut.view(shape), x_max, x_cur)
                grad = torch.where(cut.view(shape), g_max, grad)
                f_cur = torch.where(cut, f_max, f_cur)
                last_mark, n_up = k + 1, torch.zeros_like(n_up)
                f_max_at_mark, halved_at_mark = f_max.clone(), cut
        x_out = torch.where(hit.view(shape), first, x_max)
        pred_out = torch.where(hit, first_pred, pred_max)
        return x_out, pred_out, f_max, hit
