"""Transfer and deployment-gap figures: ASR of examples crafted on one unit against another (Wijayanto et al.
2018, seed 002, Table III), and the device artifact's ASR against its host torch twin's."""

from __future__ import annotations

import math
from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import RunData, unit_label
from edgebench.report.plots.rows import (
    ordered,
    pair_text,
)
from edgebench.report.plots.style import (
    MARKERS,
    MAX_ANNOTATED,
    MAX_PANELS,
    MAX_ROWS,
    OKABE_ITO,
    Plot,
    Styles,
    fraction_axis,
    grid,
    heat_margins,
    heatmap,
)


def transfer(data: RunData, st: Styles) -> list[Plot]:
    """ASR on each victim of the examples crafted on each source (Wijayanto et al. 2018, seed 002, Table III)."""
    adv = [r for r in data.adversarial if finite(r.get("asr")) is not None and finite(r.get("eps")) is not None
           and r.get("source")]
    per_pair: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    crossed: set[tuple[str, str, str]] = set()
    for r in adv:
        per_pair.setdefault((r["target"], r["backend"]), {}).setdefault(r["attack"], []).append(r)
        if r["source"] != unit_label(r["model"], r["variant"]):
            crossed.add((r["target"], r["backend"], r["attack"]))
    pair = next((p for p in ordered([*data.pairs, *per_pair]) if p in per_pair
                 and any((*p, a) in crossed for a in per_pair[p])), None)
    if pair is None:
        return []
    panels = []
    for attack, rs in per_pair[pair].items():
        if (*pair, attack) in crossed:
            eps = max(float(r["eps"]) for r in rs)
            panels.append((attack, eps, {(r["source"], unit_label(r["model"], r["variant"])): r["asr"]
                                         for r in rs if float(r["eps"]) == eps}))
    # one set of rows and columns for all panels, so that only the outer panels need tick labels
    victims = ordered(v for _, _, c in panels for _, v in c)
    sources = ordered(s for _, _, c in panels for s, _ in c)
    sources = [v for v in victims if v in sources] + [s for s in sources if s not in victims]
    n_sources = len(sources)
    if n_sources > MAX_ANNOTATED:  # many units: the rows that only attacked themselves add nothing here
        crossing = {s for _, _, c in panels for s, v in c if s != v}
        sources = [s for s in sources if s in crossing]
    sources, victims = sources[:MAX_ROWS], victims[:MAX_ROWS]
    big = max(len(sources), len(victims)) > MAX_ANNOTATED
    n_panels = len(panels)
    panels = panels[:4 if big else MAX_PANELS]
    cell = 0.12 if big else 0.36
    left, bottom = heat_margins(sources, victims)
    pw, ph = max(1.2, cell * len(victims)), max(1.0, cell * len(sources))
    ncols = max(1, min(2 if big else 4, int(14 // pw)))
    cv = grid(len(panels), panel=(pw, ph), max_cols=ncols, left=left + 0.1, wspace=0.15, bottom=bottom,
               hspace=0.35, colorbar=True)
    im = None
    rows_of = math.ceil(len(panels) / ncols)
    for i, (ax, (attack, eps, cells)) in enumerate(zip(cv.axes, panels)):
        outer_x = i // ncols == rows_of - 1 or i + ncols >= len(panels)
        im = heatmap(ax, [[cells.get((s, v)) for v in victims] for s in sources], sources, victims, cmap="viridis",
                      xlabels=outer_x, ylabels=i % ncols == 0)
        ax.set_title(f"{attack}, ε = {eps:g}")
        if outer_x:
            ax.set_xlabel("victim")
        if i % ncols == 0:
            ax.set_ylabel("source (crafted on)")
    cv.colorbar(im, "ASR on the victim (fraction)")
    caption = (f"Attack success rate on each victim (column) of the adversarial examples crafted on each source "
               f"(row), per attack at its largest ε, on {pair_text(pair)}; the diagonal is white-box, grey cells were "
               "not measured. Bright off-diagonal cells mean the examples transfer (reproduces Wijayanto et al. "
               "2018, Table III)." +
               ("" if n_panels == len(panels) else f" {len(panels)} of {n_panels} attacks shown.") +
               ("" if len(sources) == n_sources else f" {len(sources)} of {n_sources} sources shown (those whose "
                "examples were tried on another model; the white-box rest is in the ASR figures)."))
    return [cv.plot("transfer-heatmap", f"Transferability ({pair_text(pair)})", caption, "robustness")]


def host_vs_device(data: RunData, st: Styles) -> list[Plot]:
    """Device ASR against the host torch twin's ASR on the same examples (the deployment gap, DESIGN.md)."""
    rows = [r for r in data.adversarial if finite(r.get("host_asr")) is not None and finite(r.get("asr")) is not None]
    if not rows:
        return []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["backend"]), []).append(r)
    order = [p for p in ordered([*data.pairs, *groups]) if p in groups][:len(MARKERS)]
    labels = {}
    for p in order:
        gap = sum(r["asr"] - r["host_asr"] for r in groups[p]) / len(groups[p])
        labels[p] = f"{pair_text(p)}\n(n={len(groups[p])}, mean gap {gap:+.3f})"
    cv = grid(1, panel=(3.4, 3.4), top=0.4, legend=["y = x (no gap)", *labels.values()])
    ax = cv.axes[0]
    handles = {"y = x (no gap)": ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)[0]}
    for i, p in enumerate(order):
        rs = groups[p]
        handles[labels[p]] = ax.scatter([r["host_asr"] for r in rs], [r["asr"] for r in rs], s=16, alpha=0.7,
                                        marker=MARKERS[i], color=OKABE_ITO[(i + 1) % len(OKABE_ITO)], linewidths=0)
    fraction_axis(ax, "x")
    fraction_axis(ax, "y")
    ax.set_xlabel("ASR on the host torch twin (fraction)")
    ax.set_ylabel("ASR on the device artifact (fraction)")
    cv.legend(handles)
    caption = ("Each point is one adversarial result (variant × attack × ε × source): the attack success rate of "
               "the same examples on the deployed artifact against the host torch twin. Points above the diagonal "
               "mean deployment (export, runtime, precision) made the model more vulnerable; the legend gives the "
               "mean deployment gap per target and backend.")
    return [cv.plot("host-vs-device-asr", "Deployment gap: device vs host ASR", caption, "deployment")]
