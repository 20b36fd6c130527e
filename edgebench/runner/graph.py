"""Which units a plan deploys and who attacks whom: pure functions of the plan.

The stage graph (:meth:`edgebench.runner.pipeline.Pipeline.stages`) is built from these: one model or compress
stage per unit, one craft stage per (source, attack) that some victim is evaluated on, one device stage per
(target, backend, unit).
"""

from __future__ import annotations

from edgebench.config import AttackSpec, ModelSpec, Plan
from edgebench.runner.family import FamilySource, family_sources
from edgebench.runner.units import BASE, Unit, parse_unit


def spec_of(plan: Plan, model: str) -> ModelSpec:
    return next(m for m in plan.models if m.name == model)


def units(plan: Plan) -> list[Unit]:
    """Every deployable model of the plan: each model's base, then its compressed variants."""
    out = [Unit(m.name) for m in plan.models]
    return out + [Unit(c.model, c.variant) for c in plan.compress]


def torch_units(plan: Plan) -> list[Unit]:
    """The units with a torch twin: the ones that can craft white-box examples."""
    return [u for u in units(plan) if not spec_of(plan, u.model).onnx]


def source_of(plan: Plan, unit: Unit) -> Unit:
    """Whose adversarial examples ``unit`` is evaluated on: a variant's own twin (white-box, compression-aware),
    a base model's ``attack_source`` (itself unless a surrogate is named)."""
    if unit.variant != BASE:
        return unit
    return Unit(spec_of(plan, unit.model).source)


def sources_for(plan: Plan, unit: Unit, attack: AttackSpec) -> list[Unit | FamilySource]:
    """The models whose ``attack`` examples ``unit`` is evaluated on, per the attack's threat models: white-box
    (:func:`source_of`), transfer (the surrogate, by default the victim's base or its ``attack_source``),
    matrix (every torch unit) and, last, family (a :class:`~edgebench.runner.family.FamilySource`, for its members
    and held-out variants). The first is the white-box one when asked. Only the family's when ``unit`` is not
    among the attack's ``victims``."""
    out: list[Unit | FamilySource] = []
    fam = family_sources(plan, unit, attack)
    if not attack.attacks_unit(unit.model, unit.variant):
        return fam
    if "white-box" in attack.threat or "matrix" in attack.threat:
        out.append(source_of(plan, unit))
    if "transfer" in attack.threat:
        out.append(parse_unit(attack.surrogate) if attack.surrogate else source_of(plan, Unit(unit.model)))
    if "matrix" in attack.threat:
        out.extend(torch_units(plan))
    return list(dict.fromkeys(out)) + fam


def crafting_sources(plan: Plan) -> set[Unit]:
    """Every unit some attack crafts examples on (a family's members included)."""
    return {m for u in units(plan) for a in plan.attacks for src in sources_for(plan, u, a)
            for m in (src.units if isinstance(src, FamilySource) else [src])}
