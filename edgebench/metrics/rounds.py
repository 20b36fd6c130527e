"""Is a latency difference resolved? The test on per-round medians (issue 16, item 6).

Per-inference samples are not independent (a run's inferences share its CPU state, thermal state and
neighbours), so a t-test over thousands of them reads "p = 0" for the same artifact run twice. The unit that
varies is the round (or the run): :func:`compare_rounds` compares two lists of per-round medians by

- the ratio B ÷ A and its 95 % bootstrap interval over rounds: when ``paired`` (the interleaved rounds of one
  latency job, where round ``r`` of A and of B shared the device's state) the median of the per-round ratios,
  rounds resampled jointly; across two runs the ratio of the medians, each side resampled on its own; and
- the rounds' spread: ``SPREAD_K`` × the larger coefficient of variation of the two lists' per-round medians,
  and across runs at least ``floor`` (the run-to-run noise that rounds inside one run cannot see), and
- across runs, an absolute floor ``floor_ms`` on ``|median B − median A|``: a call into the runtime from Python
  costs tens of µs, and how many varies from one process state to another, so a model that runs in 25 µs can
  read 2× slower in another run for no reason of its own (seen in CI: the same artifact, 0.049 ms in one run
  and 0.025 ms in the next, each run's rounds within 9 % of each other).

The difference is *resolved* only when the interval excludes 1 and ``|ratio − 1|`` exceeds the spread; with
fewer than ``MIN_ROUNDS`` rounds on either side it is not resolved. Across runs, when other processes kept more
than ``BUSY_LIMIT`` CPUs busy during either run's rounds (median over rounds), it is not resolved either: a
neighbour's load moves a whole run, and one run per side cannot tell that from a real difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgebench.metrics.latency import round_cv

#: a difference inside ±SPREAD_K × CV of the per-round medians is inside their spread
SPREAD_K = 2.0
#: the fewest rounds a side needs for a verdict
MIN_ROUNDS = 3
#: bootstrap resamples (fixed seed: the same stored rounds always read the same)
RESAMPLES = 2000
#: the run-to-run floor across two runs (a fraction of the ratio): one run per side cannot estimate the drift
#: between runs (bench/bench_rounds.py measured 21-23 % run-to-run CV of p50 on a loaded 2-core machine; the bench
#: README's "a ratio under ~1.1 is not resolved by one run"); ``edgebench compare --floor`` sets it
RUN_FLOOR = 0.10
#: the run-to-run floor in ms per inference (across two runs): differences smaller than this are per-call
#: overhead that drifts between runs, not the model; ``RUN_FLOOR`` covers the relative drift of larger models
RUN_FLOOR_MS = 0.05
#: other processes' load (CPUs kept busy, median over a run's rounds) above which two runs are not comparable
BUSY_LIMIT = 0.25


def compare_rounds(a_ms: list[float], b_ms: list[float], *, paired: bool, floor: float = 0.0,
                   floor_ms: float = 0.0,
                   other_load: tuple[list[float | None], list[float | None]] | None = None) -> dict[str, Any]:
    """B against A on per-round medians: ``ratio`` (median B ÷ median A), its bootstrap ``lo``/``hi``, ``spread``
    (the half-width around 1 inside which a ratio is not resolved), ``cv_a``/``cv_b``, ``resolved`` and, when
    not resolved, ``why`` (one phrase). ``floor_ms``: a difference of the medians under this many ms is not
    resolved (:data:`RUN_FLOOR_MS`, for comparisons across runs). ``other_load``: each run's per-round load of
    other processes (CPUs), for comparisons across runs."""
    a = np.asarray([x for x in a_ms if x is not None], dtype=np.float64)
    b = np.asarray([x for x in b_ms if x is not None], dtype=np.float64)
    out: dict[str, Any] = {"ratio": None, "lo": None, "hi": None, "spread": None, "cv_a": round_cv(a),
                           "cv_b": round_cv(b), "rounds_a": int(a.size), "rounds_b": int(b.size), "resolved": False}
    if a.size == 0 or b.size == 0:
        return {**out, "why": "no per-round medians"}
    paired = paired and a.size == b.size
    ratio = float(np.median(b / a) if paired else np.median(b) / np.median(a))
    out["ratio"] = ratio
    if min(a.size, b.size) < MIN_ROUNDS:
        return {**out, "why": f"fewer than {MIN_ROUNDS} rounds"}
    rng = np.random.default_rng(0)
    if paired:
        boot = np.median((b / a)[rng.integers(0, a.size, (RESAMPLES, a.size))], axis=1)
    else:
        boot = (np.median(b[rng.integers(0, b.size, (RESAMPLES, b.size))], axis=1)
                / np.median(a[rng.integers(0, a.size, (RESAMPLES, a.size))], axis=1))
    lo, hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    spread = max(SPREAD_K * max(out["cv_a"] or 0.0, out["cv_b"] or 0.0), floor)
    out.update(lo=lo, hi=hi, spread=spread)
    if lo <= 1.0 <= hi:
        return {**out, "why": "the ratio's 95 % interval over rounds holds 1"}
    if abs(ratio - 1.0) <= spread:
        return {**out, "why": f"|ratio − 1| = {abs(ratio - 1) * 100:.1f} % is inside the spread "
                              f"({spread * 100:.1f} %)"}
    diff_ms = abs(float(np.median(b)) - float(np.median(a)))
    if diff_ms < floor_ms:
        return {**out, "why": f"|B − A| = {diff_ms:.3f} ms is under the run-to-run floor of {floor_ms:g} ms "
                              "per inference (call overhead that drifts between runs)"}
    busy = _busy(other_load)
    return {**out, "why": busy} if busy else {**out, "resolved": True}


def _busy(other_load: tuple[list[float | None], list[float | None]] | None) -> str | None:
    """Why two runs are not comparable for the load of other processes, or None."""
    said = []
    for name, loads in zip("AB", other_load or ()):
        vals = [x for x in loads or () if x is not None]
        if vals and float(np.median(vals)) > BUSY_LIMIT:
            said.append(f"{float(np.median(vals)):.1f} CPUs in {name}")
    return f"other processes kept {' and '.join(said)} busy during the rounds" if said else None


def verdict_text(c: dict[str, Any]) -> str:
    """``0.82× [0.79, 0.85]`` when resolved, else ``not resolved (why)``."""
    if c["resolved"]:
        return f"{c['ratio']:.3f}× [{c['lo']:.3f}, {c['hi']:.3f}]"
    return f"not resolved ({c['why']})"
