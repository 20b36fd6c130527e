"""The ``family`` threat model in the runner: one adversarial set per (model, attack) crafted by expectation over
transformation across the family members' torch twins (:class:`~edgebench.attacks._family.ModelFamily`), evaluated
on every member (threat ``family``) and on the held-out variants (``family-holdout``) like any set: shipped to
every target and backend with the units it is evaluated on. Which variants form a family: :mod:`edgebench.families`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.config import AttackSpec, Plan
from edgebench.errors import ConfigError
from edgebench.families import members
from edgebench.runner.cache import content_key
from edgebench.runner.units import Unit

#: the result rows' threat for a family's members and for its held-out variants
THREAT_MEMBER, THREAT_HOLDOUT = "family", "family-holdout"


@dataclass(frozen=True)
class FamilySource:
    """The crafting source of a family set: model ``model``'s variants ``members`` (plan order), evaluated on them
    and on ``holdout``. Its ``id`` (the result rows' ``source``) names the members: ``cnn/family[base,kbit-4]``."""

    model: str
    members: tuple[str, ...]
    holdout: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.model}/family[{','.join(self.members)}]"

    @property
    def units(self) -> list[Unit]:
        return [Unit(self.model, v) for v in self.members]

    @property
    def deps(self) -> tuple[str, ...]:
        """The stages that build the members' twins."""
        return tuple(u.stage for u in self.units)

    def threat(self, unit: Unit) -> str:
        return THREAT_MEMBER if unit.variant in self.members else THREAT_HOLDOUT


def family_source(plan: Plan, model: str, attack: AttackSpec) -> FamilySource | None:
    """``attack``'s family on ``model``, None when it does not attack that model."""
    fam, held = members(attack, model, plan.compress)
    return FamilySource(model, fam, held) if fam else None


def family_sources(plan: Plan, unit: Unit, attack: AttackSpec) -> list[FamilySource]:
    """The family set ``unit`` is evaluated on (as a member or held out), if any: ``victims`` does not apply."""
    fam = family_source(plan, unit.model, attack)
    return [fam] if fam is not None and unit.variant in fam.members + fam.holdout else []


def source_by_id(plan: Plan, attack: AttackSpec, source_id: str) -> FamilySource | None:
    """The family source of ``attack`` whose id is ``source_id`` (None: it names a plain unit)."""
    return next((f for m in plan.models if (f := family_source(plan, m.name, attack)) and f.id == source_id), None)


def family_key(member_keys: list[str]) -> str:
    """The crafting source's key of a family: its members' keys in a normalized (sorted) order, so that naming the
    same family in another order, or another plan with the same twins, finds the same set."""
    return content_key("family", {"members": sorted(member_keys)})


def family_twin(built: dict[Unit, Any], fam: FamilySource) -> tuple[Any, str]:
    """The :class:`~edgebench.attacks._family.ModelFamily` of ``fam``'s members' twins, in the normalized order of
    :func:`family_key` (the same key crafts the same way), and the key. ``built``: each member's ``Built``."""
    from edgebench.attacks._family import ModelFamily

    order = sorted(fam.units, key=lambda u: built[u].key)
    for u in order:
        if built[u].torch_model is None:
            raise ConfigError(f"family {fam.id}: member {u.id!r} has no torch twin (an ONNX file); craft on torch "
                              "variants only")
    twins = ModelFamily([built[u].torch_model for u in order], [u.variant for u in order])
    return twins, family_key([built[u].key for u in order])


def twin_pred(model: Any, x: np.ndarray, y: np.ndarray, target: np.ndarray | None) -> np.ndarray:
    """The crafting twin's top-1 on ``x``; a family's decision (:meth:`ModelFamily.decision`: the first member not
    fooled, else the first member) from its members' predictions."""
    from edgebench.attacks._family import ModelFamily
    from edgebench.models.train import predict_logits

    if not isinstance(model, ModelFamily):
        return predict_logits(model, x).argmax(1)
    per = member_preds(model, x)
    fooled = (per != y) if target is None else (per == target)
    first = np.where((~fooled).any(0), (~fooled).argmax(0), 0)
    return per[first, np.arange(len(x))]


def member_preds(model: Any, x: np.ndarray) -> np.ndarray:
    """Each member's top-1 on ``x``, shape (members, N)."""
    from edgebench.models.train import predict_logits

    return np.stack([predict_logits(m, x).argmax(1) for m in model.members])


def family_info(model: Any, fam: FamilySource, x_adv: np.ndarray, y: np.ndarray,
                target: np.ndarray | None) -> dict[str, Any]:
    """What a family set records beside the usual: its members and holdout, the passes spent per member and in
    total, and the host success per member and ε (each member's twin on the set)."""
    per = {name: [] for name in model.names}
    for xa in x_adv:
        for name, p in zip(model.names, member_preds(model, xa)):
            per[name].append(float(np.mean((p != y) if target is None else (p == target))))
    return {"family": {**model.cost(), "holdout": list(fam.holdout), "id": fam.id,
                       "host_success_per_member": per}}


def family_note(info: dict[str, Any]) -> str:
    """The cost of a family set for its stage's note (empty for other sets): passes per member and in total."""
    fam = info.get("family")
    if not fam:
        return ""
    order = fam.get("id", "").partition("[")[2].rstrip("]").split(",")  # plan order, as the source id names them
    per = sorted(fam["per_member"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    each = ", ".join(f"{n} {p['forward']}+{p['backward']}" for n, p in per)
    return (f" (success: every member fooled); EOT over {len(fam['members'])} members: {fam['forward']} forward "
            f"+ {fam['backward']} backward passes ({each})")


__all__ = ["THREAT_HOLDOUT", "THREAT_MEMBER", "FamilySource", "family_info", "family_key", "family_note",
           "family_source", "family_sources", "family_twin", "source_by_id", "twin_pred"]
