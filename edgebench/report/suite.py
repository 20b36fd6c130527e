"""The report's "Worst case over the attack suite" section: per unit, target, backend and ε, the suite's robust
accuracy (:mod:`edgebench.runner.suite`, AutoAttack's definition) with its 95 % Wilson interval beside each
member attack's own, the attacks that broke the samples, and which variants were attacked through BPDA."""

from __future__ import annotations

from typing import Any

from edgebench.report.data import RunData, unit_label
from edgebench.report.robustness import delta_cell
from edgebench.report.tables import Cell, Num, Para, Prop, Section, Table


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{m} {c}" for m, c in counts.items() if c) or "–"


def suite_section(d: RunData) -> Section | None:
    """One table per target and backend; a paragraph naming the variants attacked through BPDA."""
    breakdown = {(s["model"], s["variant"], s["target"], s["backend"], float(s["eps"]), s["source"]): s["data"]
                 for s in d.samples if s["kind"] == "suite"}
    members = {(r["model"], r["variant"], r["target"], r["backend"], float(r["eps"]), r["attack"], r["source"]): r
               for r in d.adversarial}
    blocks: list[Any] = []
    tables: dict[tuple[str, str], list[list[Cell]]] = {}
    for r in d.suite:
        where = (r["model"], r["variant"], r["target"], r["backend"], float(r["eps"]))
        b = breakdown.get((*where, r["source"]), {})
        own = [members.get((*where, label, src)) for label, src in b.get("attacks", [])]
        each = " · ".join(f"{m} {x['robust_acc']:.3f}" for m, x in zip(b.get("members", []), own)
                          if x is not None and x.get("robust_acc") is not None)
        tables.setdefault((r["target"], r["backend"]), []).append([
            r["model"], r["variant"], Num(r["eps"], None), r["source"].partition(":")[2], r["n"], Num(r["clean_acc"]),
            each or "–", Prop.of(r, "robust_acc"), delta_cell(r), _counts(b.get("first", {})),
            _counts(b.get("only", {}))])
    if tables:
        blocks.append(Para(
            "Robust accuracy (suite): a sample counts as robust only if the unit classifies it correctly when clean "
            "and **every** attack of the suite fails on it on the device (AutoAttack's robust accuracy, Croce & Hein "
            "2020), with its 95 % Wilson interval. The suite at ε: every untargeted attack of the plan with that ε in "
            "its grid and the same budget norm, from every source the unit was evaluated on (`suite = false` on an "
            "attack leaves it out); it is scored on the samples every member evaluated (the first `min n`). Beside "
            "it, each member's own robust accuracy; `broke first`: samples each attack broke first in suite order; "
            "`only it broke`: samples no other attack of the suite broke. `δ vs base`: the suite's robust accuracy "
            "minus the base's, with McNemar's paired p."))
        for (target, backend), rows in tables.items():
            blocks.append(Table(f"suite_{target}_{backend}", f"{target} / {backend}",
                                ["model", "variant", "ε", "norm", "n", "clean_acc", "robust_acc per attack",
                                 "robust accuracy (suite) [95 % CI]", "δ vs base", "broke first", "only it broke"],
                                rows))
    bpda = [s for s in d.samples if s["kind"] == "bpda"]
    if bpda:
        blocks.append(Para("BPDA (Athalye, Carlini & Wagner 2018): the white-box attacks on these twins replaced the "
                           "non-differentiable steps of the forward pass by the identity in the backward pass: "
                           + "; ".join(f"`{unit_label(s['model'], s['variant'])}`: {s['data']['summary']}"
                                       for s in bpda) + "."))
    if not blocks:
        return None
    return Section("suite", "Worst case over the attack suite" if tables else "BPDA", blocks)
