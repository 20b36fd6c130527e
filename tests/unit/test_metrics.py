"""The pure metric functions against hand-computed and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgebench.metrics.latency import LATENCY_FIELDS, latency_summary
from edgebench.metrics.robustness import (
    attack_success_rate,
    clean_accuracy,
    mcnemar,
    proportion,
    robust_accuracy,
    vulnerability,
    wilson,
)

# ------------------------------------------------------------------------------------------------ wilson


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_known_values(k, n, lo, hi) -> None:
    got_lo, got_hi = wilson(k, n)
    assert got_lo == pytest.approx(lo, abs=5e-5)
    assert got_hi == pytest.approx(hi, abs=5e-5)
    assert 0.0 <= got_lo <= k / n <= got_hi <= 1.0


def test_wilson_contains_the_estimate_at_the_edges() -> None:
    # k = 0 and k = n: the bound is exactly 0 / 1 (rounding used to give 1e-17 or 0.9999999999999999)
    for n in range(1, 2000):
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0
        assert wilson(0, n)[1] > 0.0 and wilson(n, n)[0] < 1.0


def test_wilson_symmetry_width_and_empty() -> None:
    lo, hi = wilson(3, 17)
    lo2, hi2 = wilson(14, 17)
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
    # narrower with more samples at the same proportion; wider at a higher confidence
    assert np.diff(wilson(50, 100))[0] < np.diff(wilson(5, 10))[0]
    assert np.diff(wilson(5, 10, z=2.5758))[0] > np.diff(wilson(5, 10))[0]
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_proportion_and_empty_proportion() -> None:
    p = proportion(np.array([True, False, True, True]))
    assert p["value"] == 0.75 and p["k"] == 3 and p["n"] == 4
    assert (p["lo"], p["hi"]) == wilson(3, 4)
    e = proportion(np.array([], dtype=bool))
    assert e["n"] == 0 and e["k"] == 0 and math.isnan(e["value"]) and math.isnan(e["lo"])


# ------------------------------------------------------------------------------------------ robustness

Y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
CLEAN = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 0])  # 8 correct (last two wrong)
ADV = np.array([0, 2, 2, 0, 4, 1, 6, 0, 8, 0])  # of the 8 clean-correct, 1, 3, 5, 7 flipped; sample 8 now right


def test_clean_and_robust_accuracy() -> None:
    c = clean_accuracy(CLEAN, Y)
    assert (c["value"], c["k"], c["n"]) == (0.8, 8, 10)
    r = robust_accuracy(ADV, Y)
    # robust accuracy counts every sample against the true label, including sample 8 that the attack "fixed"
    assert (r["value"], r["k"], r["n"]) == (0.5, 5, 10)
    assert (r["lo"], r["hi"]) == wilson(5, 10)


def test_attack_success_rate_only_over_clean_correct() -> None:
    a = attack_success_rate(CLEAN, ADV, Y)
    assert a["n"] == 8 and a["k"] == 4 and a["value"] == 0.5
    assert (a["lo"], a["hi"]) == wilson(4, 8)
    # a sample the model already got wrong is never counted, even if still wrong under attack
    a2 = attack_success_rate(np.array([1, 1, 2]), np.array([1, 0, 0]), np.array([0, 1, 2]))
    assert (a2["k"], a2["n"]) == (2, 2)
    # nothing clean-correct: no denominator
    a3 = attack_success_rate(np.array([1, 0]), np.array([1, 0]), np.array([0, 1]))
    assert a3["n"] == 0 and math.isnan(a3["value"])


def test_targeted_attack_success_rate() -> None:
    target = (Y + 1) % 10
    adv = np.array([1, 2, 0, 4, 4, 6, 6, 8, 9, 0])
    # clean-correct: samples 0..7; of them 0, 1, 3, 5, 7 reach the target (2, 4, 6 do not)
    t = attack_success_rate(CLEAN, adv, Y, target=target)
    assert (t["k"], t["n"]) == (5, 8) and t["value"] == 0.625
    # an untargeted reading of the same predictions counts misclassification, not the target
    u = attack_success_rate(CLEAN, adv, Y)
    assert (u["k"], u["n"]) == (6, 8)


def test_vulnerability() -> None:
    assert vulnerability(0.8, 0.5) == pytest.approx(0.375)
    assert vulnerability(0.9, 0.9) == 0.0
    assert vulnerability(0.5, 0.0) == 1.0
    assert math.isnan(vulnerability(0.0, 0.0))


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),
        (10, 0, 2 * 0.5**10),
        (0, 10, 2 * 0.5**10),
        (5, 5, 1.0),
        (1, 0, 1.0),
        (8, 2, 2 * (1 + 10 + 45) / 2**10),  # 0.109375
        (20, 5, 2 * sum(math.comb(25, i) for i in range(6)) / 2**25),
    ],
)
def test_mcnemar_exact_p_values(b, c, p) -> None:
    same = 7  # concordant pairs do not change the test
    a = np.array([True] * b + [False] * c + [True] * same + [False] * same)
    bb = np.array([False] * b + [True] * c + [True] * same + [False] * same)
    r = mcnemar(a, bb)
    assert (r["b"], r["c"]) == (b, c)
    assert r["p_value"] == pytest.approx(p, rel=1e-12)


def test_mcnemar_past_a_thousand_discordant_pairs() -> None:
    # 2.0**n overflows past n = 1,023: a clean comparison on 10,000 images reached it (issue 20, poster 50 %)
    a = np.array([True] * 700 + [False] * 500)
    r = mcnemar(a, ~a)
    log10_p = math.log10(2) + math.log10(sum(math.comb(1200, i) for i in range(501))) - 1200 * math.log10(2)
    assert (r["b"], r["c"]) == (700, 500)
    assert math.log10(r["p_value"]) == pytest.approx(log10_p, abs=1e-9)
    assert 1e-10 < r["p_value"] < 1e-6


def test_mcnemar_is_symmetric_and_takes_int_masks() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(50) < 0.7, rng.random(50) < 0.5
    r1, r2 = mcnemar(a, b), mcnemar(b, a)
    assert (r1["b"], r1["c"]) == (r2["c"], r2["b"]) and r1["p_value"] == r2["p_value"]
    assert mcnemar(a.astype(int), b.astype(int)) == r1


# --------------------------------------------------------------------------------------------- latency


def test_latency_summary_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    samples = rng.integers(100_000, 5_000_000, size=997).astype(np.int64)
    s = latency_summary(samples, first_ns=12_345_678, duration_s=2.5)
    ms = samples / 1e6
    assert set(LATENCY_FIELDS) <= set(s)
    assert s["mean_ms"] == pytest.approx(ms.mean())
    assert s["std_ms"] == pytest.approx(ms.std(ddof=1))
    assert s["min_ms"] == ms.min() and s["max_ms"] == ms.max()
    for q in (50, 90, 99):
        assert s[f"p{q}_ms"] == pytest.approx(np.percentile(ms, q))
    assert s["min_ms"] <= s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["first_ms"] == pytest.approx(12.345678)
    assert s["runs"] == 997 and s["duration_s"] == 2.5
    assert s["throughput_per_s"] == pytest.approx(997 / 2.5)
    assert latency_summary(samples, duration_s=2.5, batch_size=8)["throughput_per_s"] == pytest.approx(8 * 997 / 2.5)


def test_latency_summary_hand_values() -> None:
    # 1, 2, 3, 4 ms: linear-interpolation percentiles 2.5, 3.7, 3.97
    s = latency_summary(np.array([4_000_000, 1_000_000, 3_000_000, 2_000_000]))
    assert s["mean_ms"] == pytest.approx(2.5)
    assert s["std_ms"] == pytest.approx(math.sqrt(5 / 3))
    assert (s["min_ms"], s["max_ms"]) == (1.0, 4.0)
    assert s["p50_ms"] == pytest.approx(2.5)
    assert s["p90_ms"] == pytest.approx(3.7)
    assert s["p99_ms"] == pytest.approx(3.97)
    assert s["first_ms"] is None
    # without a duration, the timed duration is the sum of the samples (10 ms)
    assert s["duration_s"] == pytest.approx(0.010)
    assert s["throughput_per_s"] == pytest.approx(400.0)


def test_latency_summary_single_and_empty() -> None:
    s = latency_summary([1_500_000], first_ns=0)
    assert s["runs"] == 1 and s["std_ms"] == 0.0 and s["p99_ms"] == 1.5 and s["first_ms"] == 0.0
    with pytest.raises(ValueError, match="no latency samples"):
        latency_summary(np.array([], dtype=np.int64))
