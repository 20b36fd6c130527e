"""Host-side adversarial attacks in PyTorch: one file per attack, a shared base, one registry.

An attack is configured once (keyword-only hyper-parameters) and called on any model:
``result = ATTACKS.get("pgd")(steps=40)(model, x, y, eps=[0.1, 0.2, 0.3])`` (Foolbox's design; the attack
never owns the model). Inputs are in [0, 1]; models return logits.
"""

from __future__ import annotations

from typing import Any

from edgebench.registry import Registry

ATTACKS: Registry[Any] = Registry("attack", modules=("edgebench.attacks.*",))


def create_attack(name: str, *, where: str = "", **params: Any) -> Any:
    """Instantiate attack ``name``; an unknown parameter is an error naming the attack and the parameter."""
    from edgebench.attacks.base import check_params

    cls = ATTACKS.get(name, where=where)
    check_params(cls, params, where=where or f"attack {name!r}")
    return cls(**params)


__all__ = ["ATTACKS", "create_attack"]
