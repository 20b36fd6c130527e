"""Latency figures: the batch-1 latency distribution of each unit, per target and backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import RunData, unit_label
from edgebench.report.plots.rows import (
    extremes,
    hist_median,
    hist_of,
    ordered,
    shown_note,
)
from edgebench.report.plots.style import (
    MAX_LINES,
    MAX_PANELS,
    MAX_ROWS,
    Plot,
    Styles,
    grid,
    log_scale,
    step_line,
    text_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def latency(data: RunData, st: Styles) -> list[Plot]:
    """Per target: the batch-1 latency distribution of each variant, one panel per backend."""
    hists: dict[tuple[str, str], dict[str, tuple[list[float], list[float]]]] = {}
    for s in data.latency_histograms():
        h = hist_of(s.get("data"))
        if h is not None and min(h[0]) > 0:
            hists.setdefault((s["target"], s["backend"]), {})[unit_label(s["model"], s["variant"])] = h
    clean: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in data.clean:
        if finite(r.get("p50_ms")) is not None:
            clean.setdefault((r["target"], r["backend"]), {}).setdefault(unit_label(r["model"], r["variant"]), r)
    pairs = [p for p in ordered([*data.pairs, *hists, *clean]) if p in hists or p in clean]
    out = []
    for target in ordered(p[0] for p in pairs):
        backends = [p for p in pairs if p[0] == target][:MAX_PANELS]
        shown: dict[tuple[str, str], list[str]] = {}
        for p in backends:
            if p in hists:
                med = {u: hist_median(*h) for u, h in hists[p].items()}
                shown[p] = extremes(list(hists[p]), med, MAX_LINES + 2, keep=[u for u in hists[p] if "/" not in u])
            else:
                p50 = {u: r["p50_ms"] for u, r in clean[p].items()}
                shown[p] = extremes(list(clean[p]), p50, MAX_ROWS // 2, keep=[u for u in clean[p] if "/" not in u])
        ranged = [p for p in backends if p not in hists]
        labels = ordered(u for p in backends if p in hists for u in shown[p])
        side = 0.35 + text_width(u for p in ranged for u in shown[p]) if ranged else 0.0
        rows = max((len(shown[p]) for p in ranged), default=0)
        cv = grid(len(backends), panel=(3.8, max(2.6, 0.3 + 0.2 * rows)), max_cols=2, left=max(0.65, side),
                   wspace=max(0.6, side), legend=labels)
        handles: dict[str, Any] = {}
        sty = st.of(labels)
        for ax, pair in zip(cv.axes, backends):
            if pair in hists:
                for u in shown[pair]:
                    edges, counts = hists[pair][u]
                    total = sum(counts)
                    handles[u] = step_line(ax, edges, [c / total for c in counts], sty[u], u)
                log_scale(ax, "x", [e for u in shown[pair] for e in hists[pair][u][0]], force=True)
                ax.set_xlabel("latency per inference (ms, log scale)")
                ax.set_ylabel("share of runs per bin")
            else:
                _latency_ranges(ax, clean[pair], shown[pair], st)
            ax.set_title(pair[1])
        cv.legend(handles)
        notes = "".join(shown_note(len(shown[p]), len(hists[p] if p in hists else clean[p]),
                               f"{p[1]}: the bases, the fastest and the slowest") for p in backends)
        kinds = ("histograms of the timed batch-1 inferences on log-spaced bins (share of runs per bin)"
                 if labels else "")
        ranges = "min–max line, p50–p90 bar, p99 cross, from the stored percentiles" if ranged else ""
        caption = (f"Latency of one batch-1 inference on {target}, per backend: "
                   + "; ".join(x for x in (kinds, ranges) if x)
                   + ". Further left is faster; a long right tail means jitter." + notes)
        out.append(cv.plot(f"latency-{target}", f"Latency distribution on {target}", caption, "latency"))
    return out


def _latency_ranges(ax: Axes, rows: dict[str, dict[str, Any]], shown: list[str], st: Styles) -> None:
    """Box-like latency summary per unit from the clean rows' min/p50/p90/p99/max (no histograms stored)."""
    ys = list(range(len(shown)))[::-1]
    vals: list[float | None] = []
    sty = st.of(shown)
    for y, u in zip(ys, shown):
        r, s = rows[u], sty[u]
        lo, hi, p90, p99 = (finite(r.get(k)) for k in ("min_ms", "max_ms", "p90_ms", "p99_ms"))
        if lo is not None and hi is not None:
            ax.hlines(y, lo, hi, color=s["color"], linewidth=1)
        ax.hlines(y, r["p50_ms"], p90 if p90 is not None else r["p50_ms"], color=s["color"], linewidth=5)
        ax.plot([r["p50_ms"]], [y], marker="|", color="white", markersize=6, linestyle="none")
        if p99 is not None:
            ax.plot([p99], [y], marker="x", color=s["color"], linestyle="none")
        vals += [lo, r["p50_ms"], hi]
    ax.set_yticks(ys, shown)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    log_scale(ax, "x", vals)
    ax.set_xlabel("latency per inference (ms)")
    ax.grid(axis="y", visible=False)
