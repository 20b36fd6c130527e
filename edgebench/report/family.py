"""The report's section on attacks across a family of variants (threat ``family``, :mod:`edgebench.families`): per
model, attack, ε, target and backend, the asr of the family's set on each member, its worst case over the family,
its transfer to the held-out variants, and ordinary transfer from the base on the same variants beside them.

The family's **worst case** is the member it fools least (the smallest asr, shown with that member's robust
accuracy): the figure a user needs, since an attack "invariant to compression" is only as good as its weakest
member. Transfer from the base (rows crafted on the base model, threat ``transfer``, the base's own row
white-box) is put beside it where the plan has threat ``transfer`` for that attack; the section says so where it
has not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgebench.report.data import RunData
from edgebench.report.tables import Cell, Mark, Num, Para, Section, Table

THREATS = ("family", "family-holdout")


def _asr_list(rows: list[dict[str, Any]]) -> str:
    return " · ".join(f"{r['variant']} {r['asr']:.3f}" for r in rows if r.get("asr") is not None) or "–"


def _worst(rows: list[dict[str, Any]]) -> Cell:
    """The member fooled least: its asr, name and robust accuracy."""
    rows = [r for r in rows if r.get("asr") is not None]
    if not rows:
        return None
    w = min(rows, key=lambda r: r["asr"])
    return Mark(f"{w['asr']:.3f} ({w['variant']}, robust acc {w['robust_acc']:.3f})", "plain", w["asr"])


def _all_fooled(rows: list[dict[str, Any]], correct: dict[tuple[Any, ...], dict[str, Any]]) -> Cell:
    """The share of samples that every member in ``rows`` misclassifies (clean errors included, as in 1 − robust
    accuracy), from the device's per-sample correctness; None when a member's is missing."""
    from edgebench.metrics.samples import unpack_correct

    keys = [(r["model"], r["variant"], r["attack"], float(r["eps"]), r["backend"], r["target"], r["source"])
            for r in rows]
    if not keys or any(k not in correct for k in keys):
        return None
    masks = [unpack_correct(correct[k]["data"]) for k in keys]
    if len({len(m) for m in masks}) != 1:
        return None
    return Num(float(np.mean(~np.any(masks, axis=0))))


def family_section(d: RunData) -> Section | None:
    fam_rows = [r for r in d.adversarial if r.get("threat") in THREATS]
    if not fam_rows:
        return None
    groups: dict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = {}
    for r in fam_rows:
        g = groups.setdefault((r["target"], r["backend"], r["model"], r["attack"], r["eps"], r["source"]), {})
        g.setdefault(r["threat"], []).append(r)
    from_base = {(r["target"], r["backend"], r["model"], r["attack"], r["eps"], r["variant"]): r
                 for r in d.adversarial if r["source"] == r["model"] and r.get("threat") in ("white-box", "transfer")}
    correct = d.correctness()
    table: list[list[Cell]] = []
    no_transfer: set[str] = set()
    notes: dict[str, str] = {}
    for (target, backend, model, attack, eps, source), g in groups.items():
        members, held = g.get("family", []), g.get("family-holdout", [])
        base = [from_base.get((target, backend, model, attack, eps, r["variant"])) for r in members + held]
        has_base = any(b is not None and b["threat"] == "transfer" for b in base)  # not only the base's white-box
        if not has_base:
            no_transfer.add(attack)
        base_members = [b for b in base[:len(members)] if b is not None]
        base_held = [b for b in base[len(members):] if b is not None]
        table.append([f"{target} / {backend}", model, attack, Num(eps, None), _asr_list(members), _worst(members),
                      _all_fooled(members, correct),
                      _worst(base_members) if has_base else Mark("no transfer", "missing"),
                      _all_fooled(base_members, correct) if has_base and len(base_members) == len(members) else None,
                      _asr_list(held), _asr_list(base_held) if has_base and held else "–"])
        stage = d.stage(f"craft/{source}/{attack}")
        if stage and (stage.get("info") or {}).get("note"):
            notes[f"{source} ({attack})"] = stage["info"]["note"]
    blocks: list[Any] = [
        Para("One adversarial set per model and attack, crafted by expectation over transformation across the family "
             "members' torch twins (each step follows the mean of the members' input gradients, Athalye et al. "
             "2018), evaluated on every member and on the held-out variants. `asr per member`: on the device "
             "artifacts. `worst case`: the member the set fools least (smallest asr; its robust accuracy beside it). "
             "`every member fooled`: the share of samples every member misclassifies at once (clean errors "
             "included), from the device's per-sample results. `transfer from base`: the base's own examples on the "
             "same members (the base's row is white-box); `held out`: variants not in the family."),
        Table("family", "Attacks across a family of variants",
              ["target / backend", "model", "attack", "ε", "asr per member", "worst case", "every member fooled",
               "transfer from base: worst", "transfer from base: every member fooled", "held out asr",
               "transfer from base: held out"], table)]
    if no_transfer:
        blocks.append(Para(f"No threat `transfer` in the plan for {', '.join(sorted(no_transfer))}: no transfer from "
                           "the base to compare (add `\"transfer\"` to the attack's `threat`)."))
    if notes:
        blocks.append(Para("Crafting cost: " + "; ".join(f"{k}: {v}" for k, v in notes.items()) + "."))
    return Section("family", "Attacks across a family of variants", blocks)


__all__ = ["THREATS", "family_section"]
