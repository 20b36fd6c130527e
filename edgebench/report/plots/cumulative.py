"""Algorithm 1's success rate against the bound ε, one line per variant, a panel per white-box attack (Liu et al.
2018, seed 000, Figs. 4 and 10a as the paper measures them); the numbers are the report's "Algorithm 1" tables
(:mod:`edgebench.report.cumulative`)."""

from __future__ import annotations

from typing import Any

from edgebench.report.cumulative import curves, own_rows
from edgebench.report.data import BASE, RunData, unit_label
from edgebench.report.plots.rows import pick, shown_note, variant_order
from edgebench.report.plots.style import MAX_LINES, MAX_MODELS, MAX_PANELS, Plot, Styles, fraction_panel, grid

CAPTION = ("Algorithm 1 of Liu et al. 2018 on {model} ({where}): the share of clean-correct samples fooled by the "
           "white-box attack at some ε up to the bound, one line per variant — the paper's success rate (Figs. 4, "
           "10a). Lower is more robust.")


def _distance(curves: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Per variant: the mean absolute gap to the base's curve over the grid (its own level without a base)."""
    base = {c["eps"]: c["value"] for c in curves.get(BASE, [])}
    return {v: sum(abs(c["value"] - base.get(c["eps"], 0.0)) for c in cs) / max(1, len(cs)) for v, cs in curves.items()}


def cumulative_success(data: RunData, st: Styles) -> list[Plot]:
    rows = own_rows(data)
    if not rows:
        return []
    by_model: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for (model, attack), cs in curves(rows).items():
        if any(len(c) >= 2 for c in cs.values()):
            by_model.setdefault(model, {})[attack] = cs
    out = []
    for model, attacks in list(by_model.items())[:MAX_MODELS]:
        names = list(attacks)[:MAX_PANELS]
        variants = variant_order(model, (v for a in names for v in attacks[a]), data)
        per_panel = {a: pick(variant_order(model, attacks[a], data), _distance(attacks[a]), MAX_LINES, keep=[BASE])
                     for a in names}  # each panel its own lines: the base and the curves farthest from it
        shown = [v for v in variants if any(v in per_panel[a] for a in names)]
        cv = grid(len(names), panel=(2.5, 2.0), wspace=0.2, legend=shown, legend_title="variant", sharey=True)
        sty = st.of(unit_label(model, v) for v in shown)
        handles: dict[str, Any] = {}
        for i, (ax, attack) in enumerate(zip(cv.axes, names)):
            for v in per_panel[attack]:
                c = attacks[attack][v]
                (line,) = ax.plot([p["eps"] for p in c], [p["value"] for p in c], drawstyle="steps-post",
                                  **sty[unit_label(model, v)])
                handles.setdefault(v, line)
            fraction_panel(ax, i, attack, "bound ε", "success up to ε")
        cv.legend({v: handles[v] for v in shown if v in handles})
        where = f"{rows[0]['target']} / {rows[0]['backend']}"
        note = shown_note(len(shown), len(variants), "per panel, the base and the curves farthest from it")
        title = f"Algorithm 1: success up to ε — {model}"
        out.append(cv.plot(f"cumulative-success-{model}", title, CAPTION.format(model=model, where=where) + note,
                           "cumulative"))
    return out
