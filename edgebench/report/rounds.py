"""Latency you can compare (issue 16, item 6): the report's section on interleaved latency rounds, and the
per-round medians that it and ``edgebench compare`` test differences on (:mod:`edgebench.metrics.rounds`).

Per target and backend: each unit's p50, its rounds and the coefficient of variation of its per-round medians,
the thermal state the rounds ran at, and each variant against its base: the median of the per-round ratios with
its bootstrap interval, or *not resolved* when the difference is inside the rounds' spread.
"""

from __future__ import annotations

from typing import Any

from edgebench.metrics.latency import round_cv
from edgebench.metrics.rounds import SPREAD_K, verdict_text
from edgebench.report.data import RunData, unit_label
from edgebench.report.speed import speed_cell, speed_verdicts
from edgebench.report.tables import Cell, Mark, Num, Para, Section, Table
from edgebench.store import BASE

#: a stored row's rounds: (model, variant, backend, target) -> the ``rounds`` samples' data
RoundsKey = tuple[str, str, str, str]


def round_data(d: RunData) -> dict[RoundsKey, dict[str, Any]]:
    """The run's ``rounds`` samples (per-round medians, position, thermal state), by unit and target/backend."""
    return {(s["model"], s["variant"], s["backend"], s["target"]): s["data"]
            for s in d.samples if s["kind"] == "rounds"}


def verdict_cell(c: dict[str, Any]) -> Cell:
    """The comparison's verdict: the ratio with its interval when resolved, else muted ``not resolved``."""
    return Mark(verdict_text(c), "plain" if c["resolved"] else "muted", c["ratio"])


def cv_cell(cv: float | None) -> Cell:
    return None if cv is None else Num(cv * 100, 1, " %")


def _conditions(data: dict[str, Any]) -> Cell:
    """The hottest zone over the rounds and the settle wait; how many CPUs other processes kept busy."""
    temps = [t for t in data.get("temp_c") or () if t is not None]
    loads = sorted(x for x in data.get("other_load") or () if x is not None)
    late = sum(1 for s in data.get("settled") or () if s is False)
    parts = ["temperature not readable"]
    if temps:
        waited = sum(w for w, s in zip(data.get("waited_s") or (), data.get("settled") or ()) if s is not None)
        parts = [f"{min(temps):.1f}–{max(temps):.1f} °C, waited {waited:.1f} s"
                 + (f", {late} round(s) not settled" if late else "")]
    if loads:
        parts.append(f"others kept {loads[len(loads) // 2]:.1f} CPUs busy")
    return Mark("; ".join(parts), "bad" if late else "plain", max(temps) if temps else None)


def rounds_section(d: RunData) -> Section | None:
    """The interleaved rounds of every target and backend that ran them (None when none did)."""
    data = round_data(d)
    if not data:
        return None
    blocks: list[Any] = [Para(
        "Every unit of a target was timed in interleaved rounds (A, B, C, then B, C, A, ...: drift lands on every "
        "unit alike). `CV`: the coefficient of variation of a unit's per-round medians. `vs base`: the median of "
        "the per-round ratios variant ÷ base with its 95 % bootstrap interval over rounds; **not resolved** when "
        f"the interval holds 1 or the difference is inside ±{SPREAD_K:g} × the larger CV (the rounds' spread). "
        "Conditions: the hottest zone's reading before each round, the time spent waiting for it to settle, and "
        "how many CPUs other processes kept busy (median over rounds; it moves every unit of a round alike).")]
    pairs = sorted({(k[3], k[2]) for k in data})
    speed = speed_verdicts(d)
    for target, backend in pairs:
        rows: list[list[Cell]] = []
        p50 = {(r["model"], r["variant"]): r.get("p50_ms") for r in d.clean
               if (r["target"], r["backend"]) == (target, backend)}
        keys = sorted((k for k in data if (k[3], k[2]) == (target, backend)), key=lambda k: (k[0], k[1] != BASE, k[1]))
        for model, variant, _, _ in keys:
            mine = data[(model, variant, backend, target)]
            rows.append([unit_label(model, variant), Num(p50.get((model, variant))), len(mine["median_ms"]),
                         cv_cell(round_cv(mine["median_ms"])), speed_cell(speed.get((model, variant, target, backend))),
                         _conditions(mine)])
        blocks.append(Table(f"rounds_{target}_{backend}", f"{target} / {backend}",
                            ["unit", "p50", "rounds", "CV of round medians", "vs base", "conditions"], rows))
    return Section("rounds", "Latency rounds", blocks)
