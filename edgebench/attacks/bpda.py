"""BPDA: Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner, "Obfuscated Gradients Give a
False Sense of Security", ICML 2018, Sec. 4.1). Where a network's forward pass holds a step ``f`` that is not
differentiable, or whose gradient is zero almost everywhere (rounding, quantization, sign, clipping), the attack
computes the forward pass with ``f`` as it is and the backward pass as if ``f`` were a differentiable ``g`` with
``g(x) ≈ f(x)``; for quantizers and projections ``g`` is the identity (their Sec. 4.1.1, "the special case"),
so each such step becomes, in the backward pass only::

    y = x + (f(x) − x).detach()          # forward: f(x) (computed exactly here); ∂y/∂x = I

:func:`bpda` wraps a torch twin so that every step of :data:`STEPS` its forward applies to a tensor that depends
on the input (one requiring a gradient: the weights do not, under :func:`~edgebench.attacks.base.frozen`) is
replaced that way, through a :class:`torch.overrides.TorchFunctionMode` active during the twin's forward. It
covers the functional and method forms of ``round``, ``floor``, ``ceil``, ``trunc``, ``sign``, ``clamp``/``clip``,
torch's fake quantizers, and NNCF's fake quantizers (``symmetric_quantize``/``asymmetric_quantize``, which the
int8 twins apply to activations: NNCF's own backward is straight-through inside the quantizer's range and zero
outside it; BPDA makes it the identity everywhere). A ``clamp`` in the forward pass goes straight through too
(a quantizer's clipping to its range, but also a ReLU6 written as ``clamp``; ``F.relu6`` and ``F.hardtanh`` are
left alone). In-place forms (``round_``) are left as they are. The forward pass, so every prediction, is
unchanged.

A plan asks for it with ``bpda = true`` on a ``[[compress]]`` or ``[[defend]]`` entry (or a ``[[models]]`` entry):
every gradient attack crafted on that twin, and its gradient check, then go through :func:`bpda`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from edgebench.models.placement import to_model

#: the names of the steps whose backward pass becomes the identity (torch functions and tensor methods, NNCF's
#: fake quantizers)
STEPS = frozenset({"round", "floor", "ceil", "trunc", "fix", "sign", "clamp", "clip", "fake_quantize_per_tensor_affine",
                   "fake_quantize_per_channel_affine", "symmetric_quantize", "asymmetric_quantize"})


class _Straight(torch.autograd.Function):
    """``f(x)`` forward (bit for bit), the identity backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        return fx.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _IdentityBackward(TorchFunctionMode):
    """Replaces each step of :data:`STEPS` applied to an input-dependent tensor by ``f(x)`` with the identity as its
    backward (``x + (f(x) − x).detach()``, exact to the bit in the forward pass), counting them by name in
    ``counts``."""

    def __init__(self, counts: Counter[str]) -> None:
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        x = args[0] if args else None
        if (name in STEPS and isinstance(x, torch.Tensor) and x.requires_grad and isinstance(out, torch.Tensor)
                and out.shape == x.shape and x.is_floating_point()):
            self.counts[name] += 1
            return _Straight.apply(x, out.detach())
        return out


class BPDA(nn.Module):
    """``model`` with the identity as the backward pass of its non-differentiable steps; ``counts``: the steps
    replaced so far, by name (one per call of a step in a forward pass)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.counts: Counter[str] = Counter()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with _IdentityBackward(self.counts):
            return self.model(*args, **kwargs)


def bpda(model: nn.Module) -> BPDA:
    """``model`` wrapped for BPDA (a wrapped model is returned as it is)."""
    return model if isinstance(model, BPDA) else BPDA(model)


def steps_in(model: nn.Module, x: np.ndarray) -> dict[str, int]:
    """The steps BPDA replaces in one forward pass of ``model`` on ``x`` (a few samples), by name."""
    wrapped = BPDA(model)
    was_training = model.training
    model.eval()
    try:
        wrapped(to_model(model, x).requires_grad_(True))
    finally:
        model.train(was_training)
    return dict(sorted(wrapped.counts.items()))


def describe(steps: dict[str, int]) -> str:
    """One line for the report: which steps went straight through, or that there were none."""
    if not steps:
        return ("no non-differentiable step depends on the input in this twin's forward pass: BPDA changes "
                "nothing here")
    return ("backward pass of " + ", ".join(f"{n} × {k}" for n, k in steps.items())
            + " per forward pass replaced by the identity")
