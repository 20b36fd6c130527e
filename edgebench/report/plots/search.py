"""The search's Pareto front (:mod:`edgebench.search`): every trial's robust accuracy against its p50 latency on the
target, its true stored size as colour, infeasible trials (over the budget) greyed, the front joined and the
chosen configuration starred. Drawn from the run's ``samples`` rows of kind ``search`` alone."""

from __future__ import annotations

from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import RunData
from edgebench.report.plots.style import HIGHLIGHT, MAX_LABELS, Plot, Styles, grid, log_scale


def search_rows(data: RunData) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The study row's data, the trial rows and the grid rows of a searched run (empty where none)."""
    rows = [s for s in data.samples if s["kind"] == "search"]
    study = next((s["data"] for s in rows if s["source"] == "study"), {})
    trials = sorted((s["data"] for s in rows if s["source"].startswith("trial ")), key=lambda r: r["number"])
    grids = [s["data"] for s in rows if s["source"].startswith("grid ")]
    return study, trials, grids


def _xy(r: dict[str, Any]) -> tuple[float | None, float | None]:
    v = r.get("values") or {}
    return finite(v.get("p50_ms")), finite(v.get("robust_acc"))


def search_front(data: RunData, st: Styles) -> list[Plot]:
    from edgebench.search.front import chosen, front

    study, trials, _ = search_rows(data)
    pts = [r for r in trials if r.get("state") == "COMPLETE" and None not in _xy(r)]
    if not study or not pts:
        return []
    objectives, directions = study["objectives"], study["directions"]
    on_front = front(trials, objectives, directions)
    pick = chosen(trials, objectives, directions)
    cv = grid(1, panel=(4.2, 3.0), colorbar=True)
    ax = cv.axes[0]
    handles: dict[str, Any] = {}
    bad = [r for r in pts if not r.get("feasible")]
    if bad:
        handles["over budget"] = ax.scatter([_xy(r)[0] for r in bad], [_xy(r)[1] for r in bad], s=22, marker="x",
                                            color="#9a9a9a", linewidths=1)
    good = [r for r in pts if r.get("feasible")]
    sizes = [finite((r.get("values") or {}).get("size_mb")) for r in good]
    if good:
        im = ax.scatter([_xy(r)[0] for r in good], [_xy(r)[1] for r in good], s=30, marker="o",
                        c=[s if s is not None else 0.0 for s in sizes], cmap="viridis", edgecolors="black",
                        linewidths=0.3, zorder=3)
        cv.colorbar(im, "true stored size (MB)")
    if on_front:
        f = sorted(on_front, key=lambda r: (_xy(r)[0], -(_xy(r)[1] or 0)))
        (line,) = ax.plot([_xy(r)[0] for r in f], [_xy(r)[1] for r in f], color=HIGHLIGHT, linestyle="--",
                          linewidth=1, marker="D", markersize=5, markerfacecolor="none", zorder=4)
        handles["Pareto front"] = line
    if pick is not None:
        handles["chosen"] = ax.scatter([_xy(pick)[0]], [_xy(pick)[1]], s=140, marker="*", color=HIGHLIGHT,
                                       edgecolors="black", linewidths=0.5, zorder=5)
    if len(pts) <= MAX_LABELS:
        for r in pts:
            ax.annotate(str(r["number"]), _xy(r), xytext=(3, 3), textcoords="offset points", fontsize=6)
    log_scale(ax, "x", [_xy(r)[0] for r in pts])
    ax.set_xlabel(f"p50 latency on {study.get('target')}/{study.get('backend')} (ms)")
    ax.set_ylabel(f"robust accuracy at ε={study.get('eps', 0):g}")
    if handles:  # inside the panel: the right margin holds the colour bar
        ax.legend(list(handles.values()), list(handles), loc="best", fontsize=6)
    caption = ("Each point is a trial of the search (its number beside it): robust accuracy (higher is better) "
               "against p50 latency measured on the target (lower is better), coloured by the true stored size. "
               "Grey crosses broke the budget; the dashed line joins the Pareto front of the feasible trials (over "
               f"every objective: {', '.join(objectives)}, so a front point may look dominated in this projection); "
               "the star is the chosen configuration.")
    return [cv.plot("search-front", "Search: robust accuracy vs latency", caption, "search")]
