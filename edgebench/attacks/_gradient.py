"""Shared machinery of the gradient attacks: loss gradient w.r.t. the input, projections, random start."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.attacks.base import Passes
from edgebench.errors import AttackError


def loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                  passes: Passes, *, attack: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the attack objective w.r.t. ``x`` and the logits at ``x`` (one forward + one backward).

    Untargeted: ascend the cross-entropy of the true label. Targeted: descend the cross-entropy of the
    target (returned as the gradient of its negative, so callers always ascend).
    """
    x = x.detach().requires_grad_(True)
    logits = model(x)
    passes.forward += 1
    loss = F.cross_entropy(logits, y, reduction="sum") if target is None else \
        -F.cross_entropy(logits, target, reduction="sum")
    try:
        (grad,) = torch.autograd.grad(loss, x)
    except RuntimeError as exc:
        raise AttackError(f"attack {attack!r}: the model gives no gradient w.r.t. its input ({exc}); "
                          "white-box attacks need a differentiable torch model — use a transfer attack") from None
    passes.backward += 1
    return grad, logits.detach()


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the L∞ ball of radius ``eps`` around ``x`` and onto the input box [0, 1]."""
    return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)


def random_start_linf(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform sample in the L∞ ball of radius ``eps`` around ``x``, clipped to [0, 1]."""
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * (2 * eps) - eps
    return torch.clamp(x + noise, 0.0, 1.0)
