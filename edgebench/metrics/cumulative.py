"""Algorithm 1's success rate against the bound ε (Liu et al. 2018, seed ``000``, Sec. III-B2): per sample, ε is
raised along the grid until the attack succeeds or the bound is reached, so the success rate at bound ε is the
share of samples whose minimal ε (:func:`edgebench.metrics.robustness.minimal_eps`) is at most ε: a cumulative
distribution, never decreasing in ε, and at least the success of the attack run at exactly ε. Pure, torch-free."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from edgebench.metrics.robustness import wilson


def cumulative_success(values: Sequence[float | None], grid: Sequence[float]) -> list[dict[str, Any]]:
    """For each finite ``ε`` of ``grid`` (ascending): ``{"eps", "k", "n", "value", "lo", "hi"}``, the share of
    ``values`` (per-sample minimal ε; ``None`` or ``inf``: not reached within the grid) that are ``<= ε``, with its
    95 % Wilson interval. ``n`` counts every sample, reached or not."""
    reached = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(values)
    out = []
    for e in sorted(float(g) for g in grid if math.isfinite(float(g))):
        k = sum(1 for v in reached if v <= e * (1 + 1e-9))
        lo, hi = wilson(k, n)
        out.append({"eps": e, "k": k, "n": n, "value": k / n if n else math.nan, "lo": lo, "hi": hi})
    return out
