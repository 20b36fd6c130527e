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


def nondominated(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the points no other point dominates in every objective (``maximize[k]``: objective ``k`` is
    maximized, else minimized): ``j`` dominates ``i`` when it is at least as good in every objective and better in
    one. Points equal in every objective are kept once, at the lowest index. In index order.

    >>> nondominated([(0.9, 2.0), (0.8, 1.0), (0.7, 3.0), (0.9, 2.0)], [True, False])
    [0, 1]
    """
    signs = [-1.0 if m else 1.0 for m in maximize]
    pts = [tuple(s * float(v) for s, v in zip(signs, p)) for p in points]  # all minimized
    out: list[int] = []
    for i, p in enumerate(pts):
        if p in pts[:i]:
            continue
        if not any(all(a <= b for a, b in zip(q, p)) and q != p for q in pts):
            out.append(i)
    return out


def hypervolume_2d(points: Sequence[tuple[float, float]], ref: tuple[float, float]) -> float:
    """The area that ``points`` (``(quality, cost)``: quality maximized, cost minimized) dominate, bounded by the
    reference point ``ref`` = (the worst quality, the worst cost counted): the hypervolume indicator of a
    two-objective front (Zitzler & Thiele 1998). Points not better than ``ref`` in both add nothing.

    >>> hypervolume_2d([(0.5, 1.0), (0.8, 3.0)], ref=(0.0, 4.0))
    1.8
    """
    pts = sorted({(-q, c) for q, c in points if q > ref[0] and c < ref[1]})  # quality descending, i.e. -q up
    area, last_cost = 0.0, ref[1]
    for neg_q, c in pts:
        if c < last_cost:
            area += (-neg_q - ref[0]) * (last_cost - c)
            last_cost = c
    return area
