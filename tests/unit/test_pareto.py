"""The Pareto front of a cost/quality trade-off (minimise x, maximise y)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgebench.metrics.pareto import pareto_front


def test_known_front_sorted_by_x() -> None:
    # (latency ms, accuracy): 1 and 4 are dominated by 0 (cheaper and at least as accurate); 3 by 2
    x = [2.0, 1.0, 3.0, 5.0, 2.5, 4.0]
    y = [0.90, 0.80, 0.95, 0.94, 0.85, 0.99]
    assert pareto_front(x, y) == [1, 0, 2, 5]


def test_ties_kept_once_at_the_lowest_index() -> None:
    # points 0 and 2 are identical: kept once (index 0); 1 has the same x as 0 but lower y; 3 the same y at higher x
    x = [1.0, 1.0, 1.0, 2.0, 3.0]
    y = [0.5, 0.4, 0.5, 0.5, 0.6]
    assert pareto_front(x, y) == [0, 4]


def test_nan_none_and_inf_are_excluded() -> None:
    x = [1.0, None, math.nan, 2.0, 0.5, -math.inf, np.float32(3.0)]
    y = [0.5, 0.99, 0.99, 0.7, None, 1.0, math.inf]
    # the NaN/None/inf points would dominate everything if they counted; numpy scalars are accepted
    assert pareto_front(x, y) == [0, 3]


def test_edge_cases() -> None:
    assert pareto_front([], []) == []
    assert pareto_front([None], [0.3]) == []
    assert pareto_front([3.0], [0.3]) == [0]
    # a strictly increasing trade-off: every point is optimal
    assert pareto_front(np.array([3.0, 1.0, 2.0]), np.array([0.9, 0.7, 0.8])) == [1, 2, 0]
    # one point better on both axes dominates all
    assert pareto_front([2, 3, 1, 4], [0.5, 0.6, 0.9, 0.1]) == [2]
    with pytest.raises(ValueError, match="x has 2 points, y has 1"):
        pareto_front([1.0, 2.0], [0.5])


def test_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 60).astype(float)
    y = rng.integers(0, 6, 60).astype(float)
    x[::7] = np.nan
    got = pareto_front(x, y)
    ok = [i for i in range(60) if np.isfinite(x[i])]
    dominated = {i for i in ok for j in ok if x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i])}
    expected_pts = sorted({(x[i], y[i]) for i in ok if i not in dominated})
    assert [(x[i], y[i]) for i in got] == expected_pts
    # the kept duplicate is the first occurrence
    assert all(i == min(k for k in ok if (x[k], y[k]) == (x[i], y[i])) for i in got)
    assert all(y[a] < y[b] for a, b in zip(got, got[1:]))
