"""Checks that a white-box evaluation can be trusted, in the spirit of AutoAttack's flags (Croce & Hein,
ICML 2020, and their ``flags_doc``): gradient attacks are only as strong as the gradients they get.

``gradient_health`` measures, on clean inputs, the share of samples whose input gradient of the
cross-entropy is exactly zero (saturated softmax, non-differentiable quantizers without a straight-through
estimator, ``argmax``/rounding inside the graph) or non-finite. A large share means the white-box numbers
are an upper bound on robustness, not a measurement of it: try a transfer or a margin-loss attack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from edgebench.attacks._gradient import cross_entropy, objective_gradient
from edgebench.attacks.base import Passes, frozen
from edgebench.metrics.gradients import MASKING_SHARE, masked
from edgebench.models.placement import numpy_of, to_model

__all__ = ["MASKING_SHARE", "gradient_health", "masked"]


def gradient_health(model: nn.Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256) -> dict[str, Any]:
    """``n``, ``zero_share``, ``nonfinite_share``, ``median_grad_l1`` (per-sample L1 norm of the input
    gradient of the cross-entropy) and ``abs_grad_hist`` (the distribution of the per-sample mean |∂J/∂x| on
    log-spaced bins: the "absolute gradient amplitude" of Liu et al. 2018, Fig. 7 and 9) on ``x``; one forward
    + backward per batch."""
    zero = nonfinite = 0
    norms: list[np.ndarray] = []
    passes = Passes()
    with frozen(model):
        for i in range(0, len(x), batch_size):
            xb, yb = to_model(model, x[i:i + batch_size], y[i:i + batch_size])
            grad, _, _ = objective_gradient(model, xb, yb, None, passes, attack="gradient check",
                                            objective=cross_entropy)
            flat = grad.flatten(1)
            finite = torch.isfinite(flat).all(1)
            nonfinite += int((~finite).sum())
            zero += int((finite & (flat.abs().amax(1) == 0)).sum())
            norms.append(numpy_of(flat.abs().sum(1)))
    n = len(x)
    l1 = np.concatenate(norms) if norms else np.zeros(0)
    return {"n": n, "zero_share": zero / n if n else 0.0, "nonfinite_share": nonfinite / n if n else 0.0,
            "median_grad_l1": float(np.median(l1[np.isfinite(l1)])) if np.isfinite(l1).any() else float("nan"),
            "abs_grad_hist": _log_histogram(l1 / max(1, int(np.prod(x.shape[1:]))))}


def _log_histogram(values: np.ndarray, bins: int = 40) -> dict[str, Any]:
    """Counts on log-spaced bins over the positive finite values; exact zeros counted apart (``zeros``)."""
    v = values[np.isfinite(values)]
    pos = v[v > 0]
    if pos.size == 0:
        return {"edges": [], "counts": [], "zeros": int(v.size)}
    lo, hi = float(pos.min()), float(pos.max())
    edges = np.geomspace(lo, hi * 1.000001 if hi > lo else lo * 10, bins + 1)
    counts, _ = np.histogram(pos, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "zeros": int(v.size - pos.size)}
