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
        final = {v: sum(c[-1]["value"] for a in names if (c := attacks[a].get(v))) for v in variants}
        base = final.get(BASE, 0.0)
        shown = pick(variants, {v: abs(x - base) for v, x in final.items()}, MAX_LINES, keep=[BASE])
        cv = grid(len(names), panel=(2.5, 2.0), wspace=0.2, legend=shown, legend_title="variant", sharey=True)
        sty = st.of(unit_label(model, v) for v in shown)
        handles: dict[str, Any] = {}
        for i, (ax, attack) in enumerate(zip(cv.axes, names)):
            for v in shown:
                c = attacks[attack].get(v)
                if not c:
                    continue
                (line,) = ax.plot([p["eps"] for p in c], [p["value"] for p in c], drawstyle="steps-post",
                                  **sty[unit_label(model, v)])
                handles.setdefault(v, line)
            fraction_panel(ax, i, attack, "bound ε", "success up to ε")
        cv.legend({v: handles[v] for v in shown if v in handles})
        where = f"{rows[0]['target']} / {rows[0]['backend']}"
        note = shown_note(len(shown), len(variants), "the base and the variants farthest from it")
        title = f"Algorithm 1: success up to ε — {model}"
        out.append(cv.plot(f"cumulative-success-{model}", title, CAPTION.format(model=model, where=where) + note,
                           "cumulative"))
    return out
