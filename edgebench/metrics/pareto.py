"""Pareto front of a two-objective trade-off (e.g. latency, energy or size against accuracy).

The report marks the variants that no other variant beats on both axes: lower cost (``x``: latency, energy per
inference, artifact size) *and* higher quality (``y``: clean or robust accuracy) — the compression trade-off
the pruning poster (seed 004) and Song et al. 2020 (seed 003) discuss variant by variant. Pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def finite(v: Any) -> float | None:
    """``float(v)`` when ``v`` is a finite real number, else ``None`` (``None``, NaN, ±inf, text, booleans)."""
    if v is None or isinstance(v, bool | str):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def pareto_front(x: Sequence[float | None], y: Sequence[float | None]) -> list[int]:
    """Indices of the points not dominated when **minimising** ``x`` and **maximising** ``y``.

    A point ``j`` dominates ``i`` when ``x[j] <= x[i]`` and ``y[j] >= y[i]`` with at least one strict. Ties:
    points equal in both coordinates do not dominate each other, but the front keeps such a point **once**, at
    its lowest index (the others are duplicates of it); of points with the same ``x``, only the highest ``y`` can
    be on the front, and of points with the same ``y`` only the lowest ``x``. Points whose ``x`` or ``y`` is
    ``None``, NaN or infinite are excluded (never on the front, never dominating). The result is sorted by ``x``
    (ascending), so along it ``y`` strictly increases: it can be drawn directly as a step line.

    >>> pareto_front([1, 2, 3, 2], [0.5, 0.7, 0.6, 0.7])
    [0, 1]

    Raises ``ValueError`` when ``x`` and ``y`` differ in length.
    """
    if len(x) != len(y):
        raise ValueError(f"pareto_front: x has {len(x)} points, y has {len(y)}")
    pts = []
    for i, (xi, yi) in enumerate(zip(x, y)):
        fx, fy = finite(xi), finite(yi)
        if fx is not None and fy is not None:
            pts.append((fx, -fy, i))
    pts.sort()  # x ascending, then y descending, then index ascending (the kept duplicate is the first)
    front: list[int] = []
    best = -math.inf
    for _x, neg_fy, i in pts:
        if -neg_fy > best:
            front.append(i)
            best = -neg_fy
    return front
