"""The outcome of a search, from its stored trial rows alone (pure Python: the report and the search share it).

A trial row is the ``data`` of a ``samples`` row of kind ``search`` (:func:`edgebench.search.study.trial_row`):
``number``, ``state``, ``variant``, ``chain``, ``values`` (every figure of :func:`edgebench.search.trial.trial_values`),
``feasible`` and ``violations``. The front is the feasible finished trials that no other feasible one beats in every
objective; the chosen configuration is the front's best robust accuracy (ties: lower p50 latency, then smaller
size, then the earlier trial) — the most robust model within the budget.
"""

from __future__ import annotations

from typing import Any

from edgebench.metrics.pareto import finite, nondominated

__all__ = ["KIND", "best", "chosen", "front", "complete"]

#: the ``samples`` kind of a search's rows
KIND = "search"


def complete(rows: list[dict[str, Any]], objectives: list[str]) -> list[dict[str, Any]]:
    """The finished trials with every objective measured."""
    return [r for r in rows if r.get("state") == "COMPLETE"
            and all(finite((r.get("values") or {}).get(o)) is not None for o in objectives)]


def front(rows: list[dict[str, Any]], objectives: list[str], directions: list[str]) -> list[dict[str, Any]]:
    """The feasible finished trials no other feasible one dominates (each configuration once)."""
    ok = [r for r in complete(rows, objectives) if r.get("feasible")]
    keep = nondominated([[float(r["values"][o]) for o in objectives] for r in ok],
                        [d == "maximize" for d in directions])
    return [ok[i] for i in keep]


def _rank(r: dict[str, Any]) -> tuple[float, float, float, int]:
    v = r.get("values") or {}
    p50, size = finite(v.get("p50_ms")), finite(v.get("size_mb"))
    return (-(finite(v.get("robust_acc")) or 0.0), p50 if p50 is not None else float("inf"),
            size if size is not None else float("inf"), int(r.get("number") or 0))


def best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row of the best robust accuracy (ties: lower p50, smaller size, earlier trial); None for no rows."""
    rows = [r for r in rows if finite((r.get("values") or {}).get("robust_acc")) is not None]
    return min(rows, key=_rank) if rows else None


def chosen(rows: list[dict[str, Any]], objectives: list[str], directions: list[str]) -> dict[str, Any] | None:
    """The front's best robust accuracy within the budget: the configuration the search recommends."""
    return best(front(rows, objectives, directions))
