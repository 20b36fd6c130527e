"""Statistics over training seeds (DESIGN.md, "Definitions": with several training seeds a row also carries the
mean over seeds and a between-seed interval from the t distribution). Pure Python, torch-free.

- :func:`seed_interval`: the mean of one quantity over ``k`` seeds and its 95 % interval
  ``mean ± t(0.975, k − 1) · sd / √k`` (``sd`` the sample standard deviation, ``k − 1`` in its denominator): the
  spread of the result when the model is trained again, which the within-seed Wilson interval (the finite test
  set) does not see.
- :func:`paired_seed_difference`: the same over per-seed differences ``a_s − b_s`` of two quantities measured on
  the same seed and the same test samples (a variant against its base): a paired t interval.
- :func:`within_seed_wilson`: the Wilson interval of the seeds' mean with the per-seed sample count ``n``. The
  seeds share their test samples, so pooling them would count each image ``k`` times and understate the test-set
  uncertainty; this is the interval one seed's ``n`` samples give at the mean accuracy.
- :func:`t_quantile`: ``scipy.stats.t.ppf`` where SciPy is installed, else :data:`T975` (a table of the 0.975
  quantile for 1–30 degrees of freedom) and, above 30, the Cornish–Fisher expansion (error below 1e-4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edgebench.metrics.robustness import Z95, wilson

__all__ = ["T975", "SeedStat", "paired_seed_difference", "seed_interval", "t_quantile", "within_seed_wilson"]

#: the 0.975 quantile of Student's t for 1..30 degrees of freedom (scipy.stats.t.ppf(0.975, df), 9 decimals)
T975 = (12.706204736, 4.30265273, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252, 2.306004135,
        2.262157163, 2.228138852, 2.20098516, 2.17881283, 2.160368656, 2.144786688, 2.131449546, 2.119905299,
        2.109815578, 2.10092204, 2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.06865761, 2.063898562,
        2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456)


def _t975_table(df: int) -> float:
    if df <= len(T975):
        return T975[df - 1]
    z = Z95  # Cornish–Fisher expansion of the t quantile in 1/df (Abramowitz & Stegun 26.7.5)
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def t_quantile(df: int, *, use_scipy: bool = True) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (the half-width factor of a two-sided
    95 % interval)."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom, got {df}")
    if use_scipy:
        try:
            from scipy.stats import t
        except ImportError:
            pass
        else:
            return float(t.ppf(0.975, df))
    return _t975_table(df)


@dataclass(frozen=True)
class SeedStat:
    """One quantity over ``k`` seeds: its mean, sample standard deviation and 95 % t interval (``lo``/``hi`` None
    with one seed: no spread to estimate), and the values it came from, in seed order."""

    mean: float
    sd: float | None
    lo: float | None
    hi: float | None
    k: int
    values: tuple[float, ...]

    def contains(self, value: float) -> bool | None:
        """Whether ``value`` lies in the interval (None without one)."""
        return None if self.lo is None or self.hi is None else self.lo <= value <= self.hi


def seed_interval(values: Sequence[float | None]) -> SeedStat | None:
    """Mean and between-seed 95 % t interval of ``values`` (one per seed; None or NaN entries, seeds where the
    quantity was not measured, are left out). None when no value is left."""
    xs = tuple(float(v) for v in values if v is not None and math.isfinite(v))
    k = len(xs)
    if k == 0:
        return None
    mean = sum(xs) / k
    if k == 1:
        return SeedStat(mean, None, None, None, 1, xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (k - 1))
    half = t_quantile(k - 1) * sd / math.sqrt(k)
    return SeedStat(mean, sd, mean - half, mean + half, k, xs)


def paired_seed_difference(a: Sequence[float | None], b: Sequence[float | None]) -> SeedStat | None:
    """The mean of ``a_s − b_s`` over the seeds where both were measured, with its paired 95 % t interval
    (``a`` and ``b`` in the same seed order, each seed's two values from the same test samples)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need one per seed on both sides, got {len(a)} and {len(b)}")
    return seed_interval([None if x is None or y is None else x - y for x, y in zip(a, b)])


def within_seed_wilson(mean: float, n: int) -> tuple[float, float]:
    """The 95 % Wilson interval at proportion ``mean`` with ``n`` samples (one seed's sample count)."""
    return wilson(mean * n, n)  # type: ignore[arg-type]  # the mean count over seeds need not be whole
