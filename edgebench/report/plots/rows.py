"""Choosing what a figure shows from store rows: the (target, backend) pair, the units in a stable order, caps
on series that keep the base and the extremes, and the stored histograms."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import BASE, RunData


def first_pair(data: RunData, rows: Iterable[dict[str, Any]]) -> tuple[str, str] | None:
    """The first (target, backend) pair, in stored order, that any of ``rows`` was measured on."""
    have = {(r.get("target"), r.get("backend")) for r in rows}
    for p in data.pairs:
        if p in have:
            return p
    return next(iter(sorted(have, key=str)), None)


def on_pair(rows: Iterable[dict[str, Any]], pair: tuple[str, str]) -> list[dict[str, Any]]:
    return [r for r in rows if (r.get("target"), r.get("backend")) == pair]


def ordered(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def variant_order(model: str, present: Iterable[str], data: RunData) -> list[str]:
    """``present`` variants of ``model``: the base first, then the store's variant order, then the rest."""
    present = ordered(present)
    known = [v.get("variant") for v in data.variants if v.get("model") == model]
    order = {v: i for i, v in enumerate(ordered([BASE, *known, *present]))}
    return sorted(present, key=order.__getitem__)


def pick(labels: Sequence[str], score: dict[str, float], cap: int, *, keep: Iterable[str] = ()) -> list[str]:
    """At most ``cap`` of ``labels`` (order kept): those in ``keep`` (the base), then the highest ``score``."""
    if len(labels) <= cap:
        return list(labels)
    keep = set(keep)
    chosen = [x for x in labels if x in keep][:cap]
    rest = sorted((x for x in labels if x not in chosen), key=lambda x: -score.get(x, -math.inf))
    chosen += rest[:cap - len(chosen)]
    return [x for x in labels if x in chosen]


def extremes(labels: Sequence[str], value: dict[str, float], cap: int, *, keep: Iterable[str] = ()) -> list[str]:
    """At most ``cap`` of ``labels``: ``keep``, then alternately the lowest and highest ``value``."""
    if len(labels) <= cap:
        return list(labels)
    keep = set(keep)
    chosen = [x for x in labels if x in keep][:cap]
    rest = sorted((x for x in labels if x not in chosen and x in value), key=value.__getitem__)
    lo, hi = 0, len(rest) - 1
    while len(chosen) < cap and lo <= hi:
        chosen.append(rest[lo])
        lo += 1
        if len(chosen) < cap and lo <= hi:
            chosen.append(rest[hi])
            hi -= 1
    return [x for x in labels if x in chosen]


def shown_note(n_shown: int, n_all: int, how: str) -> str:
    return "" if n_shown >= n_all else f" {n_shown} of {n_all} shown ({how})."


def hist_of(h: Any) -> tuple[list[float], list[float]] | None:
    """``(edges, counts)`` of a stored histogram dict (``edges`` or ``edges_ms``) when well formed and not empty."""
    if not isinstance(h, dict):
        return None
    edges = h.get("edges", h.get("edges_ms"))
    counts = h.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or not counts or len(edges) != len(counts) + 1:
        return None
    e = [finite(x) for x in edges]
    c = [finite(x) or 0.0 for x in counts]
    if any(x is None for x in e) or sum(c) <= 0:
        return None
    return [float(x) for x in e if x is not None], c


def hist_median(edges: Sequence[float], counts: Sequence[float]) -> float:
    total, acc = sum(counts), 0.0
    for i, c in enumerate(counts):
        acc += c
        if acc >= total / 2:
            return math.sqrt(edges[i] * edges[i + 1]) if edges[i] > 0 else (edges[i] + edges[i + 1]) / 2
    return edges[-1]


def pair_text(pair: tuple[str, str]) -> str:
    return f"{pair[0]} / {pair[1]}"
