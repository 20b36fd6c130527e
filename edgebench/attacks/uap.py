"""UAP — Universal Adversarial Perturbation (Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, "Universal
adversarial perturbations", CVPR 2017). Norm: L∞ by default, L2 with ``norm_p="l2"``.

One perturbation δ for *all* the inputs of a call (``universal = True``: callers must not split a set into
batches). Batched variant of the paper's Algorithm 1: the paper pushes each not-yet-fooled ``x_i + δ`` across
the decision boundary with DeepFool and projects ``δ + Δv_i`` back onto the ε-ball, one sample at a time. Here
the inner minimal perturbation is approximated, per mini-batch of ``batch_size`` samples, by ``inner_steps``
gradient steps on the cross-entropy of the batch's *not-yet-fooled* samples (those already fooled drop out of
the loss at every step; the loop stops early when none is left): signed-gradient steps for L∞,
L2-normalised-gradient steps for L2, each of length α = ε / inner_steps; then δ is projected onto the
ε-ball::

    δ = 0
    repeat max_epochs times, while fooling_rate(x + δ) < target_fooling:
        for each mini-batch B of a seeded shuffle:
            Δv = 0
            repeat inner_steps times:
                A  = {i ∈ B : x_i + δ + Δv is still classified y_i}        (stop if A is empty)
                g  = Σ_{i∈A} ∇_x J(x_i + δ + Δv, y_i)
                Δv = Δv + α · sign(g)        (L2: α · g / ‖g‖₂)
            δ = Π_{B(0, ε)}(δ + Δv)
    x_adv = clip_[0,1](x + δ*),  δ* the δ of highest fooling rate among the checks and the final δ

Because a later update can undo an earlier one (the rate oscillates once it saturates), the δ returned is
the one with the highest fooling rate among those measured at the start of each epoch and the final one
(the checks are needed anyway, so this costs nothing); ties go to the latest.

"Fooled" means misclassified (prediction ≠ label), the same test as the result's ``success``: the paper
counts a change of the clean prediction instead, so here a sample misclassified without δ counts as fooled.
Defaults: ``max_epochs = 5``, ``target_fooling = 0.8``, ``inner_steps = 10``, ``batch_size = 128``,
``seed = 0`` (the shuffle). Untargeted only.

Cost per ε: per epoch, one forward on all inputs (the fooling rate) and per mini-batch at most
``inner_steps`` forward+backward passes (fewer when a batch is all fooled), plus one forward on the final
``x + δ`` unless the fooling target stopped the run (then the check's forward already gave it).

Example::

    result = UAP(max_epochs=5, target_fooling=0.8)(model, x, y, eps=[0.1, 0.2, 0.3])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.attacks import ATTACKS
from edgebench.attacks._gradient import normalize_l2, objective_gradient
from edgebench.attacks.base import Attack, Passes, predict
from edgebench.errors import ConfigError


def _unfooled_cross_entropy(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of the true label, zero for the samples already misclassified (they drop out)."""
    return F.cross_entropy(logits, y, reduction="none") * (logits.argmax(1) == y).to(logits.dtype)


def _project_delta(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project a perturbation (not a point of the input box) onto the ``norm`` ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    scale = min(1.0, eps / max(float(delta.norm()), 1e-12))
    return delta * scale


@ATTACKS.register("uap")
class UAP(Attack):
    """Universal Adversarial Perturbation: one δ for every input of the call, L∞ or L2, untargeted.

    Args:
        norm_p: the ball of δ, ``"linf"`` or ``"l2"`` (sets the instance's ``norm``).
        max_epochs: passes over the inputs at most.
        target_fooling: stop once this fraction of the inputs is fooled, in (0, 1].
        inner_steps: gradient steps of the inner (per mini-batch) perturbation.
        batch_size: mini-batch size of the inner loop.
        seed: seed of the shuffle.
    """

    name = "uap"
    norm = "linf"
    targeted_ok = False
    universal = True

    def __init__(
        self,
        *,
        norm_p: str = "linf",
        max_epochs: int = 5,
        target_fooling: float = 0.8,
        inner_steps: int = 10,
        batch_size: int = 128,
        seed: int = 0,
    ) -> None:
        if norm_p not in ("linf", "l2"):
            raise ConfigError(f"attack 'uap': norm_p must be 'linf' or 'l2', got {norm_p!r}")
        for key, value in (("max_epochs", max_epochs), ("inner_steps", inner_steps), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"attack 'uap': {key} must be >= 1, got {value!r}")
        if not (isinstance(target_fooling, (int, float)) and 0 < target_fooling <= 1):
            raise ConfigError(f"attack 'uap': target_fooling must be in (0, 1], got {target_fooling!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"attack 'uap': seed must be an integer, got {seed!r}")
        self.norm_p = norm_p
        self.norm = norm_p  # the instance's budget norm: read by the base (validation, result) instead of the class's
        self.max_epochs = max_epochs
        self.target_fooling = float(target_fooling)
        self.inner_steps = inner_steps
        self.batch_size = batch_size
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
        alpha = eps / self.inner_steps
        gen = torch.Generator().manual_seed(self.seed)
        delta = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
        best: tuple[float, torch.Tensor, torch.Tensor] = (-1.0, x, y)
        for _ in range(self.max_epochs):
            x_adv = torch.clamp(x + delta, 0.0, 1.0)
            pred = predict(model, x_adv, passes)
            rate = float((pred != y).float().mean())
            if rate >= self.target_fooling:
                return x_adv, pred
            if rate >= best[0]:
                best = (rate, x_adv, pred)
            perm = torch.randperm(len(x), generator=gen).to(x.device)
            for start in range(0, len(x), self.batch_size):
                idx = perm[start : start + self.batch_size]
                xb, yb = x[idx], y[idx]
                dv = torch.zeros_like(delta)
                for _ in range(self.inner_steps):
                    grad, logits, _ = objective_gradient(
                        model,
                        torch.clamp(xb + delta + dv, 0.0, 1.0),
                        yb,
                        None,
                        passes,
                        attack=self.name,
                        objective=_unfooled_cross_entropy,
                    )
                    if not bool((logits.argmax(1) == yb).any()):
                        break
                    g = grad.sum(0, keepdim=True)
                    dv = dv + alpha * (g.sign() if self.norm == "linf" else normalize_l2(g))
                delta = _project_delta(delta + dv, eps, self.norm)
        x_adv = torch.clamp(x + delta, 0.0, 1.0)
        pred = predict(model, x_adv, passes)
        if best[0] > float((pred != y).float().mean()):  # the updates can overshoot: keep the best δ seen
            return best[1], best[2]
        return x_adv, pred
