"""Trade-off figures: accuracy against latency, energy and size with the Pareto front (the pruning poster,
seed 004)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgebench.metrics.pareto import finite, pareto_front
from edgebench.report.data import BASE, HEADLINE_ROBUST, RunData, headline_robust, unit_label
from edgebench.report.plots.rows import (
    on_pair,
    ordered,
    pair_text,
)
from edgebench.report.plots.style import (
    HIGHLIGHT,
    MAX_LABELS,
    OKABE_ITO,
    POINTS,
    Plot,
    Styles,
    grid,
    log_scale,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


_TRADEOFF_LEGEND = ("variant", "Pareto-optimal", "Pareto front", "base (uncompressed)")


def tradeoffs(data: RunData, st: Styles) -> list[Plot]:
    """Accuracy against latency, energy and size with the Pareto front (the pruning poster, seed 004)."""
    sizes = data.onnx_sizes()
    headline = headline_robust(data.adversarial)
    out = []
    for target in ordered(p[0] for p in data.pairs):
        pair = next(p for p in data.pairs if p[0] == target)
        clean: dict[tuple[str, str], dict[str, Any]] = {}
        for r in on_pair(data.clean, pair):
            clean.setdefault((r["model"], r["variant"]), r)
        robust = {(m, v): finite(w["robust_acc"]) for (m, v, t, b), (w, _) in headline.items() if (t, b) == pair}
        units = list(clean)
        energy = {u: finite(clean[u].get("energy_j")) if clean[u].get("energy_valid") else None for u in units}
        xs = {"latency": {u: finite(clean[u].get("p50_ms")) for u in units},
              "energy": {u: None if e is None else e * 1e3 for u, e in energy.items()},
              "size": {u: sizes.get(u) for u in units}}
        xlabel = {"latency": "p50 latency per inference (ms)", "energy": "energy per inference (mJ)",
                  "size": "ONNX artifact size (bytes)"}
        ys = {"clean": {u: finite(clean[u].get("clean_acc")) for u in units},
              "robust": {u: robust.get(u) for u in units}}
        ylabel = {"clean": "clean accuracy", "robust": "robust accuracy\n(strongest attack, mid ε)"}
        count = {(xk, yk): sum(1 for u in units if xs[xk][u] is not None and ys[yk][u] is not None)
                 for xk in xs for yk in ys}
        cols = [k for k in xs if count[(k, "clean")] >= 2 or count[(k, "robust")] >= 2]
        rws = [k for k in ys if any(count[(c, k)] >= 2 for c in cols)]
        if not cols or not rws:
            continue
        cv = grid(len(cols) * len(rws), panel=(2.9, 2.4), max_cols=len(cols), left=0.8, top=0.4, wspace=0.25,
                   hspace=0.6, legend=_TRADEOFF_LEGEND, sharey="row")
        handles: dict[str, Any] = {}
        one_model = len({m for m, _ in units}) == 1
        for i, yk in enumerate(rws):
            for j, xk in enumerate(cols):
                ax = cv.axes[i * len(cols) + j]
                pts = [(u, x, y) for u in units if (x := xs[xk][u]) is not None and (y := ys[yk][u]) is not None]
                _pareto_panel(ax, pts, handles, one_model)
                if xk == "size":
                    from matplotlib.ticker import EngFormatter

                    ax.xaxis.set_major_formatter(EngFormatter(unit="B", sep=" "))
                ax.set_xlabel(xlabel[xk])
                if j == 0:
                    ax.set_ylabel(ylabel[yk])
        cv.legend({k: handles[k] for k in _TRADEOFF_LEGEND if k in handles})
        caption = (f"Each point is a model or variant on {pair_text(pair)}: accuracy (higher is better) against cost "
                   "(lower is better). Diamonds joined by the dashed step line are Pareto-optimal: no other variant "
                   "is both cheaper and more accurate; the star is the uncompressed base (poster 004's trade-off)." +
                   (f" The robust accuracy is the summary's figure: {HEADLINE_ROBUST}." if "robust" in rws
                    else "") + (" Energy only where the sensor's window was valid." if "energy" in cols else ""))
        out.append(cv.plot(f"tradeoffs-{target}", f"Accuracy vs cost on {pair_text(pair)}", caption, "tradeoffs"))
    return out


def _pareto_panel(ax: Axes, pts: list[tuple[tuple[str, str], float, float]], handles: dict[str, Any],
                  one_model: bool) -> None:
    front = pareto_front([p[1] for p in pts], [p[2] for p in pts])
    on_front = set(front)
    others = [p for i, p in enumerate(pts) if i not in on_front and p[0][1] != BASE]
    if others:
        handles.setdefault("variant", ax.scatter([p[1] for p in others], [p[2] for p in others], s=16, marker="o",
                                                 color=POINTS, alpha=0.7, linewidths=0))
    if front:
        fx, fy = [pts[i][1] for i in front], [pts[i][2] for i in front]
        (line,) = ax.step(fx, fy, where="post", color=HIGHLIGHT, linestyle="--", linewidth=1)
        handles.setdefault("Pareto front", line)
        handles.setdefault("Pareto-optimal", ax.scatter(fx, fy, s=34, marker="D", color=HIGHLIGHT,
                                                        edgecolors="black", linewidths=0.5, zorder=3))
    bases = [p for p in pts if p[0][1] == BASE]
    if bases:
        handles.setdefault("base (uncompressed)", ax.scatter([p[1] for p in bases], [p[2] for p in bases], s=70,
                                                             marker="*", color=OKABE_ITO[0], zorder=4))
    if len(pts) <= MAX_LABELS:
        for (m, v), x, y in pts:
            ax.annotate(v if one_model else unit_label(m, v), (x, y), xytext=(3, 3), textcoords="offset points",
                        fontsize=6)
    log_scale(ax, "x", [p[1] for p in pts])
