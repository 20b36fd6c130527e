"""Every parity check: a deployed artifact's logits, computed by its device-side runtime backend, against its
torch twin's. :func:`compare_logits` is torch-free; :func:`runtime_parity` imports torch when called."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

#: inputs per ``predict`` call of a parity check
PARITY_BATCH = 256


def runtime_parity(model: nn.Module, path: Path, x: np.ndarray, *, backend: str, atol: float,
                   record: Sequence[str] = (), **options: Any) -> dict[str, Any]:
    """Run the artifact at ``path`` on the runtime ``backend`` (created with ``options``) over the real inputs
    ``x``, in batches of :data:`PARITY_BATCH`, and compare its logits with the torch twin ``model``'s
    (:func:`compare_logits`), computed on the twin's own device (a GPU twin is compared as it is). The keys of
    the backend's ``info()`` named in ``record`` join the result (OpenVINO: the ``precision`` the plugin computes
    in). No inputs compare nothing: ``n`` 0, ``ok``."""
    from edgebench.models.train import predict_logits
    from edgebench.runtime import create_backend

    runtime = create_backend(backend, **options)
    runtime.load(path)
    ref = predict_logits(model, x)
    got = np.concatenate([runtime.predict(np.ascontiguousarray(x[i:i + PARITY_BATCH], dtype=np.float32))
                          for i in range(0, len(x), PARITY_BATCH)]) if len(x) else np.zeros_like(ref)
    info = runtime.info() if record else {}
    return compare_logits(ref, got, backend=backend, atol=atol, what=str(path), **{k: info[k] for k in record})


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
