"""Shared machinery of the gradient attacks: objectives, their gradient w.r.t. the input, random starts and
the iteration loop (projections onto the ε-balls live in :mod:`edgebench.attacks.base`). Each attack file keeps
only its own update rule. The gradient of a :class:`~edgebench.attacks._family.ModelFamily` is the mean of its
members' gradients, evaluated one member at a time (EOT, Athalye et al. 2018), so every attack built on these
helpers (FGSM, PGD, MIM, APGD) attacks a family with no change to its loop."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.attacks._family import ModelFamily
from edgebench.attacks.base import Passes, predict
from edgebench.errors import AttackError, ConfigError

# an objective to *ascend*: (logits, labels, target or None) -> per-sample loss, shape (N,)
Objective = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Untargeted: the cross-entropy of the true label. Targeted: minus that of the target."""
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Difference of Logits Ratio (Croce & Hein, ICML 2020, eqs. 5 and 6), shift- and scale-invariant.

    Untargeted: ``-(z_y - max_{i≠y} z_i) / (z_π1 - z_π3)``; targeted: ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4)/2)``,
    with ``π`` the logits sorted in decreasing order. Needs at least 3 (untargeted) or 4 (targeted) classes.
    """
    srt = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if target is None:
        other = logits.clone()
        other.scatter_(1, y[:, None], float("-inf"))
        return -(z_y - other.amax(1)) / (srt[:, 0] - srt[:, 2] + 1e-12)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (srt[:, 0] - 0.5 * (srt[:, 2] + srt[:, 3]) + 1e-12)


def margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Carlini–Wagner's margin on logits, to ascend: untargeted ``max_{i≠y} z_i − z_y``; targeted
    ``z_t − max_{i≠t} z_i``. Positive exactly when the attack succeeds."""
    goal = y if target is None else target
    z_goal = logits.gather(1, goal[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, goal[:, None], float("-inf"))
    best_other = other.amax(1)
    return best_other - z_goal if target is None else z_goal - best_other


OBJECTIVES: dict[str, Objective] = {"ce": cross_entropy, "dlr": dlr, "margin": margin}


def no_gradient(attack: str, exc: BaseException) -> AttackError:
    return AttackError(f"attack {attack!r}: the model gives no gradient w.r.t. its input ({exc}); "
                       "white-box attacks need a differentiable torch model — use a transfer attack")


def objective_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                       passes: Passes, *, attack: str, objective: Objective = cross_entropy,
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradient of the summed ``objective`` w.r.t. ``x``, the logits and the per-sample objective at ``x``
    (one forward + one backward). Callers always ascend. For a :class:`ModelFamily`: :func:`family_gradient`."""
    if isinstance(model, ModelFamily):
        return family_gradient(model, x, y, target, passes, attack=attack, objective=objective)
    return _gradient(model, x, y, target, passes, attack=attack, objective=objective)


def family_gradient(family: ModelFamily, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                    passes: Passes, *, attack: str, objective: Objective = cross_entropy,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The family objective's gradient ``(1/K) Σ_k ∇_x J(f_k(x))`` (EOT over the members, Athalye et al. 2018,
    eq. 1), the family's decision logits (:meth:`ModelFamily.decision`) and the per-sample mean objective.

    Members are evaluated one at a time: one forward + one backward each, the gradient added to a running sum
    and the member's graph freed before the next (``torch.autograd.grad`` releases it), so a step holds one
    graph whatever K. Costs K forward + K backward passes, counted per member and in ``passes``."""
    grad_sum = torch.zeros_like(x)
    loss_sum = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    logits = []
    for i, member in enumerate(family.members):
        grad, z, loss = _gradient(member, x, y, target, Passes(), attack=attack, objective=objective)
        family.count(i, backward=True, passes=passes)
        grad_sum += grad
        loss_sum += loss
        logits.append(z)
    k = len(family.members)
    return grad_sum / k, family.decision(logits, y, target), loss_sum / k


def objective_value(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                    passes: Passes, *, objective: Objective = cross_entropy) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits (a family's decision logits) and the per-sample objective (a family's mean) at ``x``, without
    gradients: one forward (per member)."""
    with torch.no_grad():
        if not isinstance(model, ModelFamily):
            logits = model(x)
            passes.forward += 1
            return logits, objective(logits, y, target)
        outs, loss_sum = [], torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for i, member in enumerate(model.members):
            outs.append(member(x))
            model.count(i, backward=False, passes=passes)
            loss_sum += objective(outs[-1], y, target)
        return model.decision(outs, y, target), loss_sum / len(outs)


def _gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
              passes: Passes, *, attack: str, objective: Objective) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`objective_gradient` of one model."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    passes.forward += 1
    loss = objective(logits, y, target)
    try:
        (grad,) = torch.autograd.grad(loss.sum(), x)
    except RuntimeError as exc:
        raise no_gradient(attack, exc) from None
    passes.backward += 1
    return grad, logits.detach(), loss.detach()


def loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                  passes: Passes, *, attack: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the cross-entropy objective w.r.t. ``x`` and the logits at ``x`` (one forward + one
    backward). Untargeted: ascend the cross-entropy of the true label. Targeted: descend that of the target
    (returned as the gradient of its negative, so callers always ascend)."""
    grad, logits, _ = objective_gradient(model, x, y, target, passes, attack=attack)
    return grad, logits


def normalize_l2(g: torch.Tensor) -> torch.Tensor:
    """``g / ||g||_2`` per sample (zero where ``g`` is zero)."""
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.ndim - 1)))


