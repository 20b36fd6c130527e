"""The ``family`` threat model at the plan level: an attack's ``family`` and ``holdout`` keys, their checks, and which
variants of a model form its family. Torch-free; the crafting is :mod:`edgebench.runner.family` and
:mod:`edgebench.attacks._family`.

``family = ["base", "pruned", "kbit-4"]`` (variant names, ``base`` for the uncompressed model) or ``"all"`` (every
variant of the model, the base included, except those held out). ``holdout = [...]``: variants the family's set
is also evaluated on, without crafting on them (the transfer to compressed versions the attacker did not have).
The family attacks every model of the plan that has all its members (``"all"``: every model with two or more
variants outside ``holdout``); its members are ordered as the plan defines them (the base first), whatever order
the plan lists them in. ``victims`` does not apply to the family threat: ``family`` and ``holdout`` name its victims.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgebench.errors import ConfigError
from edgebench.specs import AttackSpec, CompressSpec, ModelSpec
from edgebench.toml_table import Table

ALL = "all"


def parse_family(t: Table) -> tuple[str | tuple[str, ...], tuple[str, ...]]:
    """An attack table's ``family`` (``"all"`` or a tuple of variant names, ``()`` when absent) and ``holdout``."""
    raw = t.get("family", (str, list), ())
    if isinstance(raw, str) and raw != ALL:
        raise t.fail("family", f"{raw!r}: give a list of variant names (['base', 'kbit-4']) or \"all\"")
    family = ALL if raw == ALL else _names(t, "family", raw)
    return family, _names(t, "holdout", t.get("holdout", list, []))


def _names(t: Table, key: str, raw: Any) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in raw):
        raise t.fail(key, f"give variant names (strings; 'base' for the uncompressed model), got {raw!r}")
    dup = sorted({v for v in raw if raw.count(v) > 1})
    if dup:
        raise t.fail(key, f"{dup} listed more than once")
    return tuple(raw)


def variants_of(model: str, compress: Sequence[CompressSpec]) -> list[str]:
    """The variants of ``model`` in plan order: the base, then its compressed and defended variants."""
    return ["base", *(c.variant for c in compress if c.model == model)]


def members(attack: AttackSpec, model: str,
            compress: Sequence[CompressSpec]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(members, holdout)`` of ``attack``'s family on ``model``, in plan order; ``((), ())`` when the family does
    not attack ``model`` (no family, a member missing, or fewer than two members)."""
    if "family" not in attack.threat:
        return (), ()
    have = variants_of(model, compress)
    held = tuple(v for v in have if v in attack.holdout)
    if attack.family == ALL:
        fam = tuple(v for v in have if v not in attack.holdout)
    elif all(v in have for v in attack.family):
        fam = tuple(v for v in have if v in attack.family)
    else:
        return (), ()
    return (fam, held) if len(fam) >= 2 else ((), ())


def check_families(attacks: Sequence[AttackSpec], models: Sequence[ModelSpec], compress: Sequence[CompressSpec],
                   source: str, attack_classes: dict[str, Any]) -> None:
    """One line naming the key for: threat ``family`` without ``family`` (or the reverse), an attack whose loop
    cannot take a family, an unknown variant, a variant both in the family and held out, a family of fewer than
    two members, no model that has the whole family, and a member with no torch twin (an ONNX model)."""
    variants = list(dict.fromkeys(v for m in models for v in variants_of(m.name, compress)))
    for i, a in enumerate(attacks):
        where = f"{source}: attacks[{i}]"
        if "family" not in a.threat:
            if a.family or a.holdout:
                key = "family" if a.family else "holdout"
                raise ConfigError(f"{where}.{key}: used by threat 'family'; add it to threat or drop {key}")
            continue
        if not a.family:
            raise ConfigError(f"{where}.family: threat 'family' needs family = [variant names] or \"all\"")
        if not getattr(attack_classes[a.name], "family_ok", False):
            ok = sorted(n for n, c in attack_classes.items() if getattr(c, "family_ok", False))
            raise ConfigError(f"{where}.threat: attack {a.name!r} cannot craft on a family; threat 'family' takes {ok}")
        for key, names in (("family", () if a.family == ALL else a.family), ("holdout", a.holdout)):
            for v in names:
                if v not in variants:
                    raise ConfigError(f"{where}.{key}: {v!r} is not a variant of this plan; variants are {variants}")
        both = [v for v in a.holdout if a.family != ALL and v in a.family]
        if both:
            raise ConfigError(f"{where}.holdout: {both} also in family; a variant is a member or held out, not both")
        if a.family != ALL and len(a.family) < 2:
            raise ConfigError(f"{where}.family: {list(a.family)} has fewer than 2 members; name two or more variants")
        attacked = [m for m in models if members(a, m.name, compress)[0]]
        if not attacked:
            what = "has two or more variants outside holdout" if a.family == ALL else f"has all of {list(a.family)}"
            raise ConfigError(f"{where}.family: no model of this plan {what}")
        for m in attacked:
            if m.onnx:
                raise ConfigError(f"{where}.family: model {m.name!r} is an ONNX file; its members have no torch twin "
                                  "to craft on")
