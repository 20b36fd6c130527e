"""Round-robin interleaved timing shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(cases: dict[str, Callable[[], object]], *, reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each case ``reps`` times, alternating between cases so drift hits all of them alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(reps):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def table(times: dict[str, list[float]], ref: str, unit: float = 1e3, unit_name: str = "ms") -> str:
    base = statistics.median(times[ref])
    rows = [f"| case | median {unit_name} | min-max {unit_name} | ratio to {ref} |", "|---|---|---|---|"]
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(f"| {name} | {med * unit:.3f} | {min(ts) * unit:.3f}-{max(ts) * unit:.3f} | {med / base:.3f} |")
    return "\n".join(rows)
