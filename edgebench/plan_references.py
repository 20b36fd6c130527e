"""Plan ``[[reference]]`` tables: the published numbers a reproduction is held against.

Parsed after models, variants and attacks, so that every name a reference uses is checked against the plan and
a typo fails with one line naming the key and the allowed values.
"""

from __future__ import annotations

import math
from typing import Any

from edgebench.specs import AttackSpec, CompressSpec, ModelSpec, ReferenceSpec
from edgebench.toml_table import Table

_METRICS = ["clean_acc", "robust_acc", "asr"]


def parse_references(raw: list[Any], source: str, models: tuple[ModelSpec, ...],
                     compress: tuple[CompressSpec, ...], attacks: tuple[AttackSpec, ...]) -> tuple[ReferenceSpec, ...]:
    """The plan's ``[[reference]]`` tables: the paper's numbers a run is compared with, each naming a figure, a
    metric, a model and variant (or several, averaged), and an attack label and eps of the plan."""
    out = []
    names = [m.name for m in models]
    labels = ["none"] + [a.label for a in attacks]
    for i, item in enumerate(raw):
        t = Table(item, source, f"reference[{i}]")
        units = t.raw.get("variants")  # entries "model/variant" name their model: then `model` may be left out
        qualified = isinstance(units, list) and bool(units) and all(isinstance(u, str) and "/" in u for u in units)
        model = t.choice("model", names, names[0] if len(names) == 1 or qualified else None,
                         required=len(names) != 1 and not qualified)
        variants = ["base"] + [c.variant for c in compress if c.model == model]
        many = _reference_variants(t, variants + [f"{m}/{v}" for m in names
                                                  for v in ["base"] + [c.variant for c in compress if c.model == m]])
        ref = ReferenceSpec(
            figure=t.get("figure", str, required=True), metric=t.choice("metric", _METRICS, required=True),
            value=t.number("value", None, lo=0, hi=1, required=True), model=model,
            variant="" if many else t.choice("variant", variants, "base"), attack=t.choice("attack", labels, "none"),
            eps=t.number("eps", 0.0, lo=0), source=t.get("source", str, ""), note=t.get("note", str, ""),
            variants=many, aggregate="mean" if many else "")
        t.done()
        if ref.attack != "none":
            attack = next(a for a in attacks if a.label == ref.attack)
            if not any(math.isclose(ref.eps, e) for e in attack.eps):
                raise t.fail("eps", f"{ref.eps!r} is not one of attack {ref.attack!r}'s eps {list(attack.eps)}")
        elif ref.metric != "clean_acc":
            raise t.fail("metric", f"{ref.metric!r} needs an attack; give attack = one of {labels[1:]}")
        out.append(ref)
    return tuple(out)


def _reference_variants(t: Table, allowed: list[str]) -> tuple[str, ...]:
    """``variants = [...]`` with ``aggregate = "mean"``: a paper number averaged over several variants (seed 000,
    Fig. 10a) — of the reference's model, or ``"model/variant"`` of any model (Fig. 10b averages over networks).
    Both keys or neither; not with ``variant``; at least two distinct entries."""
    many, aggregate = t.get("variants", list), t.choice("aggregate", ["mean"])
    if many is None:
        if aggregate is not None:
            raise t.fail("aggregate", "needs `variants = [...]`, the variants the paper's number averages over")
        return ()
    if "variant" in t.raw:
        raise t.fail("variants", "give either `variant` (one) or `variants` (an average over several), not both")
    if aggregate is None:
        raise t.fail("variants", "needs `aggregate = \"mean\"` (how the paper combined them)")
    for v in many:
        if not isinstance(v, str) or v not in allowed:
            shown = allowed if len(allowed) <= 40 else [*allowed[:40], "..."]
            raise t.fail("variants", f"{v!r} is not one of {shown}")
    if len(many) < 2 or len(set(many)) != len(many):
        raise t.fail("variants", f"give at least two distinct variants to average over, got {many!r}")
    return tuple(many)
