"""The report's "Search" section (``edgebench search``, :mod:`edgebench.search`): the study's settings, the chosen
configuration (the front's best robust accuracy within the budget) and its distance to the best variant of the
plan's own grid, the Pareto front and every trial. Read from the run's ``samples`` rows of kind ``search``."""

from __future__ import annotations

from typing import Any

from edgebench.metrics.pareto import finite
from edgebench.report.data import RunData
from edgebench.report.plots.search import search_rows
from edgebench.report.tables import Bullets, Cell, Mark, Num, Para, Section, Table
from edgebench.search.front import best, chosen, front

#: the figures of a trial, in table order, with their column titles and display precision
FIGURES = (("robust_acc", "robust_acc", 3), ("clean_acc", "clean_acc", 3), ("p50_ms", "p50 ms", 4),
           ("p99_ms", "p99 ms", 4), ("size_mb", "stored MB", 4), ("energy_mj", "mJ", 4))


def _figures(r: dict[str, Any]) -> list[Cell]:
    v = r.get("values") or {}
    return [Num(finite(v.get(k)), d) for k, _, d in FIGURES]


def _text(r: dict[str, Any]) -> str:
    v = r.get("values") or {}
    return ", ".join(f"{k} {x:.4g}" for k, x in v.items() if finite(x) is not None)


def _delta(a: dict[str, Any], b: dict[str, Any]) -> str:
    va, vb = a.get("values") or {}, b.get("values") or {}
    parts = []
    for k in ("robust_acc", "clean_acc", "p50_ms", "size_mb"):
        x, y = finite(va.get(k)), finite(vb.get(k))
        if x is not None and y is not None:
            parts.append(f"{k} {x - y:+.4g}")
    return ", ".join(parts) or "no common figure"


def search_section(d: RunData) -> Section | None:
    study, trials, grids = search_rows(d)
    if not study:
        return None
    objectives, directions = study["objectives"], study["directions"]
    done = [r for r in trials if r.get("state") == "COMPLETE"]
    feasible = [r for r in done if r.get("feasible")]
    budget = ", ".join(f"{k} {'≥' if k.startswith('min_') else '≤'} {v:g}" for k, v in study["budget"].items())
    ran = sum(r.get("state") != "INTERRUPTED" for r in trials)
    goals = ", ".join(f"{o} ({x[:3]})" for o, x in zip(objectives, directions))
    blocks: list[Any] = [Para(
        f"`edgebench search` ran {ran} trials ({len(done)} finished, {len(feasible)} within the budget) with the "
        f"{study['sampler']} sampler (seed {study['seed']}), objectives {goals}; budget: {budget or 'none'}. Each "
        f"trial is an ordinary variant of the plan measured on {study.get('target')}/{study.get('backend')}; robust "
        f"accuracy is read at ε={study['eps']:g} (the worst case over the attack suite where the plan has one, else "
        "the strongest white-box attack). The plots and other sections of this report show every trial's variant as "
        "well.")]
    pick = chosen(trials, objectives, directions)
    lines = []
    if pick is None:
        lines.append("**No trial met the budget**: no configuration is chosen (the trials table says what each "
                     "broke).")
    else:
        lines.append(f"**Chosen** (trial {pick['number']}): `{pick['variant']}` — {_text(pick)}. Written as "
                     "`chosen.toml` in this run's folder: `edgebench run chosen.toml` measures it again (with "
                     "`--quick` after a `--quick` search).")
        grid_rows = [g for g in grids if g.get("variant") != "base" and g.get("state") == "COMPLETE"]
        top = best([g for g in grid_rows if g.get("feasible")]) or best(grid_rows)
        if top is None:
            lines.append("The plan has no grid of its own ([[compress]]/[[defend]]) to compare with.")
        else:
            within = "within the budget" if top.get("feasible") else "none of the grid is within the budget; its best"
            lines.append(f"Best of the plan's own grid ({within}): `{top['variant']}` — {_text(top)}. Chosen minus "
                         f"grid best: {_delta(pick, top)}.")
        base = next((g for g in grids if g.get("variant") == "base"), None)
        if base is not None:
            lines.append(f"Chosen minus the base: {_delta(pick, base)}.")
    blocks.append(Bullets(lines))
    on_front = sorted(front(trials, objectives, directions), key=lambda r: -(finite(r["values"].get("robust_acc"))
                                                                             or 0.0))
    if on_front:
        blocks.append(Table("search_front", "Pareto front (feasible trials no other beats in every objective)",
                            ["trial", "variant", *(t for _, t, _ in FIGURES)],
                            [[r["number"], r["variant"], *_figures(r)] for r in on_front]))
    rows: list[list[Cell]] = []
    for r in trials:
        state = Mark("interrupted, asked again", "muted") if r.get("state") == "INTERRUPTED" else \
            Mark("failed", "bad") if r.get("state") != "COMPLETE" else \
            Mark("ok", "ok") if r.get("feasible") else Mark("over budget", "muted")
        why = r.get("reason") or "; ".join(r.get("violations") or []) or ""
        rows.append([r["number"], r["variant"], state, *_figures(r), f"{r.get('seconds', 0):.1f}", why[:200]])
    blocks.append(Table("search_trials", "Every trial", ["trial", "variant", "verdict",
                                                         *(t for _, t, _ in FIGURES), "s", "broken budget / failure"],
                        rows, "`s`: the trial's wall time (cached stages make a repeated configuration cheap)."))
    return Section("search", "Search", blocks)