def random_start_linf(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform sample in the L∞ ball of radius ``eps`` around ``x``, clipped to [0, 1]."""
    # drawn in float32 on the CPU generator, then moved: the same start on any device and in any dtype
    noise = (torch.rand(x.shape, generator=generator) * (2 * eps) - eps).to(x.device, x.dtype)
    return torch.clamp(x + noise, 0.0, 1.0)


def random_start_l2(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform sample in the L2 ball of radius ``eps`` around ``x`` (direction uniform on the sphere, radius
    ``eps · u^(1/d)``), clipped to [0, 1]."""
    d = x[0].numel()
    direction = normalize_l2(torch.randn(x.shape, generator=generator)).to(x.device, x.dtype)
    radius = eps * torch.rand(len(x), generator=generator).pow(1.0 / d).to(x.device, x.dtype)
    return torch.clamp(x + direction * radius.view(-1, *([1] * (x.ndim - 1))), 0.0, 1.0)


def first_success(best: torch.Tensor, best_pred: torch.Tensor, done: torch.Tensor, x_now: torch.Tensor,
                  pred: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> None:
    """Keep, per sample, the first iterate that succeeds (in place on ``best``, ``best_pred``, ``done``)."""
    hit = ~done & ((pred != y) if target is None else (pred == target))
    if hit.any():
        best[hit], best_pred[hit] = x_now[hit], pred[hit]
        done |= hit


def check_iterative(attack: str, steps: Any, rel_stepsize: Any, abs_stepsize: Any) -> None:
    """Validate the hyper-parameters every iterative attack shares (ConfigError naming the attack)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"attack {attack!r}: steps must be >= 1, got {steps!r} (an integer)")
    for key, value in (("rel_stepsize", rel_stepsize), ("abs_stepsize", abs_stepsize)):
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and 0 < value < math.inf):
            raise ConfigError(f"attack {attack!r}: {key} must be a finite number > 0, got {value!r}")


def step_size(eps: float, steps: int, rel_stepsize: float | None, abs_stepsize: float | None,
              default_rel: float) -> float:
    """α: ``abs_stepsize`` if given, else ``rel_stepsize · ε``, else ``default_rel / steps · ε``."""
    if abs_stepsize is not None:
        return abs_stepsize
    return (rel_stepsize if rel_stepsize is not None else default_rel / steps) * eps


def iterate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, passes: Passes, *,
            attack: str, start: torch.Tensor, steps: int,
            update: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
            objective: Objective = cross_entropy) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop of the iterative attacks: ``x_{t+1} = update(x_t, ∇_x objective(x_t))`` from ``start``.

    Per sample, the first iterate that succeeds is kept (the forward pass of each step already shows it, so
    this costs nothing), otherwise the last one. Cost: ``steps`` forward+backward passes and one forward on
    the last iterate. Returns ``(x_adv, pred)``."""
    x_adv = start
    best, best_pred = x.clone(), torch.full_like(y, -1)
    done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(steps):
        grad, logits, _ = objective_gradient(model, x_adv, y, target, passes, attack=attack, objective=objective)
        first_success(best, best_pred, done, x_adv, logits.argmax(1), y, target)
        x_adv = update(x_adv, grad)
    last_pred = predict(model, x_adv, passes, y, target)
    keep = ~done
    best[keep], best_pred[keep] = x_adv[keep], last_pred[keep]
    return best, best_pred
