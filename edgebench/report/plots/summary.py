"""The summary figure: clean and robust accuracy per unit with their intervals (a forest plot)."""

from __future__ import annotations

from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import BASE, HEADLINE_ROBUST, RunData, headline_robust, unit_label
from edgebench.report.plots.rows import (
    first_pair,
    on_pair,
    ordered,
    pair_text,
    pick,
    shown_note,
    variant_order,
)
from edgebench.report.plots.style import (
    HIGHLIGHT,
    MAX_ROWS,
    OKABE_ITO,
    Plot,
    Styles,
    fraction_axis,
    grid,
    text_width,
)


def _or(v: float | None, default: float) -> float:
    return default if v is None else v


def accuracy_overview(data: RunData, st: Styles) -> list[Plot]:
    """Forest plot: clean accuracy with its 95 % Wilson interval per unit, and the report's robust accuracy
    (:func:`~edgebench.report.data.headline_robust`, the summary's figure) on the first target and backend."""
    clean = [r for r in data.clean if finite(r.get("clean_acc")) is not None]
    pair = first_pair(data, clean)
    if pair is None:
        return []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in on_pair(clean, pair):
        rows.setdefault((r["model"], r["variant"]), r)
    robust = {(m, v): w for (m, v, t, b), (w, _) in headline_robust(data.adversarial).items() if (t, b) == pair}
    units = [(m, v) for m in ordered(k[0] for k in rows)
             for v in variant_order(m, (k[1] for k in rows if k[0] == m), data)]
    base_acc = {m: rows[(m, BASE)]["clean_acc"] for m, v in units if v == BASE}
    drop = {unit_label(m, v): abs(base_acc.get(m, 1.0) - rows[(m, v)]["clean_acc"]) for m, v in units}
    labels = pick([unit_label(m, v) for m, v in units], drop, MAX_ROWS, keep=[m for m, v in units if v == BASE])
    units = [(m, v) for m, v in units if unit_label(m, v) in labels]
    series = [("clean_acc", 0.15, "o", OKABE_ITO[0], "clean accuracy"),
              ("robust_acc", -0.15, "s", HIGHLIGHT, "robust accuracy\n(strongest attack, mid ε)")]
    if not robust:
        series = series[:1]
    cv = grid(1, panel=(4.2, 0.3 + 0.22 * len(units)), left=0.35 + text_width(labels), top=0.4,
               legend=[s[4] for s in series])
    ax = cv.axes[0]
    ys = list(range(len(units)))[::-1]
    handles: dict[str, Any] = {}
    for key, off, marker, color, what in series:
        pts = [(y + off, (robust.get((m, v)) if key == "robust_acc" else rows[(m, v)])) for y, (m, v) in zip(ys, units)]
        pts = [(y, r, finite(r.get(key))) for y, r in pts if r is not None and finite(r.get(key)) is not None]
        if not pts:
            continue
        lo = [max(0.0, val - _or(finite(r.get(key + "_lo")), val)) for _, r, val in pts]
        hi = [max(0.0, _or(finite(r.get(key + "_hi")), val) - val) for _, r, val in pts]
        handles[what] = ax.errorbar([p[2] for p in pts], [p[0] for p in pts], xerr=[lo, hi], fmt=marker,
                                    color=color, ecolor=color, capsize=2, markersize=4, elinewidth=1)
    ax.set_yticks(ys, [unit_label(m, v) for m, v in units])
    ax.set_xlabel("accuracy (fraction, 95 % Wilson interval)")
    fraction_axis(ax, "x")
    ax.set_ylim(-0.7, len(units) - 0.3)
    ax.grid(axis="y", visible=False)
    cv.legend(handles)
    n_all = len(rows)
    caption = ("Clean accuracy (circles) of each model and variant on " + pair_text(pair) +
               (f" and its {HEADLINE_ROBUST} (squares; the summary's figure)" if robust else "")
               + ", with 95 % Wilson intervals: a variant whose interval overlaps the base's is not measurably "
               "worse." + shown_note(len(units), n_all, "the bases and the largest changes from the base"))
    return [cv.plot("accuracy-overview", f"Accuracy per variant ({pair_text(pair)})", caption, "summary")]
