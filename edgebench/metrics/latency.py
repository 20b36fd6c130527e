"""Latency statistics from per-inference samples (DESIGN.md, "Latency").

Percentiles are taken from the sorted samples with linear interpolation (numpy's default), as
benchmark_app and MLPerf loadgen report them.
"""

from __future__ import annotations

import numpy as np

LATENCY_FIELDS = ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def latency_summary(samples_ns: np.ndarray, *, first_ns: int | None = None, duration_s: float | None = None,
                    batch_size: int = 1) -> dict[str, float | int | None]:
    """Summarise per-inference wall times given in nanoseconds.

    Returns mean, std (ddof=1), min, p50, p90, p99 and max in milliseconds, the first inference (measured
    separately, before warm-up) in milliseconds, the run count, the timed duration and the throughput in
    samples per second (``batch_size * runs / duration``).
    """
    s = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if s.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p99 = np.percentile(s, [50, 90, 99])
    total_s = float(s.sum() / 1e3) if duration_s is None else float(duration_s)
    return {
        "mean_ms": float(s.mean()),
        "std_ms": float(s.std(ddof=1)) if s.size > 1 else 0.0,
        "min_ms": float(s.min()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(s.max()),
        "first_ms": None if first_ns is None else first_ns / 1e6,
        "runs": int(s.size),
        "duration_s": total_s,
        "throughput_per_s": batch_size * s.size / total_s if total_s > 0 else None,
    }


def welch_test(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> dict[str, float]:
    """Welch's two-sided t-test from summary statistics (mean, std with ddof=1, runs) of two latency
    measurements: ``t``, the Welch–Satterthwaite ``df`` and ``p_value``. It says whether the means differ
    beyond the run-to-run spread of these samples; it cannot see drift between sessions (thermal state, other
    load), so a small p on a small ratio is still worth a re-run."""
    from scipy import stats

    if n_a < 2 or n_b < 2:
        return {"t": float("nan"), "df": float("nan"), "p_value": float("nan")}
    va, vb = std_a**2 / n_a, std_b**2 / n_b
    if va + vb == 0:
        return {"t": 0.0 if mean_a == mean_b else float("inf"), "df": float(n_a + n_b - 2),
                "p_value": 1.0 if mean_a == mean_b else 0.0}
    t = (mean_b - mean_a) / (va + vb) ** 0.5
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    return {"t": float(t), "df": float(df), "p_value": float(2 * stats.t.sf(abs(t), df))}


def round_cv(medians_ms: list[float] | np.ndarray) -> float | None:
    """The coefficient of variation (std with ddof=1 over mean) of per-round medians: how much one round's
    median moves from round to round. None below two rounds."""
    m = np.asarray([x for x in medians_ms if x is not None], dtype=np.float64)
    if m.size < 2 or float(m.mean()) <= 0:
        return None
    return float(m.std(ddof=1) / m.mean())
