"""The report's "Algorithm 1: cumulative success against ε" section (Liu et al. 2018, seed ``000``, Algorithm 1
and Figs. 4, 10a): per model and white-box attack, for each variant, the share of samples whose minimal ε is at
most ε, at every ε of the attack's grid, with its 95 % Wilson interval. That is the paper's success rate (the
attack is repeated with a growing ε until it succeeds or the bound is reached); the attack run at exactly ε (the
robustness tables) can only be lower or equal. Read from the stored per-sample minimal ε (``min_eps``), among
the samples the victim classifies correctly when clean, on the first target and backend that has them."""

from __future__ import annotations

from typing import Any

from edgebench.metrics.cumulative import cumulative_success
from edgebench.report.data import RunData, unit_label
from edgebench.report.tables import Cell, Para, Prop, Section, Table


def own_rows(d: RunData) -> list[dict[str, Any]]:
    """The white-box minimal-ε rows with per-sample values, on the first (target, backend) that has any."""
    rows = [r for r in d.min_eps if isinstance(r.get("values"), list) and r.get("eps_grid")
            and (r.get("threat") == "white-box" or r.get("source") == unit_label(r["model"], r["variant"]))]
    pairs = list(dict.fromkeys([*d.pairs, *((r["target"], r["backend"]) for r in rows)]))
    pair = next((p for p in pairs if any((r["target"], r["backend"]) == p for r in rows)), None)
    return [r for r in rows if (r["target"], r["backend"]) == pair]


def curves(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    """(model, attack) -> variant -> the cumulative success at each finite ε of the grid."""
    out: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        out.setdefault((r["model"], r["attack"]), {})[r["variant"]] = cumulative_success(r["values"], r["eps_grid"])
    return out


def cumulative_section(d: RunData) -> Section | None:
    rows = own_rows(d)
    if not rows:
        return None
    blocks: list[Any] = [Para(
        f"Algorithm 1 of Liu et al. 2018: per sample, ε is raised along the grid until the white-box attack "
        f"succeeds or the bound is reached. Each cell is the share of samples (classified correctly when clean) "
        f"fooled at some ε up to the column's bound, with its 95 % Wilson interval — the paper's success rate at "
        f"that bound (Figs. 4, 10a). The attack run at exactly that ε (robustness tables) can only be lower or "
        f"equal. On {rows[0]['target']} / {rows[0]['backend']}.")]
    for (model, attack), by_variant in curves(rows).items():
        grid = sorted({c["eps"] for cs in by_variant.values() for c in cs})
        table: list[list[Cell]] = []
        for variant, cs in by_variant.items():
            at = {c["eps"]: c for c in cs}
            table.append([variant, cs[0]["n"] if cs else None,
                          *(Prop(at[e]["value"], at[e]["lo"], at[e]["hi"], at[e]["n"]) if e in at else None
                            for e in grid)])
        blocks.append(Table(f"cumulative_success_{model}_{attack}", f"**{model}, {attack}**: success up to ε",
                            ["variant", "n", *(f"ε ≤ {e:g}" for e in grid)], table))
    return Section("cumulative", "Algorithm 1: cumulative success against ε", blocks)
