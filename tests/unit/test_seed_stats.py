"""The statistics over training seeds (edgebench.metrics.seeds) against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from edgebench.metrics.robustness import wilson
from edgebench.metrics.seeds import (
    T975,
    paired_seed_difference,
    seed_interval,
    t_quantile,
    within_seed_wilson,
)


def test_three_seeds_mean_and_t_interval_by_hand() -> None:
    # mean 0.92; deviations -0.02, 0, +0.02 -> sd = sqrt(0.0008 / 2) = 0.02; t(0.975, 2) = 4.302652730;
    # half-width 4.302652730 * 0.02 / sqrt(3) = 0.0496828
    s = seed_interval([0.90, 0.92, 0.94])
    assert s is not None and s.k == 3 and s.values == (0.90, 0.92, 0.94)
    assert s.mean == pytest.approx(0.92, abs=1e-12) and s.sd == pytest.approx(0.02, abs=1e-12)
    assert s.lo == pytest.approx(0.92 - 0.0496828, abs=1e-6) and s.hi == pytest.approx(0.92 + 0.0496828, abs=1e-6)
    assert s.contains(0.871) and not s.contains(0.97)


def test_two_seeds_use_twelve_point_seven() -> None:
    # k = 2: sd = |a - b| / sqrt(2), half = 12.7062 * sd / sqrt(2) = 12.7062 * |a - b| / 2
    s = seed_interval([0.5, 0.6])
    assert s is not None and s.mean == pytest.approx(0.55)
    assert s.hi - s.mean == pytest.approx(12.706204736 * 0.05, rel=1e-9)


def test_one_seed_has_no_interval_and_missing_values_are_left_out() -> None:
    one = seed_interval([0.8, None, math.nan])
    assert one is not None and one.k == 1 and one.mean == 0.8 and one.lo is None and one.contains(0.8) is None
    assert seed_interval([None]) is None


def test_paired_difference_is_the_interval_of_per_seed_differences() -> None:
    # differences 0.05, 0.03, 0.04: mean 0.04, sd 0.01, half 4.302652730 * 0.01 / sqrt(3) = 0.0248414
    d = paired_seed_difference([0.95, 0.93, 0.94], [0.90, 0.90, 0.90])
    assert d is not None and d.mean == pytest.approx(0.04) and d.sd == pytest.approx(0.01)
    assert d.lo == pytest.approx(0.04 - 0.0248414, abs=1e-6) and d.lo > 0  # a real difference over seeds
    # a seed missing on either side drops that pair only
    d2 = paired_seed_difference([0.95, None, 0.94], [0.90, 0.90, 0.90])
    assert d2 is not None and d2.k == 2 and d2.values == pytest.approx((0.05, 0.04))
    with pytest.raises(ValueError, match="one per seed"):
        paired_seed_difference([0.9], [0.9, 0.8])


def test_t_table_matches_scipy_and_the_expansion_holds_above_30() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in range(1, 31):
        assert t_quantile(df, use_scipy=False) == T975[df - 1]
        assert T975[df - 1] == pytest.approx(float(scipy_stats.t.ppf(0.975, df)), abs=1e-9)
    for df in (31, 40, 60, 120, 1000):
        assert t_quantile(df, use_scipy=False) == pytest.approx(float(scipy_stats.t.ppf(0.975, df)), abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_within_seed_wilson_uses_one_seeds_sample_count() -> None:
    # 90 % of 100 samples: the interval of one seed's 100 images, not of 300 pooled ones
    assert within_seed_wilson(0.9, 100) == pytest.approx(wilson(90, 100))
    lo, hi = within_seed_wilson(0.9, 100)
    assert lo == pytest.approx(0.8256, abs=1e-4) and hi == pytest.approx(0.9448, abs=1e-4)
