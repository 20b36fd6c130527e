"""The comparison behind every parity check: a deployed artifact's logits against its torch twin's.
Torch-free."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def compare_logits(ref: np.ndarray, got: np.ndarray, *, backend: str, atol: float, what: str = "",
                   **extra: Any) -> dict[str, Any]:
    """Compare ``got`` (the artifact's logits) with ``ref`` (the torch twin's) on the same samples.

    Returns ``backend``, the sample count ``n``, ``max_abs_diff`` of the logits, ``top1_agreement``
    (fraction of equal argmax), the tolerance ``atol``, the logits' ``scale`` (``max(1, max|ref|)``), ``ok``
    (``max_abs_diff <= atol * scale``) and any ``extra`` keys. The tolerance is absolute for logits of order 1
    and relative beyond: float32 rounding grows with the magnitude, and a defense such as gradient inhibition
    makes logits of several hundred. A failure is logged (naming ``what``, e.g. the artifact's path) and
    recorded, never hidden.
    """
    n = int(len(ref))
    diff = float(np.max(np.abs(ref - got))) if n else 0.0
    scale = max(1.0, float(np.max(np.abs(ref)))) if n else 1.0
    agree = float(np.mean(ref.argmax(1) == got.argmax(1))) if n else 1.0
    result = {"backend": backend, "n": n, "max_abs_diff": diff, "top1_agreement": agree, "atol": atol,
              "scale": scale, "ok": bool(diff <= atol * scale), **extra}
    if not result["ok"]:
        log.warning("parity: %s differs from its torch twin by %.3g (> %.3g = %.3g x logit scale %.3g)",
                    what or backend, diff, atol * scale, atol, scale)
    return result
